"""Two machines, one registry: an engineer's terminal and a scheduled job, each with its own
workspace and signing key, sharing attestations, revocations and one audit chain through S3 (the
moto server) or GCS (tests/fakes/gcs.py), through the CLI as each would run it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from bakery.bake import tools
from bakery.bake.service import Baker
from bakery.groups.base import Release
from bakery.progress import Recording
from bakery.trust.keys import generate
from bakery.workspace import Workspace
from tests.conftest import VALID_YAML
from tests.fakes.driver import FakeDriver
from tests.fakes.gcs import FakeGcs
from tests.fakes.packer import FakePacker
from tests.fakes.patching import everywhere
from tests.fakes.provider import FakeProvider
from tests.integration.aws_world import moto_endpoint  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[FakeGcs]:
    with FakeGcs() as fake:
        yield fake


@pytest.fixture(params=["s3", "gcs"])
def registry(request: pytest.FixtureRequest) -> dict[str, Any]:
    bucket = f"team-{uuid.uuid4().hex[:10]}"
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        return {"kind": "s3", "bucket": bucket, "prefix": "bakery/", "endpoint": endpoint}
    fake: FakeGcs = request.getfixturevalue("fake_gcs")
    fake.add_bucket(bucket)
    return {"kind": "gcs", "bucket": bucket, "prefix": "bakery/", "endpoint": fake.endpoint}


@dataclass
class Machine:
    name: str
    root: Path
    home: Path
    cli: Any
    monkeypatch: pytest.MonkeyPatch

    def run(self, *args: str) -> Any:
        self.monkeypatch.setenv("BAKERY_HOME", str(self.home))
        self.monkeypatch.chdir(self.root)
        return self.cli(*args)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        return result.exit_code, json.loads(result.stdout)


@pytest.fixture()
def machines(
    tmp_path: Path, registry: dict[str, Any], monkeypatch: pytest.MonkeyPatch, bakery_cli: Any
) -> Iterator[tuple[Machine, Machine, FakeProvider, FakeDriver]]:
    keys = tmp_path / "keys"
    generate(keys / "alice.key")
    generate(keys / "ci.key")
    config = yaml.safe_load(VALID_YAML)
    config["groups"] = {"web-eu": {"image": "web", "target": "aws", "aws": {"asg": "a", "launch_template": "l"}}}
    config["registry"] = registry
    pair = []
    for name in ("alice", "ci"):
        root = tmp_path / name
        (root / "playbooks").mkdir(parents=True)
        for book in ("base.yml", "web.yml"):
            (root / "playbooks" / book).write_text("- hosts: all\n  tasks: []\n")
        config["trust"] = {
            "keys": [
                {"name": "alice", "public_key": str(keys / "alice.key.pub")},
                {"name": "ci", "public_key": str(keys / "ci.key.pub")},
            ],
            "signing": {"key_file": str(keys / f"{name}.key")},
        }
        (root / "images.yaml").write_text(yaml.safe_dump(config))
        pair.append(Machine(name, root, tmp_path / f"{name}-home", bakery_cli, monkeypatch))
    packer = FakePacker(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{packer.bin_dir}{os.pathsep}{os.environ['PATH']}")
    tools.packer_version.cache_clear()
    cloud, driver = FakeProvider(inbox=tmp_path / "cloud"), FakeDriver()  # one cloud both machines see
    with (
        everywhere(monkeypatch, "bakery.providers.base", "get_provider", lambda *a, **k: cloud),
        everywhere(monkeypatch, "bakery.groups.base", "get_driver", lambda *a, **k: driver),
    ):
        yield pair[0], pair[1], cloud, driver
    tools.packer_version.cache_clear()


def bake(machine: Machine, cloud: FakeProvider, *, force: bool = False) -> str:
    from bakery.config.load import load

    machine.monkeypatch.setenv("BAKERY_HOME", str(machine.home))
    project = load(machine.root / "images.yaml")
    baker = Baker(project, Workspace(machine.home), Recording(), provider=cloud)
    return baker.bake("web", "aws", force=force).record.ref


def test_two_machines_share_attestations_revocations_and_one_audit_chain(
    machines: tuple[Machine, Machine, FakeProvider, FakeDriver],
) -> None:
    alice, ci, cloud, driver = machines
    first = bake(ci, cloud)  # the scheduled job bakes and signs with its key
    code, doc = alice.json("verify", first, "--target", "aws")
    assert code == 0 and doc["signed_by"] == ["ci"], doc  # alice finds ci's attestation in the bucket

    code, doc = alice.json("revoke", first, "--reason", "base had CVE-2026-0002", "--target", "aws")
    assert code == 0, doc
    driver.seed("web-eu", Release(first, "img-x", None, "d"))
    status = ci.run("status", "web-eu")  # the job sees alice's revocation
    assert status.exit_code == 3 and f"runs revoked image {first}" in status.stdout

    second = bake(ci, cloud, force=True)
    rolled = ci.run("rollout", "web-eu", "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert driver.runs("web-eu") == {second: 2}

    code, log = alice.json("audit")
    assert code == 0
    actions = [(e["action"], e["subject"].split(" ")[0]) for e in log["events"]]
    assert actions[:2] == [("build", first), ("sign", first)]
    assert ("revoke", first) in actions and ("rollout", "group") in actions
    assert [e["seq"] for e in log["events"]] == list(range(1, len(log["events"]) + 1))
    code, report = ci.json("audit", "verify", "--full")
    assert code == 0 and report["events"] == len(log["events"]) and not report["problems"], report
    code, report = ci.json("audit", "verify")  # from where it verified last: nothing new
    assert code == 0 and report["head"] == len(log["events"]) and report["checked_from"] == report["head"], report
