"""AWS bakes through a moto server: real `packer build` of the rendered amazon-ebs template, then
tags on the AMI, its snapshots and the copy in a second region, the catalog, plan and skip, all
checked through boto3. The target has `communicator: none` (moto's instances exist nowhere, so no
provisioner can run); provisioning itself is covered by the local e2e bakes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bakery.cli.app import app
from bakery.core import jcs
from tests.integration.aws_world import ec2, tags_of

runner = CliRunner()


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_bake_tags_ami_snapshots_and_regional_copy(aws_project: Path, moto: str) -> None:
    result = bakery("build", "base", "--target", "aws", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.split("\n{", 1)[-1] if not result.stdout.startswith("{") else result.stdout)
    record = record["record"]
    assert record["version"] == "1.0.0"
    assert record["base"] == "ami-0d1e0000000000002"  # the filter was resolved to the newest match first
    locations = dict(loc.split(":") for loc in record["locations"])
    assert set(locations) == {"eu-west-1", "eu-central-1"}
    described: dict[str, Any] = {}  # what the provenance subject binds: every AMI and snapshot
    for region, ami in locations.items():
        client = ec2(moto, region)
        image = client.describe_images(ImageIds=[ami])["Images"][0]
        snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
        assert snapshots
        described[region] = {"image": ami, "snapshots": sorted(snapshots), "created": image["CreationDate"]}
        for resource in [ami, *snapshots]:
            tags = tags_of(client, resource)
            assert tags["bakery:image"] == "base" and tags["bakery:version"] == "1.0.0", (region, resource)
            assert tags["bakery:state"] == "complete"
            assert tags["bakery:inputs-digest"] == json.loads(result.stdout)["inputs_digest"]
            assert tags["team"] == "platform"
            assert int(tags["bakery:provenance-chunks"]) >= 1
            assert len(tags) <= 50 and all(len(v) <= 256 for v in tags.values())

    listed = bakery("images", "--target", "aws", "--json")
    assert listed.exit_code == 0, listed.output
    (image,) = json.loads(listed.stdout)["images"]
    assert image["name"] == "base" and sorted(image["locations"]) == sorted(record["locations"])

    shown = bakery("show", "base@1.0.0", "--target", "aws", "--json")
    assert shown.exit_code == 0, shown.output
    statement = json.loads(shown.stdout)["provenance"]
    assert statement["subject"][0]["digest"] == {
        "awsImageId": locations["eu-west-1"],
        "sha256": jcs.digest({"kind": "aws", "images": described}).removeprefix("sha256:"),
    }
    deps = {d["name"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["ami:debian-12-amd64-20260201-1000"]["digest"] == {"awsImageId": "ami-0d1e0000000000002"}


def test_second_bake_is_skipped_and_chain_builds_on_parent(aws_project: Path, moto: str) -> None:
    assert bakery("build", "base", "-t", "aws").exit_code == 0
    again = bakery("build", "base", "-t", "aws")
    assert again.exit_code == 0, again.output
    assert "up to date: base@1.0.0 on aws has the same inputs digest" in again.output

    child = bakery("build", "web", "-t", "aws", "--json")
    assert child.exit_code == 0, child.output
    web = json.loads(child.stdout)["record"]
    assert web["parent"] == "base@1.0.0" and web["version"] == "2.1.0"
    base_ami = json.loads(bakery("images", "base", "-t", "aws", "--json").stdout)["images"][0]["locations"]
    assert web["base"] == dict(loc.split(":") for loc in base_ami)["eu-west-1"]


def test_plan_and_stale_builds(aws_project: Path, moto: str) -> None:
    plan = json.loads(bakery("plan", "-t", "aws", "--json").stdout)
    assert [(i["image"], i["status"]) for i in plan["items"]] == [("app", "new"), ("base", "new"), ("web", "new")]
    assert {m["image"] for m in plan["matrix"]} == {"app", "base", "web"}
    assert [[m["image"] for m in wave] for wave in plan["waves"]] == [["app", "base"], ["web"]]

    first = bakery("build", "--stale", "-t", "aws", "--jobs", "2")
    assert first.exit_code == 0, first.output
    assert re.search(r"built\s+base on aws", first.output) and re.search(r"built\s+web on aws", first.output)

    second = bakery("build", "--stale", "-t", "aws")
    assert second.exit_code == 0, second.output
    assert "nothing to bake: every image is up to date" in second.output
    assert "built " not in second.output.replace("up-to-date", "")

    # Editing a playbook: exactly the images that use it, and their children.
    (aws_project / "playbooks" / "app.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks: [] # v2\n")
    items = {i["image"]: i for i in json.loads(bakery("plan", "-t", "aws", "--json").stdout)["items"]}
    assert items["app"]["status"] == "stale" and "playbooks/app.yml changed" in items["app"]["reasons"]
    assert items["base"]["status"] == "up-to-date" and items["web"]["status"] == "up-to-date"

    # A newer base AMI matching the filter: base and all its descendants.
    ec2(moto).register_image(
        Name="debian-12-amd64-20260301-1000",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )
    text = bakery("plan", "-t", "aws")
    assert text.exit_code == 0, text.output
    items = {i["image"]: i for i in json.loads(bakery("plan", "-t", "aws", "--json").stdout)["items"]}
    assert items["base"]["status"] == "stale"
    assert items["base"]["reasons"][0].startswith("base ami-0d1e0000000000002 → ami-")
    assert items["web"]["status"] == "stale" and items["web"]["reasons"] == ["parent base will be baked first"]
    assert "base ami-0d1e0000000000002 → ami-" in text.stdout


def test_concurrent_bakes_of_one_image_make_one_version(aws_project: Path, moto: str) -> None:
    env = {**os.environ, "BAKERY_HOME": str(aws_project / ".bakery")}
    argv = [str(Path(sys.executable).parent / "bakery"), "build", "app", "-t", "aws"]
    first = subprocess.Popen(
        argv, cwd=aws_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    second = subprocess.Popen(
        argv, cwd=aws_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    assert sum("baked app@0.3.0 on aws" in o for o in outputs) == 1
    assert sum("up to date: app@0.3.0 on aws" in o for o in outputs) == 1
    assert any("another bake of app on aws is running" in o for o in outputs)
    amis = ec2(moto).describe_images(Owners=["self"], Filters=[{"Name": "tag:bakery:image", "Values": ["app"]}])
    assert len(amis["Images"]) == 1


def _left_by_a_dead_bake(moto: str, version: str, *, host: str, pid: int, heartbeat: str | None) -> str:
    """An AMI as a bake leaves it when it is killed after Packer registered it: bakery's mark in
    the description from the start, the pending tags, and the owner and heartbeat it wrote."""
    from bakery.core.debris import Owner

    client = ec2(moto)
    ami = client.register_image(
        Name=f"app-{version}",
        Description="app image [bakery:deadbeef0000]",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    owner = Owner("deadbeef0000", host, pid, "0123456789ab", "2026-01-01T10:00:00Z")
    tags = {
        "bakery:image": "app",
        "bakery:version": version,
        "bakery:target": "aws",
        "bakery:state": "pending",
        "bakery:invocation": "deadbeef0000",
        "bakery:owner": ";".join(f"{k}={v}" for k, v in owner.fields().items()),
    }
    if heartbeat:
        tags["bakery:heartbeat"] = heartbeat
    client.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return str(ami)


def test_debris_of_a_bake_on_another_host_is_kept_while_its_heartbeat_runs(aws_project: Path, moto: str) -> None:
    from datetime import UTC, datetime, timedelta

    recent = (datetime.now(UTC) - timedelta(seconds=30)).isoformat(timespec="seconds").replace("+00:00", "Z")
    ami = _left_by_a_dead_bake(moto, "0.3.0", host="build-7", pid=4242, heartbeat=recent)
    fresh = bakery("build", "app", "-t", "aws")
    assert fresh.exit_code == 1, fresh.output
    assert "another bake of app@0.3.0 on aws is under way: the bake deadbeef0000 started 2026-01-01T10:00:00Z" in (
        fresh.output
    )
    assert "on build-7 (pid 4242) is still running (heartbeat 3" in fresh.output
    assert ec2(moto).describe_images(ImageIds=[ami])["Images"], "a live bake's AMI was removed"

    stopped = (datetime.now(UTC) - timedelta(minutes=6)).isoformat(timespec="seconds").replace("+00:00", "Z")
    ec2(moto).create_tags(Resources=[ami], Tags=[{"Key": "bakery:heartbeat", "Value": stopped}])
    result = bakery("build", "app", "-t", "aws", "--json")
    assert result.exit_code == 0, result.output
    assert f"removing app@0.3.0 on aws (eu-west-1:{ami}), left by the bake deadbeef0000 started" in result.output
    assert f"its heartbeat stopped at {stopped}" in result.output
    assert json.loads(result.stdout[result.stdout.index("{") :])["record"]["version"] == "0.3.1"
    assert ec2(moto).describe_images(ImageIds=[ami])["Images"] == []
    listed = json.loads(bakery("images", "app", "-t", "aws", "--json").stdout)["images"]
    assert [i["version"] for i in listed] == ["0.3.1"]


def test_debris_of_a_dead_process_on_this_host_is_removed_at_once(aws_project: Path, moto: str) -> None:
    import socket

    from bakery.core.debris import boot_id

    dead = subprocess.Popen(["true"])
    dead.wait()
    ami = _left_by_a_dead_bake(moto, "0.3.0", host=socket.gethostname(), pid=dead.pid, heartbeat=None)
    client = ec2(moto)
    client.create_tags(  # the bake ran in this boot: only its process can prove it dead
        Resources=[ami],
        Tags=[
            {
                "Key": "bakery:owner",
                "Value": f"invocation=deadbeef0000;host={socket.gethostname()};pid={dead.pid};boot={boot_id()};"
                "started=2026-01-01T10:00:00Z",
            }
        ],
    )
    result = bakery("build", "app", "-t", "aws")
    assert result.exit_code == 0, result.output
    assert f"pid {dead.pid}); that process has exited" in result.output
    assert client.describe_images(ImageIds=[ami])["Images"] == []


def test_images_without_bakery_s_mark_are_never_touched(aws_project: Path, moto: str) -> None:
    client = ec2(moto)
    foreign = client.register_image(
        Name="app-0.3.7",
        Description="made by hand",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    result = bakery("build", "app", "-t", "aws")
    assert result.exit_code == 0, result.output
    assert client.describe_images(ImageIds=[foreign])["Images"][0]["Description"] == "made by hand"


def test_images_reports_two_images_claiming_one_version(aws_project: Path, moto: str) -> None:
    assert bakery("build", "app", "-t", "aws").exit_code == 0
    client = ec2(moto)
    (original,) = client.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["app-0.3.0-*"]}])[
        "Images"
    ]
    rival = client.register_image(
        Name="app-0.3.0",
        Description="[bakery:0badc0ffee00]",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    tags = {t["Key"]: t["Value"] for t in original["Tags"]}
    tags["bakery:invocation"] = "0badc0ffee00"
    client.create_tags(Resources=[rival], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    listed = bakery("images", "app", "-t", "aws", "--json")
    assert listed.exit_code == 1
    document = json.loads(listed.stdout)
    primaries = sorted(loc for i in document["images"] for loc in i["locations"] if loc.startswith("eu-west-1"))
    assert primaries == sorted([f"eu-west-1:{original['ImageId']}", f"eu-west-1:{rival}"])
    (conflict,) = document["conflicts"]
    assert conflict.startswith("app@0.3.0 on aws is claimed by 2 images") and rival in conflict
    assert "error: conflict: app@0.3.0 on aws is claimed by 2 images" in listed.stderr


def test_missing_tags_are_repaired_and_faults_retried(aws_project: Path, moto: str) -> None:
    """A throttle and a 5xx, once each, are retried; tags that did not stick are written again."""
    from botocore.awsrequest import AWSResponse

    from bakery.bake.service import Baker
    from bakery.config import load as config
    from bakery.progress import Recording
    from bakery.providers.aws.provider import default_clients
    from bakery.workspace import Workspace

    calls: dict[str, int] = {}
    dropped: list[str] = []

    def client_factory(service: str, region: str, endpoint: str | None) -> Any:
        client = default_clients(service, region, endpoint)

        def fault(request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
            operation_name = event_name.rsplit(".", 1)[-1]
            calls[operation_name] = calls.get(operation_name, 0) + 1
            if operation_name == "DescribeImages" and calls[operation_name] == 1:
                body = (
                    b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow down</Message>"
                    b"</Error></Errors><RequestID>x</RequestID></Response>"
                )
                return AWSResponse(request.url, 503, {}, _Raw(body))
            body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
            stamping = b"bakery%3Ainputs-digest" in body  # the stamp, not a heartbeat while Packer runs
            if operation_name == "CreateTags" and region == "eu-central-1" and stamping and not dropped:
                dropped.append(region)  # eventual consistency: answered OK, applied nothing
                return AWSResponse(
                    request.url, 200, {}, _Raw(b"<CreateTagsResponse><return>true</return></CreateTagsResponse>")
                )
            if operation_name == "CreateTags" and calls[operation_name] == 2:
                return AWSResponse(
                    request.url,
                    500,
                    {},
                    _Raw(
                        b"<Response><Errors><Error><Code>InternalError"
                        b"</Code><Message>boom</Message></Error></Errors>"
                        b"</Response>"
                    ),
                )
            return None

        client.meta.events.register("before-send.ec2", fault)
        return client

    project = config.load(aws_project / "images.yaml")
    reporter = Recording()
    result = Baker(project, Workspace.for_project(aws_project), reporter, clients=client_factory).bake("app", "aws")
    assert dropped == ["eu-central-1"]
    assert calls["DescribeImages"] >= 2 and calls["CreateTags"] >= 3  # the throttle and the 500 were retried
    assert calls["ModifyImageAttribute"] == 2  # IMDSv2 on the AMI and its copy (Packer 1.6 cannot ask for it)
    assert any("repairing tags" in n for n in reporter.notes)
    for location in result.record.locations:
        region, ami = location.split(":")
        client = ec2(moto, region)
        image = client.describe_images(ImageIds=[ami])["Images"][0]
        for resource in [ami, *(m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"])]:
            assert tags_of(client, resource)["bakery:state"] == "complete", (region, resource)
    mine = ec2(moto).describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["app-*"]}])["Images"]
    assert len(mine) == 1  # no duplicate AMI


class _Raw:
    """The raw body object AWSResponse reads from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self) -> bytes:
        return self._body


def test_a_bake_that_cannot_be_recorded_removes_its_amis(aws_project: Path, moto: str) -> None:
    """Packer made the AMIs, but tagging is refused: nothing half-registered is left behind."""
    from botocore.awsrequest import AWSResponse

    from bakery.bake.service import Baker
    from bakery.config import load as config
    from bakery.errors import ProviderError
    from bakery.progress import Recording
    from bakery.providers.aws.provider import default_clients
    from bakery.workspace import Workspace

    def client_factory(service: str, region: str, endpoint: str | None) -> Any:
        client = default_clients(service, region, endpoint)

        def refuse(request: Any, **_: Any) -> AWSResponse:
            body = (
                b"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message>"
                b"</Error></Errors></Response>"
            )
            return AWSResponse(request.url, 403, {}, _Raw(body))

        client.meta.events.register("before-send.ec2.CreateTags", refuse)
        return client

    project = config.load(aws_project / "images.yaml")
    reporter = Recording()
    with pytest.raises(ProviderError, match="UnauthorizedOperation"):
        Baker(project, Workspace.for_project(aws_project), reporter, clients=client_factory).bake("app", "aws")
    removed = [n for n in reporter.notes if n.startswith("removed what this bake created on aws")]
    assert len(removed) == 1 and "eu-west-1" in removed[0] and "eu-central-1" in removed[0], reporter.notes
    for region in ("eu-west-1", "eu-central-1"):
        left = ec2(moto, region).describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["app-*"]}])
        assert left["Images"] == [], region


@pytest.mark.parametrize("race", ["staggered", "simultaneous"])
def test_two_machines_baking_one_image_make_one_version(aws_project: Path, moto: str, race: str) -> None:
    """Two workspaces (two machines: no shared lock) bake at once: one image keeps 0.3.0. When both
    get past the check for a running bake before either AMI exists (CreateImage held back for both),
    the one created first keeps the version and the other removes its own."""
    from tests.fakes import moto_ebs

    if race == "simultaneous":
        # Each bake's CreateImage waits for the other's: both pass the check before either AMI exists,
        # however loaded the machine is.
        moto_ebs.set_faults(
            moto, delays=[{"action": "CreateImage", "agent": "aws-sdk-go", "barrier": 2, "seconds": 240}]
        )
    argv = [str(Path(sys.executable).parent / "bakery"), "build", "app", "-t", "aws"]
    bakes = [
        subprocess.Popen(
            argv,
            cwd=aws_project,
            env={**os.environ, "BAKERY_HOME": str(aws_project / f".bakery-{machine}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for machine in ("a", "b")
    ]
    outputs = [p.communicate(timeout=300)[0] for p in bakes]
    moto_ebs.set_faults(moto)
    codes = sorted(p.returncode for p in bakes)
    both = [f"--- machine {m} (exit {p.returncode}):\n{o}" for m, p, o in zip("ab", bakes, outputs, strict=True)]
    assert codes == [0, 1], "\n\n".join(both)
    winner = outputs[[p.returncode for p in bakes].index(0)]
    loser = outputs[[p.returncode for p in bakes].index(1)]
    assert "baked app@0.3.0 on aws" in winner
    if race == "simultaneous":
        assert "app@0.3.0 on aws was taken first by the bake" in loser, loser
        assert "removed what this bake created on aws" in loser, loser
    else:
        assert "another bake of app@0.3.0 on aws is under way" in loser or "was taken first by" in loser, loser
    listed = bakery("images", "app", "-t", "aws", "--json")
    assert listed.exit_code == 0, listed.output
    assert [i["version"] for i in json.loads(listed.stdout)["images"]] == ["0.3.0"]
    for region in ("eu-west-1", "eu-central-1"):
        mine = ec2(moto, region).describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["app-*"]}])
        assert len(mine["Images"]) == 1, region
