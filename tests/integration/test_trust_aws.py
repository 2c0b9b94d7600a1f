"""Trust on AWS through the moto server: a real `packer build` of web signs its AMIs; a tag changed
by hand on one of them fails `bakery verify` naming the tag, and the rollout of that AMI, like that
of an unsigned one, is refused before the Auto Scaling group is touched."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bakery.cli.app import app
from tests.integration.aws_groups import ASG, GROUP, REGION, World

runner = CliRunner()


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture()
def world(asg_world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with (asg_world.root / "images.yaml").open("a") as config:
        config.write("trust:\n  require: true\n")  # this workspace's own key, required
    return asg_world


def test_a_tampered_tag_fails_verify_and_the_rollout_is_refused(world: World) -> None:
    baked = bakery("build", "web", "--target", "aws", "--force", "--json")
    assert baked.exit_code == 0, baked.output
    ref = f"web@{json.loads(baked.stdout)['record']['version']}"
    ami = json.loads(baked.stdout)["record"]["locations"][0].rpartition(":")[2]
    ok = bakery("verify", ref, "--target", "aws")
    assert ok.exit_code == 0, ok.output
    assert "signed by workspace key" in ok.stdout

    ec2 = world.client("ec2")
    original = {t["Key"]: t["Value"] for t in ec2.describe_images(ImageIds=[ami])["Images"][0]["Tags"]}
    ec2.create_tags(Resources=[ami], Tags=[{"Key": "bakery:commit", "Value": "f" * 40}])
    tampered = bakery("verify", ref, "--target", "aws", "--json")
    assert tampered.exit_code == 1
    problems = [c["detail"] for c in json.loads(tampered.stdout)["checks"] if not c["ok"]]
    assert any(p.startswith(f"tag bakery:commit on {ami} in {REGION} is 'ffff") for p in problems), problems

    before = world.versions()
    refused = bakery("rollout", GROUP, "--image", ref, "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"refusing to rollout {GROUP} onto {ref}: it does not verify" in refused.stderr
    assert "tag bakery:commit" in refused.stderr
    unsigned = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert unsigned.exit_code == 1 and "unsigned: no attestation" in unsigned.stderr
    assert world.versions().keys() == before.keys() and not world.refreshes(ASG)

    audit = json.loads(bakery("audit", "--json").stdout)["events"]
    assert [e["action"] for e in audit][:2] == ["build", "sign"]
    assert [e["result"] for e in audit if e["action"] == "verify-failed"] == ["failed", "refused", "refused"]

    # The tag put back, the image verifies again and rolls out.
    ec2.create_tags(Resources=[ami], Tags=[{"Key": "bakery:commit", "Value": original["bakery:commit"]}])
    rolled = bakery("rollout", GROUP, "--image", ref, "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert f"verified {ref}: signed by workspace key" in rolled.stderr
    assert set(world.images_run()) == {ami}


def test_an_impostor_that_copies_a_bakes_invocation_is_kept_apart_and_never_rolled_out(world: World) -> None:
    """Someone registers an AMI in the group's region carrying a copy of a genuine bake's tags
    (its invocation included): `images` names two claimants of the version and exits 1, and the
    rollout gate takes the one whose signed subject it is."""
    baked = bakery("build", "web", "--target", "aws", "--force", "--json")
    assert baked.exit_code == 0, baked.output
    record = json.loads(baked.stdout)["record"]
    ref = f"web@{record['version']}"
    genuine = next(loc for loc in record["locations"] if loc.startswith(f"{REGION}:")).rpartition(":")[2]
    ec2 = world.client("ec2")
    tags = ec2.describe_images(ImageIds=[genuine])["Images"][0]["Tags"]
    impostor = ec2.copy_image(SourceImageId=genuine, SourceRegion=REGION, Name="not-bakery")["ImageId"]
    ec2.create_tags(Resources=[impostor], Tags=tags)

    listed = bakery("images", "web", "--target", "aws")
    assert listed.exit_code == 1, listed.output
    assert f"conflict: {ref} on aws is claimed by 2 images" in listed.output
    assert genuine in listed.output and impostor in listed.output

    rolled = bakery("rollout", GROUP, "--image", ref, "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert f"taking the one that verifies ({REGION}:{genuine}" in rolled.output
    assert set(world.images_run()) == {genuine}
