"""An AWS world for integration tests: moto's server (tests/fakes/moto_ebs.py) seeded with
Debian-like source AMIs, and a bakery project whose aws target points at it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.fakes import moto_ebs

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's account
SOURCE_AMIS = [
    {
        "ami_id": "ami-0d1e0000000000001",
        "name": "debian-12-amd64-20260101-1000",
        "creation_date": "2026-01-01T10:00:00.000Z",
    },
    {
        "ami_id": "ami-0d1e0000000000002",
        "name": "debian-12-amd64-20260201-1000",
        "creation_date": "2026-02-01T10:00:00.000Z",
    },
    {"ami_id": "ami-0babe000000000003", "name": "other-base-20260101", "creation_date": "2026-01-01T10:00:00.000Z"},
    # What the repository's images.yaml filters for: Debian's own account.
    {
        "ami_id": "ami-0de000000000000d1",
        "name": "debian-12-amd64-20260301-0000",
        "creation_date": "2026-03-01T00:00:00.000Z",
        "owner_id": "136693071363",
    },
]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    amis = tmp_path_factory.mktemp("moto") / "amis.json"
    amis.write_text(moto_ebs.ami_records(SOURCE_AMIS, ACCOUNT))
    with moto_ebs.running(amis) as endpoint:
        yield endpoint


@pytest.fixture()
def moto(moto_endpoint: str) -> str:
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"))
    return moto_endpoint


def ec2(endpoint: str, region: str = "eu-west-1") -> Any:
    return boto3.client("ec2", region_name=region, endpoint_url=endpoint)


@pytest.fixture()
def aws_project(tmp_path: Path, moto: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "playbooks", tmp_path / "playbooks")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    (tmp_path / "playbooks" / "app.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks: []\n")
    config = {
        "targets": {
            "aws": {
                "kind": "aws",
                "region": "eu-west-1",
                "copy_to": ["eu-central-1"],
                "endpoint": moto,
                "encrypted": False,
                "communicator": "none",  # moto's instances exist nowhere: register without provisioning
            }
        },
        "images": {
            "base": {
                "version": "1.0",
                "description": "base",
                "playbooks": ["playbooks/base.yml"],
                "tags": {"team": "platform"},
                "source": {"aws": {"filter": {"owners": [ACCOUNT], "name": "debian-12-amd64-*"}}},
            },
            "web": {"version": "2.1", "from": "base", "playbooks": ["playbooks/web.yml"]},
            "app": {
                "version": "0.3",
                "source": {"aws": {"ami": "ami-0babe000000000003"}},
                "playbooks": ["playbooks/app.yml"],
            },
        },
    }
    (tmp_path / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BAKERY_HOME", str(tmp_path / ".bakery"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def tags_of(client: Any, resource: str) -> dict[str, str]:
    found = client.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource]}])["Tags"]
    return {t["Key"]: t["Value"] for t in found}


@pytest.fixture()
def fake_clouds(moto: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """Both clouds of the repository's images.yaml on loopback: moto (with Debian's AMI) for aws,
    the fake GCE server (with the debian-12 family) for gcp. Yields (moto endpoint, fake GCE)."""
    from tests.fakes.gce import FakeGce

    with FakeGce() as gce:
        gce.add_image(
            "debian-cloud",
            "debian-12-bookworm-v20260101",
            family="debian-12",
            creation_timestamp="2026-01-01T00:00:00.000-00:00",
        )
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
        monkeypatch.setenv("BAKERY_GCP_ENDPOINT", gce.endpoint)
        yield moto, gce
