"""The README's "Against a moto server" steps, run as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

from tests.fakes import moto_ebs

REPO = Path(__file__).resolve().parents[2]
BAKERY = str(Path(sys.executable).parent / "bakery")


def test_readme_moto_procedure(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert "python -m tests.fakes.moto_ebs 5000 examples/moto/amis.json" in readme
    assert "bakery build web --target aws" in readme
    with moto_ebs.running(REPO / "examples" / "moto" / "amis.json") as endpoint:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": endpoint,
            "BAKERY_HOME": str(tmp_path / "home"),
        }
        cwd = REPO / "examples" / "moto"
        built = subprocess.run(
            [BAKERY, "build", "web", "--target", "aws"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        assert built.returncode == 0, built.stderr[-3000:]
        assert "baked web@1.0.0 on aws" in built.stdout

        listed = subprocess.run([BAKERY, "images", "--json"], cwd=cwd, env=env, capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr
        (image,) = json.loads(listed.stdout)["images"]
        regions = dict(location.split(":") for location in image["locations"])
        assert set(regions) == {"eu-west-1", "eu-central-1"}
        for region, ami in regions.items():
            ec2 = boto3.client(
                "ec2", region_name=region, endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test"
            )
            described = ec2.describe_images(ImageIds=[ami])["Images"][0]
            snapshots = [m["Ebs"]["SnapshotId"] for m in described["BlockDeviceMappings"] if "Ebs" in m]
            for resource in [ami, *snapshots]:
                tags = {
                    t["Key"]: t["Value"]
                    for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])["Tags"]
                }
                assert tags["bakery:image"] == "web" and tags["bakery:state"] == "complete", (region, resource)
                assert tags["bakery:inputs-digest"] == image["inputs_digest"]

        shown = subprocess.run(
            [BAKERY, "show", "web", "--target", "aws"], cwd=cwd, env=env, capture_output=True, text=True
        )
        assert shown.returncode == 0, shown.stderr
        assert "ami:debian-12-amd64-20260101-1200: awsImageId:ami-0de12a0000000001" in shown.stdout
