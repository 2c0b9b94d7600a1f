"""An Auto Scaling group world on the moto server (tests/fakes/moto_ebs.py with its instance
refresh): two baked versions of `web` (AMIs tagged as bakery tags them), a launch template pinned
at version 1, a target group, an alarm, a 4-instance ASG, and a project whose group `web-aws`
rolls it. Also the bench helper that counts the API calls of a watch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from bakery.core import provenance
from tests.fakes import moto_ebs

REGION = "eu-west-1"
TARGET = "aws"
GROUP = "web-aws"
ASG = "web-asg"
TEMPLATE = "web-lt"
TARGET_GROUP = "web-tg"
ALARM = "web-5xx"
BASE_AMI = "ami-0d1e0000000000001"  # seeded by aws_world
# Fast fake durations: a batch lands in 0.1s, checkpoint delays as asked.
FAST = {"pending_seconds": 0.05, "batch_seconds": 0.1, "cancel_seconds": 0.05}


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


def bake(endpoint: str, version: str, digest: str) -> str:
    """An AMI as a complete bakery bake of web@`version` leaves it (its stamp tags)."""
    ec2 = client(endpoint, "ec2")
    invocation = f"{int(version.replace('.', '')):012x}"
    ami = ec2.register_image(
        Name=provenance.aws_ami_name("web", version, TARGET, invocation),
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    stamp = {
        "image": "web",
        "version": version,
        "target": TARGET,
        "state": "complete",
        "inputs-digest": digest,
        "base": BASE_AMI,
        "created": "2026-01-01T00:00:00Z",
        "invocation": invocation,
    }
    tags = provenance.aws_tags(stamp, {}, None)
    ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return ami


@dataclass
class World:
    endpoint: str
    root: Path
    amis: dict[str, str] = field(default_factory=dict)  # version -> AMI
    template_id: str = ""
    target_group: str = ""

    def client(self, service: str) -> Any:
        return client(self.endpoint, service)

    def asg(self, name: str = ASG) -> dict[str, Any]:
        groups = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        found: dict[str, Any] = groups["AutoScalingGroups"][0]
        return found

    def instances(self, name: str = ASG) -> list[dict[str, Any]]:
        """The group's instances as EC2 describes them (AMI, tags)."""
        ids = [i["InstanceId"] for i in self.asg(name)["Instances"]]
        if not ids:
            return []
        pages = self.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
        return [i for r in pages for i in r["Instances"]]

    def images_run(self, name: str = ASG) -> list[str]:
        return sorted(i["ImageId"] for i in self.instances(name))

    def refreshes(self, name: str = ASG) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=name)[
            "InstanceRefreshes"
        ]
        return found

    def versions(self) -> dict[int, dict[str, Any]]:
        found = self.client("ec2").describe_launch_template_versions(LaunchTemplateId=self.template_id)
        return {int(v["VersionNumber"]): v for v in found["LaunchTemplateVersions"]}

    def targets(self) -> dict[str, str]:
        found = self.client("elbv2").describe_target_health(TargetGroupArn=self.target_group)
        return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in found["TargetHealthDescriptions"]}

    def alarm(self, state: str) -> None:
        self.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue=state, StateReason="test")

    def write_config(self, **group: Any) -> None:
        """images.yaml with the group `web-aws`; `group` overrides its keys (strategy, rollback...)."""
        settings = {
            "asg": ASG,
            "launch_template": TEMPLATE,
            "instance_warmup": 0,
            "target_groups": [TARGET_GROUP],
            "alarms": [ALARM],
        }
        settings.update(group.pop("aws", {}))
        config = {
            "targets": {TARGET: {"kind": "aws", "region": REGION, "endpoint": self.endpoint, "communicator": "none"}},
            "images": {
                "web": {
                    "version": "1.0",
                    "source": {"aws": {"ami": BASE_AMI}},
                    "playbooks": ["playbooks/base.yml"],
                }
            },
            "groups": {
                GROUP: {
                    "image": "web",
                    "target": TARGET,
                    "health": {"grace_seconds": 0, "timeout_seconds": 30},
                    "aws": settings,
                    **group,
                }
            },
        }
        (self.root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def build(endpoint: str, root: Path, *, size: int = 4, version: str = "1") -> World:
    """The world on a freshly reset moto: baked web@1.0.0 and web@1.0.1, the group on 1.0.0."""
    world = World(endpoint, root)
    (root / "playbooks").mkdir(parents=True, exist_ok=True)
    (root / "playbooks" / "base.yml").write_text("- hosts: all\n  tasks: []\n")
    world.amis = {
        "1.0.0": bake(endpoint, "1.0.0", "sha256:" + "a" * 64),
        "1.0.1": bake(endpoint, "1.0.1", "sha256:" + "b" * 64),
    }
    ec2, elbv2 = world.client("ec2"), world.client("elbv2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    world.template_id = ec2.create_launch_template(
        LaunchTemplateName=TEMPLATE,
        LaunchTemplateData={
            "ImageId": world.amis["1.0.0"],
            "InstanceType": "t3.micro",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "web"}]}],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    world.target_group = elbv2.create_target_group(Name=TARGET_GROUP, Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    world.client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    world.alarm("OK")
    world.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=ASG,
        LaunchTemplate={"LaunchTemplateId": world.template_id, "Version": version},
        MinSize=size,
        MaxSize=size * 2,
        DesiredCapacity=size,
        VPCZoneIdentifier=",".join(subnets[:2]),
        TargetGroupARNs=[world.target_group],
        Tags=[{"Key": "team", "Value": "web", "PropagateAtLaunch": True}],
    )
    world.write_config()
    return world


@pytest.fixture()
def asg_world(moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The world, in a project directory of its own that bakery runs in, with fast fake refreshes."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("BAKERY_HOME", str(root / ".bakery"))
    monkeypatch.setenv("BAKERY_POLL_SECONDS", "0.05")
    moto_ebs.set_faults(moto, refresh=FAST)
    try:
        yield build(moto, root)
    finally:
        moto_ebs.set_faults(moto)


def driver_rollout(world: World, strategy: dict[str, Any], *, to: str = "1.0.1", clients: Any = None) -> Any:
    """(driver, rollout) for driving the AWS driver directly, as the rollout service would."""
    from bakery.config.models import AwsTarget, Group, Strategy
    from bakery.groups.aws.driver import make
    from bakery.groups.base import Release, Rollout
    from bakery.groups.strategy import plan
    from bakery.progress import Recording
    from bakery.providers.aws.provider import default_clients
    from bakery.workspace import Workspace

    spec = AwsTarget(kind="aws", region=REGION, endpoint=world.endpoint)
    group = Group.model_validate(
        {
            "image": "web",
            "target": TARGET,
            "strategy": strategy,
            "health": {"grace_seconds": 0, "timeout_seconds": 30},
            "aws": {"asg": ASG, "launch_template": TEMPLATE, "target_groups": [TARGET_GROUP], "alarms": [ALARM]},
        }
    )
    driver = make(Workspace(world.root / ".bakery"), Recording(), clients or default_clients)
    state = driver.read(GROUP, group, spec)
    rollout = Rollout(
        id="r-00000000abcd",
        kind="rollout",
        group=GROUP,
        spec=group,
        target=TARGET,
        target_spec=spec,
        to=Release(f"web@{to}", world.amis[to]),
        to_record=None,
        previous=state.intended,
        plan=plan(Strategy.model_validate(strategy), state.desired or 0),
        who="tester@here",
        started="2026-01-01T00:00:00Z",
    )
    return driver, rollout


def count_calls(clients: Any, now: Callable[[], float] = time.monotonic) -> tuple[Any, list[tuple[float, str]]]:
    """A client factory whose clients note every API call they make: (now(), operation)."""
    calls: list[tuple[float, str]] = []

    def factory(service: str, region: str, endpoint: str | None) -> Any:
        made = clients(service, region, endpoint)
        made.meta.events.register("before-call", lambda model, **_: calls.append((now(), model.name)))
        return made

    return factory, calls


def by_operation(calls: list[tuple[float, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, operation in calls:
        counts[operation] = counts.get(operation, 0) + 1
    return counts


def bench_watch_calls(
    endpoint: str,
    root: Path,
    *,
    size: int = 100,
    batch_seconds: float = 0.25,
    strategy: dict[str, Any] | None = None,
    scale: float = 0.005,
) -> dict[str, Any]:
    """The API calls bakery makes while it rolls a `size`-instance group on the fake (rolling, 10%
    a batch unless `strategy` says otherwise, each batch `batch_seconds` of real time long), at
    production's poll intervals in simulated time (tests/fakes/clock.py: each simulated second
    really lasts `scale` s). Watching is every call of the instance refresh step after
    StartInstanceRefresh but bakery's mark: the polls, the gate's checks and settles. Reports the
    most calls in any 60 simulated seconds, of those and of every call of the refresh and finish
    steps. For bench/: resets the moto server it is given (moto_ebs.running)."""
    import os
    import urllib.request

    from bakery.groups.aws.driver import AwsGroupDriver
    from bakery.progress import Recording
    from bakery.providers.aws.provider import default_clients
    from bakery.steps import Journal, execute
    from tests.fakes.clock import SimulatedClock, busiest_window

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
    root.mkdir(parents=True, exist_ok=True)
    world = build(endpoint, root, size=size)
    moto_ebs.set_faults(endpoint, refresh={**FAST, "batch_seconds": batch_seconds})
    sim = SimulatedClock(scale)
    factory, calls = count_calls(default_clients, sim.now)
    plan = strategy or {"type": "rolling", "batch_size": "10%"}
    _, rollout = driver_rollout(world, plan, clients=factory)
    driver = AwsGroupDriver(Recording(), factory, clock=sim.clock())
    steps = driver.rollout_steps(rollout)
    journal = Journal.create(root / "bench-journal.json")
    saved = os.environ.pop("BAKERY_POLL_SECONDS", None)  # production's intervals
    started = time.monotonic()
    try:
        execute(steps[:1], journal, driver.reporter)  # the launch template version: not watching yet
        calls.clear()
        execute(steps[:2], journal, driver.reporter)
        refresh = list(calls)
        execute(steps, journal, driver.reporter)
    finally:
        if saved is not None:
            os.environ["BAKERY_POLL_SECONDS"] = saved
    started_at = next(i for i, (_, op) in enumerate(refresh) if op == "StartInstanceRefresh")
    watching = [(t, op) for t, op in refresh[started_at + 1 :] if op.startswith("Describe")]
    rounds = sum(1 for _, op in watching if op == "DescribeInstanceRefreshes")
    span = (watching[-1][0] - watching[0][0]) if watching else 0.0
    return {
        "instances": size,
        "strategy": plan["type"],
        "calls_total": len(calls),
        "calls_watching": len(watching),
        "calls_by_operation": by_operation(calls),
        "rounds": rounds,
        "minutes_watched_in_production": round(span / 60, 1),
        "busiest_minute_watching": busiest_window([t for t, _ in watching]),
        "busiest_minute_all_calls": busiest_window([t for t, _ in calls]),
        "seconds_on_fake": round(time.monotonic() - started, 2),
    }
