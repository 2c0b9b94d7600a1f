"""A group that follows `stable` never runs an image that was not promoted to `stable`, whatever
the order of bakes: a managed instance group of the fake Compute server (tests/integration/
gcp_groups.py), images baked and signed by `bakery build` through the stand-in `packer` of
test_gcp_fake.py (it creates the image through the Compute API as googlecompute does), and the CLI
as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bakery.cli.app import app
from tests.fakes.provider import DPKG
from tests.integration.gcp_groups import CHECK, PROJECT, ZONE, World, gcp_world, seed_mig
from tests.integration.test_gcp_fake import REPO, STAND_IN

GROUP = "web-gcp"
runner = CliRunner()


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "templates", root / "templates")
    monkeypatch.chdir(root)
    monkeypatch.setenv("BAKERY_HOME", str(root / ".bakery"))
    with gcp_world(tmp_path, monkeypatch) as made:
        made.gce.add_image(
            "debian-cloud", "debian-12-bookworm-v20260101", family="debian-12",
            creation_timestamp="2026-01-01T00:00:00.000-00:00",
        )  # fmt: skip
        monkeypatch.setenv("BAKERY_GCP_ENDPOINT", made.gce.endpoint)
        bindir = tmp_path / "stand-in"
        bindir.mkdir()
        (bindir / "packer").write_text(
            STAND_IN.format(python=sys.executable, endpoint=made.gce.endpoint, dpkg=str(DPKG))
        )
        (bindir / "packer").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        seed_mig(made)
        config = {
            "targets": {"gcp": {"kind": "gcp", "project": PROJECT, "zone": ZONE, "endpoint": made.gce.endpoint}},
            "images": {
                "web": {
                    "version": "1.0",
                    "source": {"gcp": {"family": "debian-12", "project": "debian-cloud"}},
                    "playbooks": ["playbooks/base.yml"],
                }
            },
            "groups": {
                GROUP: {
                    "image": "web",
                    "target": "gcp",
                    "channel": "stable",
                    "health": {"grace_seconds": 0, "timeout_seconds": 3},
                    "strategy": {"type": "rolling"},
                    "gcp": {"mig": "web-mig", "zone": ZONE, "health_check": CHECK},
                }
            },
            "channels": {"testing": {}, "stable": {"promote_from": "testing"}},
            "trust": {"require": True},
        }
        (root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        yield made


def bake() -> tuple[str, str]:
    """A new signed bake of web: (its ref, its image's name)."""
    baked = bakery("build", "web", "--target", "gcp", "--force", "--json")
    assert baked.exit_code == 0, baked.output
    record = json.loads(baked.stdout[baked.stdout.index("{") :])["record"]
    return f"web@{record['version']}", record["locations"][0].rpartition("/")[2]


def promoted(ref: str, *channels: str) -> None:
    for channel in channels:
        result = bakery("promote", ref, "--to", channel, "--target", "gcp")
        assert result.exit_code == 0, result.output


def test_a_group_following_stable_only_ever_runs_what_was_promoted_to_stable(world: World) -> None:
    before = world.images_of()
    first, first_image = bake()
    none = bakery("rollout", GROUP, "--yes")
    assert none.exit_code == 2, none.output
    assert f"{GROUP} follows channel stable, which has no head for web on gcp" in none.stderr
    assert world.images_of() == before

    promoted(first, "testing", "stable")
    second, second_image = bake()  # baked after the promotion: the newest, never promoted
    rolled = bakery("rollout", GROUP, "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert world.images_of() == [first_image] * 3
    assert bakery("rollout", "--behind", "--yes").stdout == "no group is behind its channel\n"

    unsigned = bakery("promote", "web@1.0.2", "--to", "testing", "--target", "gcp")  # labelled, never signed
    assert (
        unsigned.exit_code == 1 and "verified: attestation: unsigned: no attestation for web@1.0.2" in unsigned.stderr
    )
    status = bakery("status", GROUP)
    assert status.exit_code == 0, status.output
    assert f"  channel:   stable: head {first}\n" in status.stdout
    assert world.images_of() == [first_image] * 3

    promoted(second, "testing", "stable")
    behind = bakery("status", GROUP)
    assert behind.exit_code == 3 and f"behind channel stable: its head is {second}" in behind.stdout
    assert bakery("rollout", "--behind", "--yes").exit_code == 0
    assert world.images_of() == [second_image] * 3
