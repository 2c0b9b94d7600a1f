"""The AWS group driver: Auto Scaling groups moved by AWS's instance refresh (rolling, canary)
or by a second group swapped in behind the target groups (blue-green).

- aws_api: the calls, for one group's region; aws_requests: the requests, built apart (pure).
- aws_moves: the launch template version every rollout makes; bakery's marks (aws_marks).
- aws_refresh / aws_bluegreen: the declared steps of each strategy, and of its rollback.
- aws_watch: polling within AWS's rate limits, and bakery's gate on alarms and target health.
- aws_history: history on the launch template, pruning of old versions and retired groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bakery.config.kinds import TargetSpec, typed
from bakery.config.models import Group
from bakery.config.targets.aws import AwsGroup, AwsTarget
from bakery.core.catalog import ImageRecord
from bakery.errors import ConfigError, RolloutRefused, UsageError
from bakery.groups.aws.api import AsgApi
from bakery.groups.aws.bluegreen import BlueGreenMover
from bakery.groups.aws.history import history, prune, record
from bakery.groups.aws.marks import ACTIVE_TAG, Mark, template_label
from bakery.groups.aws.moves import active_rollout, blue_green_active
from bakery.groups.aws.refresh import RefreshMover
from bakery.groups.aws.resources import template_of, version_instance_tags
from bakery.groups.aws.watch import target_group_name
from bakery.groups.base import ActiveRollout, GroupState, HistoryEntry, Instance, Release, Rollout
from bakery.groups.budget import Clock
from bakery.progress import Reporter
from bakery.providers.aws.errors import guarded
from bakery.providers.aws.provider import default_clients
from bakery.providers.base import ClientFactory
from bakery.steps import Step
from bakery.workspace import Workspace


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> AwsGroupDriver:
    return AwsGroupDriver(reporter, clients or default_clients)


def settings_of(group: Group) -> AwsGroup:
    settings = group.block(AwsGroup)
    if settings is None:
        raise ConfigError(f"group on target '{group.target}' has no aws settings (groups.<name>.aws)")
    return settings


class AwsGroupDriver:
    kind = "aws"

    def __init__(self, reporter: Reporter, clients: ClientFactory, *, clock: Clock | None = None) -> None:
        self.reporter = reporter
        self._clients = clients
        self.clock = clock  # where watches get the time and wait (tests: simulated time)
        # The region of the groups read so far, per target: release_of is told only the target.
        self._regions: dict[str, str] = {}

    def api(self, group: Group, target_spec: TargetSpec) -> AsgApi:
        if not isinstance(target_spec, AwsTarget):
            raise UsageError(f"target '{group.target}' is {getattr(target_spec, 'kind', '?')}, not aws")
        api = AsgApi(self._clients, target_spec, settings_of(group))
        self._regions[group.target] = api.region
        return api

    # --- reading ------------------------------------------------------------------------------

    @guarded("reading the Auto Scaling group")
    def read(self, name: str, group: Group, target_spec: TargetSpec) -> GroupState:
        api = self.api(group, target_spec)
        template_id = api.template()["LaunchTemplateId"]
        live = api.live_group(name)
        groups = [live] + [
            g for g in api.tagged_groups(name) if g["AutoScalingGroupName"] != live["AutoScalingGroupName"]
        ]
        ref = template_of(live)
        versions = {ref.version} if ref else set()
        members = [(g, i) for g in groups for i in g.get("Instances", [])]
        versions |= {i["LaunchTemplate"]["Version"] for _, i in members if i.get("LaunchTemplate")}
        found = {v: api.version(template_id, v) or {} for v in versions}
        amis = {v: str(data.get("LaunchTemplateData", {}).get("ImageId", "")) for v, data in found.items()}
        unknown = [i["InstanceId"] for _, i in members if not i.get("LaunchTemplate")]
        by_instance = api.instance_images(unknown)
        refs = api.image_refs([*amis.values(), *by_instance.values()])
        health = {arn: api.target_health(arn) for arn in api.target_group_arns()}
        instances = []
        for g, i in members:
            version = i.get("LaunchTemplate", {}).get("Version")
            ami = amis.get(version, "") if version else by_instance.get(i["InstanceId"], "")
            attached = set(g.get("TargetGroupARNs", []))
            verdict, detail = _health(i, {arn: h for arn, h in health.items() if arn in attached})
            instances.append(
                Instance(i["InstanceId"], refs.get(ami), ami, i.get("LifecycleState", "?"), verdict, detail)
            )
        intended = None
        if ref is not None:
            if ref.number is None:
                self.reporter.note(
                    f"{live['AutoScalingGroupName']} launches from {ref.version}: bakery rolls only groups pinned "
                    "to a numbered launch template version"
                )
            ami = amis.get(ref.version, "")
            digest = version_instance_tags(found.get(ref.version, {})).get("bakery:inputs-digest")
            intended = Release(refs.get(ami), ami, template_label(template_id, ref.version), digest or None)
        return GroupState(
            group=name,
            kind=self.kind,
            running=True,
            intended=intended,
            instances=tuple(instances),
            active=self._active(api, name, template_id, live),
            desired=int(live.get("DesiredCapacity", 0)),
        )

    @staticmethod
    def _active(api: AsgApi, name: str, template_id: str, live: dict[str, Any]) -> ActiveRollout | None:
        mark = Mark.decode(api.template_tags(template_id).get(ACTIVE_TAG))
        refresh = api.active_refresh(live["AutoScalingGroupName"])
        if refresh is not None:
            return active_rollout(api, template_id, refresh, mark)
        return blue_green_active(api, name, mark)

    def release_of(self, record: ImageRecord, target_spec: TargetSpec) -> Release:
        """The record's AMI in the region of the group last read on its target (else the target's)."""
        region = self._regions.get(record.target) or typed(target_spec, AwsTarget, f"target '{record.target}'").region
        for location in record.locations:
            where, _, ami = location.partition(":")
            if where == region:
                return Release.of(record, ami)
        raise UsageError(
            f"{record.ref} has no AMI in {region}",
            hint=f"add {region} to copy_to of target '{record.target}' and bake it again",
        )

    def refuse_takeover(self, name: str, group: Group, target_spec: TargetSpec, state: GroupState, stuck: str) -> None:
        """A new rollout starts over what `stuck` (the unfinished rollback or rollout it replaces)
        left, once nothing moves the group: a new launch template version from the one the group
        runs (AWS points the group at a refresh's version only when it succeeds), whose refresh
        replaces every instance not on it, whichever image it runs; its rollback returns every one
        to that version. While the refresh of `stuck` still runs (its process was killed) or its
        blue-green swap is half done, RolloutRefused says what to do by hand."""
        active = state.active
        if active is None:
            return
        api = self.api(group, target_spec)
        asg, region = settings_of(group).asg, api.region
        if active.step.startswith("instance refresh"):
            raise RolloutRefused(
                f"group {name}: the instance refresh of {stuck} still runs ({active.describe()}): bakery "
                "starts no rollout over it",
                hint=f"stop it by hand: `aws autoscaling cancel-instance-refresh --auto-scaling-group-name "
                f"{asg} --region {region}`; once `bakery status {name}` shows no rollout under way, run this "
                "command again",
            )
        template = api.template()["LaunchTemplateId"]
        raise RolloutRefused(
            f"group {name}: the blue-green swap of {stuck} is half done ({active.describe()}): bakery "
            "starts no rollout over two Auto Scaling groups",
            hint=f"by hand, of the Auto Scaling groups tagged bakery:group={name}, keep the one attached to the "
            "target groups that runs the image to keep; detach every other one from the target groups and "
            "delete it (`aws autoscaling delete-auto-scaling-group --auto-scaling-group-name OTHER "
            f"--force-delete --region {region}`); then remove bakery's mark (`aws ec2 delete-tags --resources "
            f"{template} --tags Key={ACTIVE_TAG} --region {region}`) and run this command again",
        )

    # --- moving -------------------------------------------------------------------------------

    def _mover(self, rollout: Rollout) -> RefreshMover | BlueGreenMover:
        api = self.api(rollout.spec, rollout.target_spec)
        if rollout.plan.strategy == "blue-green":
            return BlueGreenMover(api, self.reporter, rollout, self.clock)
        return RefreshMover(api, self.reporter, rollout, self.clock)

    def rollout_steps(self, rollout: Rollout) -> Sequence[Step]:
        return self._mover(rollout).steps()

    def rollback_steps(self, rollout: Rollout) -> Sequence[Step]:
        return self._mover(rollout).rollback_steps()

    # --- history ------------------------------------------------------------------------------

    @guarded("recording the rollout on the launch template")
    def record(self, name: str, group: Group, target_spec: TargetSpec, entry: HistoryEntry) -> None:
        record(self.api(group, target_spec), entry)

    @guarded("reading the group's history from its launch template")
    def history(self, name: str, group: Group, target_spec: TargetSpec) -> list[HistoryEntry]:
        return history(self.api(group, target_spec))

    @guarded("pruning launch template versions")
    def prune(self, name: str, group: Group, target_spec: TargetSpec, keep: int) -> list[str]:
        return prune(self.api(group, target_spec), name, keep, self.reporter)

    def down(self, name: str, group: Group, target_spec: TargetSpec) -> list[str]:
        asg = settings_of(group).asg
        raise UsageError(
            f"AWS groups keep running; scale group {name} with `aws autoscaling update-auto-scaling-group "
            f"--auto-scaling-group-name {asg} --min-size 0 --desired-capacity 0`"
        )


def _health(instance: dict[str, Any], health: dict[str, dict[str, tuple[str, str]]]) -> tuple[Any, str]:
    """The instance's health: the ASG's verdict and its state in each target group it serves in."""
    if instance.get("HealthStatus", "Healthy") != "Healthy":
        return "unhealthy", f"Auto Scaling: {instance.get('HealthStatus')}"
    for arn, targets in health.items():
        state, reason = targets.get(instance["InstanceId"], ("unused", "Target.NotRegistered"))
        if state != "healthy":
            verdict = "unknown" if state == "initial" else "unhealthy"
            return verdict, f"target {state} in {target_group_name(arn)}" + (f": {reason}" if reason else "")
    return "healthy", ""
