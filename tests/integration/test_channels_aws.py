"""A group that follows `stable` never runs an image that was not promoted to `stable`, whatever
the order of bakes: an Auto Scaling group on the moto server (tests/integration/aws_groups.py),
AMIs baked and signed by a real `packer build` against moto, and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bakery.cli.app import app
from tests.integration.aws_groups import GROUP, World

runner = CliRunner()


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture()
def world(asg_world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    path = asg_world.root / "images.yaml"
    config = yaml.safe_load(path.read_text())
    config["groups"][GROUP]["channel"] = "stable"
    config["channels"] = {"testing": {}, "stable": {"promote_from": "testing"}}
    config["trust"] = {"require": True}  # this workspace's own key, required
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return asg_world


def bake() -> tuple[str, str]:
    """A new signed bake of web: (its ref, its AMI)."""
    baked = bakery("build", "web", "--target", "aws", "--force", "--json")
    assert baked.exit_code == 0, baked.output
    record = json.loads(baked.stdout)["record"]
    return f"web@{record['version']}", record["locations"][0].rpartition(":")[2]


def promoted(ref: str, *channels: str) -> None:
    for channel in channels:
        result = bakery("promote", ref, "--to", channel, "--target", "aws")
        assert result.exit_code == 0, result.output


def test_a_group_following_stable_only_ever_runs_what_was_promoted_to_stable(world: World) -> None:
    before = world.images_run()
    first, first_ami = bake()
    none = bakery("rollout", GROUP, "--yes")
    assert none.exit_code == 2, none.output
    assert f"{GROUP} follows channel stable, which has no head for web on aws" in none.stderr
    assert world.images_run() == before and not world.refreshes()

    promoted(first, "testing")  # testing only: stable still has no head
    assert bakery("rollout", GROUP, "--yes").exit_code == 2
    promoted(first, "stable")
    rolled = bakery("rollout", GROUP, "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert world.images_run() == [first_ami] * 4

    second, second_ami = bake()  # newer than the head, and not promoted
    again = bakery("rollout", GROUP, "--yes")
    assert again.exit_code == 0, again.output
    assert f"up to date: every instance of {GROUP} runs {first}" in again.stdout
    assert bakery("status", GROUP).exit_code == 0
    assert world.images_run() == [first_ami] * 4

    refused = bakery("promote", second, "--to", "stable", "--target", "aws")  # not a head of testing yet
    assert refused.exit_code == 1 and f"promote_from: {second} was never the head of testing" in refused.stderr
    promoted(second, "testing", "stable")
    status = bakery("status", GROUP)
    assert status.exit_code == 3 and f"behind channel stable: its head is {second}" in status.stdout
    caught_up = bakery("rollout", "--behind", "--yes")
    assert caught_up.exit_code == 0, caught_up.output
    assert world.images_run() == [second_ami] * 4

    back = bakery("promote", "--rollback", "stable", "web", "--target", "aws", "--reason", "page regression")
    assert back.exit_code == 0, back.output
    assert bakery("rollout", "--behind", "--yes").exit_code == 0
    assert world.images_run() == [first_ami] * 4
    launched = {v["LaunchTemplateData"]["ImageId"] for v in world.versions().values()}
    assert launched == {world.amis["1.0.0"], first_ami, second_ami}  # the group's start, and what stable held
    assert world.amis["1.0.1"] not in launched  # a bake never promoted (and unsigned)
