"""`bakery prune` on the moto server: nothing in use is touched, the dry run says why each version
goes or stays, every region's copy goes with its snapshots, and a
prune interrupted halfway is finished by the next one."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from bakery.cli.app import app
from bakery.config.load import load
from bakery.errors import Interrupted
from bakery.progress import Silent
from bakery.providers.aws.provider import default_clients
from bakery.prune.service import Pruner
from bakery.workspace import Workspace
from tests.integration.aws_groups import REGION, World
from tests.integration.aws_prune import COPY, OTHER_ACCOUNT, PruneWorld, build

runner = CliRunner()


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture()
def pw(asg_world: World) -> PruneWorld:
    return build(asg_world)


def verdicts(payload: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {v["image"]: (v["action"], v["reasons"]) for v in payload["verdicts"]}


def test_the_dry_run_gives_every_version_its_reason_and_touches_nothing(pw: PruneWorld) -> None:
    result = bakery("prune", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    got = verdicts(payload)
    assert payload["dry_run"] is True
    assert got["web@1.0.0"][0] == "keep"
    assert "in use: group web-aws's template lt-" in " ".join(got["web@1.0.0"][1])
    assert f"in use: launch template web-lt version 1 in {REGION}" in got["web@1.0.0"][1]
    assert any(r.startswith("in use: group web-aws's instances i-") for r in got["web@1.0.0"][1])
    assert not any(r.startswith("in use: instance ") for r in got["web@1.0.0"][1])  # named once, by its group
    assert f"in use: launch configuration legacy-lc in {REGION}" in got["web@1.0.1"][1]
    assert f"in use: Auto Scaling group legacy-asg in {REGION}" in got["web@1.0.1"][1]
    assert got["web@1.0.2"] == ("keep", [f"in use: launch template batch-lt version 2 in {REGION}"])
    assert got["web@1.0.3"][0] == "keep"
    assert got["web@1.0.3"][1][0].startswith("in use: instance i-") and f"(running) in {COPY}" in got["web@1.0.3"][1][0]
    assert got["web@1.0.4"] == ("keep", ["in the kept history of channel stable"])
    assert got["web@1.0.5"] == ("keep", ["head of channel stable"])
    assert got["web@1.0.6"] == ("keep", ["parent of app@1.0.0, which stays"])
    ami = pw.amis["web@1.0.7"][REGION]
    assert got["web@1.0.7"] == ("keep", [f"shared with {OTHER_ACCOUNT} ({ami} in {REGION})"])
    assert got["web@1.0.8"] == ("remove", ["older than 30 days, not among the newest 1, unused"])
    assert got["web@1.0.9"][0] == "remove"
    assert got["web@1.0.10"][1][0].startswith("younger than 30 days")
    assert got["web@1.0.11"] == (
        "keep",
        [f"in use: launch template golden-lt version 1 in {REGION} (through SSM parameter /golden/web:1)"],
    )
    assert got["web@1.0.12"][0] == "keep" and len(got["web@1.0.12"][1]) == 1
    assert re.fullmatch(rf"in use: EC2 Fleet fleet-[0-9a-f-]+ \(active\) in {REGION}", got["web@1.0.12"][1][0])
    assert got["web@1.0.13"][0] == "keep" and len(got["web@1.0.13"][1]) == 1
    assert re.fullmatch(rf"in use: Spot Fleet request sfr-[0-9a-f-]+ \(active\) in {REGION}", got["web@1.0.13"][1][0])
    snapshot, ami = pw.snapshots["web@1.0.14"][REGION], pw.amis["web@1.0.14"][REGION]
    assert got["web@1.0.14"] == ("keep", [f"shared with {OTHER_ACCOUNT} (snapshot {snapshot} of {ami} in {REGION})"])
    assert got["web@1.0.20"] == ("keep", ["among the newest 1"])
    assert got["app@1.0.0"] == ("keep", ["among the newest 3"])  # the default policy
    text = bakery("prune", "web")
    assert "web@1.0.8   aws     remove      older than 30 days, not among the newest 1, unused" in text.stdout, (
        text.stdout
    )
    assert "dry run: 2 version(s) would be removed; --yes removes them" in text.stdout
    for ref, copies in pw.amis.items():
        for region, ami in copies.items():
            assert pw.exists(region, ami), (ref, region)


def test_prune_removes_every_copy_with_its_snapshots_and_nothing_in_use(pw: PruneWorld) -> None:
    result = bakery("prune", "web", "--yes", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    removed = {r["image"]: r for r in payload["removed"]}
    assert sorted(removed) == ["web@1.0.8", "web@1.0.9"]
    for ref in ("web@1.0.8", "web@1.0.9"):
        for region in (REGION, COPY):
            assert not pw.exists(region, pw.amis[ref][region]), (ref, region)
    for ref in ("web@1.0.8", "web@1.0.9"):
        for region in (REGION, COPY):
            assert not pw.snapshot_exists(region, pw.snapshots[ref][region]), (ref, region)
        lines = removed[ref]["removed"]
        assert lines == [f"{pw.amis[ref][r]} in {r} with {pw.snapshots[ref][r]}" for r in sorted((REGION, COPY))]
    assert "deprecation not supported by this endpoint" in " ".join(removed["web@1.0.8"]["notes"])
    for ref, copies in pw.amis.items():
        if ref not in removed:
            for region, ami in copies.items():
                assert pw.exists(region, ami), (ref, region)
                assert pw.snapshot_exists(region, pw.snapshots[ref][region]), (ref, region)
    listed = bakery("images", "--target", "aws", "--json")
    assert "1.0.8" not in {i["version"] for i in json.loads(listed.stdout)["images"] if i["name"] == "web"}
    audit = json.loads(bakery("audit", "--json").stdout)["events"]
    assert {(e["action"], e["subject"], e["result"]) for e in audit} >= {
        ("prune", "web@1.0.8 on aws", "pruned"),
        ("prune", "web@1.0.9 on aws", "pruned"),
    }
    again = bakery("prune", "web", "--yes", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["removed"] == []


class StopsAtSnapshots:
    """An EC2 client that is interrupted (as by Ctrl-C) at its first snapshot deletion."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name == "delete_snapshot":
            raise Interrupted("prune: interrupted", exit_code=130)
        return getattr(self._client, name)


def test_an_interrupted_prune_leaves_a_journal_that_the_next_prune_finishes(pw: PruneWorld) -> None:
    project = load(pw.world.root / "images.yaml")
    ws = Workspace.for_project(project.root)

    def clients(service: str, region: str, endpoint: str | None) -> Any:
        made = default_clients(service, region, endpoint)
        return StopsAtSnapshots(made) if service == "ec2" else made

    with pytest.raises(Interrupted):
        Pruner(project, ws, Silent(), clients=clients).run("web", act=True)
    first = pw.amis["web@1.0.8"]
    assert not pw.exists(REGION, first[REGION]) and not pw.exists(COPY, first[COPY])  # deregistered
    for region in (REGION, COPY):
        assert pw.snapshot_exists(region, pw.snapshots["web@1.0.8"][region])  # not yet deleted
        assert pw.exists(region, pw.amis["web@1.0.9"][region])  # whole: not started
    journal = json.loads((ws.root / "prune" / "aws--web@1.0.8.json").read_text())
    assert journal["values"]["amis"][REGION]["snapshots"] == [pw.snapshots["web@1.0.8"][REGION]]

    dry = bakery("prune", "web")
    assert "interrupted prune of web@1.0.8 on aws (interrupted during snapshots)" in dry.stdout, (
        dry.output,
        dry.exception,
    )
    # a launch template made since names the deregistered AMI: its snapshots are what is left of it
    template = pw.ec2().create_launch_template(
        LaunchTemplateName="stale-lt", LaunchTemplateData={"ImageId": first[REGION]}
    )["LaunchTemplate"]["LaunchTemplateId"]
    refused = bakery("prune", "web", "--yes")
    assert refused.exit_code == 1, refused.output
    assert (
        "the interrupted prune of web@1.0.8 on aws removed part of it already, and the rest is "
        f"in use: launch template stale-lt version 1 in {REGION}"
    ) in refused.output
    assert pw.snapshot_exists(REGION, pw.snapshots["web@1.0.8"][REGION])
    pw.ec2().delete_launch_template(LaunchTemplateId=template)
    done = bakery("prune", "web", "--yes")
    assert done.exit_code == 0, done.output
    assert "finished interrupted prune of web@1.0.8 on aws" in done.stdout
    assert not pw.snapshot_exists(REGION, pw.snapshots["web@1.0.8"][REGION])
    assert not pw.snapshot_exists(COPY, pw.snapshots["web@1.0.8"][COPY])
    assert not pw.exists(REGION, pw.amis["web@1.0.9"][REGION])
    assert not (ws.root / "prune" / "aws--web@1.0.8.json").exists()


class StopsAtDeprecation:
    """An EC2 client that is interrupted (as by Ctrl-C) at its first deprecation."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name == "enable_image_deprecation":
            raise Interrupted("prune: interrupted", exit_code=130)
        return getattr(self._client, name)


def pruning_tags(pw: PruneWorld, ref: str) -> list[str]:
    found = []
    for region, ami in pw.amis[ref].items():
        for tag in pw.ec2(region).describe_images(ImageIds=[ami])["Images"][0].get("Tags", []):
            if tag["Key"] == "bakery:pruning":
                found.append(f"{ami} in {region}")
    return found


def test_an_interrupted_prune_of_an_image_used_since_is_abandoned_and_the_image_kept(pw: PruneWorld) -> None:
    project = load(pw.world.root / "images.yaml")
    ws = Workspace.for_project(project.root)

    def clients(service: str, region: str, endpoint: str | None) -> Any:
        made = default_clients(service, region, endpoint)
        return StopsAtDeprecation(made) if service == "ec2" else made

    with pytest.raises(Interrupted):
        Pruner(project, ws, Silent(), clients=clients).run("web", act=True)
    ami = pw.amis["web@1.0.8"][REGION]
    assert pruning_tags(pw, "web@1.0.8")  # noted, not yet deprecated
    # meanwhile someone launches from it
    pw.ec2().create_launch_template(
        LaunchTemplateName="hotfix-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"}
    )
    instance = pw.ec2().run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    instance_id = instance["Instances"][0]["InstanceId"]

    dry = bakery("prune", "web")
    assert dry.exit_code == 0, dry.output
    assert (
        "interrupted prune of web@1.0.8 on aws (interrupted during deprecate) would be abandoned: "
        f"in use: launch template hotfix-lt version 1 in {REGION}; in use: instance {instance_id} (running) in {REGION}"
    ) in dry.stdout, dry.stdout
    assert "web@1.0.8 on aws (interrupted during deprecate): `bakery prune --yes` finishes it" not in dry.stdout

    done = bakery("prune", "web", "--yes")
    assert done.exit_code == 0, done.output
    assert (
        f"abandoned the prune of web@1.0.8 on aws, kept: in use: launch template hotfix-lt version 1 in {REGION}"
    ) in done.stdout, done.stdout
    for region in (REGION, COPY):
        assert pw.exists(region, pw.amis["web@1.0.8"][region])
        assert pw.snapshot_exists(region, pw.snapshots["web@1.0.8"][region])
        assert not pw.exists(region, pw.amis["web@1.0.9"][region])  # the rest of the prune went on
    assert pruning_tags(pw, "web@1.0.8") == []
    assert not (ws.root / "prune" / "aws--web@1.0.8.json").exists()
    events = json.loads(bakery("audit", "--json").stdout)["events"]
    abandoned = [e for e in events if e["action"] == "prune" and e["result"] == "abandoned"]
    assert [e["subject"] for e in abandoned] == ["web@1.0.8 on aws"]
    assert abandoned[0]["details"]["why"].startswith("prune abandoned: in use: launch template hotfix-lt")


class UsedWhileDeprecating:
    """An EC2 client with which, as web@1.0.8 is deprecated, someone launches from it: the use
    starts after the prune decided, before it deregisters."""

    def __init__(self, client: Any, pw: PruneWorld, used: list[str]) -> None:
        self._client, self._pw, self._used = client, pw, used

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name != "enable_image_deprecation":
            return found

        def deprecate(**kwargs: Any) -> Any:
            if kwargs["ImageId"] == self._pw.amis["web@1.0.8"][REGION] and not self._used:
                self._used.append(kwargs["ImageId"])
                self._pw.ec2().create_launch_template(
                    LaunchTemplateName="late-lt", LaunchTemplateData={"ImageId": kwargs["ImageId"]}
                )
            return found(**kwargs)

        return deprecate


def test_a_use_that_starts_during_the_prune_stops_the_deregistration(pw: PruneWorld) -> None:
    project = load(pw.world.root / "images.yaml")
    ws = Workspace.for_project(project.root)

    used: list[str] = []

    def clients(service: str, region: str, endpoint: str | None) -> Any:
        made = default_clients(service, region, endpoint)
        return UsedWhileDeprecating(made, pw, used) if service == "ec2" else made

    result = Pruner(project, ws, Silent(), clients=clients).run("web", act=True)
    assert [r.image for r in result.removals] == ["web@1.0.9"]
    assert result.notes == (
        f"abandoned the prune of web@1.0.8 on aws, kept: in use: launch template late-lt version 1 in {REGION}",
    )
    for region in (REGION, COPY):
        assert pw.exists(region, pw.amis["web@1.0.8"][region])
    assert pruning_tags(pw, "web@1.0.8") == []
    assert not (ws.root / "prune" / "aws--web@1.0.8.json").exists()


class Denies:
    """A client on which IAM denies some operations (called directly or through a paginator)."""

    def __init__(self, client: Any, denied: dict[str, str]) -> None:
        self._client, self._denied = client, denied  # operation -> error code

    def _refuse(self, operation: str) -> Any:
        def refused(**_kwargs: Any) -> Any:
            error = {"Code": self._denied[operation], "Message": f"not authorized to perform {operation}"}
            raise ClientError({"Error": error}, operation)

        return refused

    def get_paginator(self, operation: str) -> Any:
        if operation in self._denied:
            return SimpleNamespace(paginate=self._refuse(operation))
        return self._client.get_paginator(operation)

    def __getattr__(self, name: str) -> Any:
        return self._refuse(name) if name in self._denied else getattr(self._client, name)


def test_what_cannot_be_read_keeps_every_image_it_could_be_and_says_why(pw: PruneWorld) -> None:
    project = load(pw.world.root / "images.yaml")
    ws = Workspace.for_project(project.root)
    pw.ec2().create_launch_template(
        LaunchTemplateName="team-lt", LaunchTemplateData={"ImageId": "resolve:ssm:/team/web"}
    )
    denied = {"ssm": {"get_parameter": "AccessDeniedException"}, "ec2": {"describe_fleets": "UnauthorizedOperation"}}

    def clients(service: str, region: str, endpoint: str | None) -> Any:
        made = default_clients(service, region, endpoint)
        return Denies(made, denied[service]) if service in denied else made

    dry = Pruner(project, ws, Silent(), clients=clients).run("web")
    reasons = {v.image: v.reasons for v in dry.verdicts}
    assert not dry.to_remove
    for ref in ("web@1.0.8", "web@1.0.9"):  # what an unhindered look removes
        assert reasons[ref] == (
            f"in use: could not tell: reading the EC2 Fleets in {COPY} was refused "
            "(UnauthorizedOperation: not authorized to perform describe_fleets)",
            f"in use: launch template golden-lt version 1 in {REGION} may use it: could not tell, SSM parameter "
            "/golden/web:1 could not be read (AccessDeniedException: not authorized to perform get_parameter)",
            f"in use: launch template team-lt version 1 in {REGION} may use it: could not tell, SSM parameter "
            "/team/web could not be read (AccessDeniedException: not authorized to perform get_parameter)",
            f"in use: could not tell: reading the EC2 Fleets in {REGION} was refused "
            "(UnauthorizedOperation: not authorized to perform describe_fleets)",
        ), reasons[ref]
    done = Pruner(project, ws, Silent(), clients=clients).run("web", act=True)
    assert done.removals == ()
    for region in (REGION, COPY):
        assert pw.exists(region, pw.amis["web@1.0.8"][region]) and pw.exists(region, pw.amis["web@1.0.9"][region])
