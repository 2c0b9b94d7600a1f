"""Watching an AWS group move: the instance refresh's progress, and bakery's gate on the cloud's
own signals (no configured alarm in ALARM, every new instance healthy in every configured
target group). bakery cannot reach the instances themselves (they live in a VPC), so the
group's HTTP check is the target groups' health check on AWS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bakery import runner
from bakery.config.models import Health
from bakery.errors import GateFailed
from bakery.groups.aws.api import AsgApi
from bakery.groups.aws.requests import poll_seconds, progress_line
from bakery.groups.aws.resources import ACTIVE
from bakery.groups.budget import CallBudget
from bakery.progress import Reporter


def target_group_name(arn: str) -> str:
    """arn:aws:elasticloadbalancing:...:targetgroup/web/0123 -> web."""
    return arn.split(":targetgroup/", 1)[-1].split("/", 1)[0]


@dataclass(frozen=True)
class Look:
    """What one gate check saw: the group as AWS described it, its new instances, how many passed."""

    group: dict[str, Any]
    new: int
    passed: int


class Gate:
    """bakery's gate for one group's new instances: `check()` and `settle()` raise GateFailed
    naming the alarm or the instance and target group. A rollback is never gated on alarms (they
    fire because of what it undoes): `alarms=False` checks target health only. Its checks are
    counted in the rollout's call `budget`."""

    def __init__(self, api: AsgApi, health: Health, budget: CallBudget, *, alarms: bool = True) -> None:
        self.api = api
        self.health = health
        self.budget = budget
        self.watch_alarms = alarms and bool(api.settings.alarms)

    @property
    def timeout(self) -> float:
        """How long new instances have to become healthy (the group's health settings)."""
        return float(self.health.grace_seconds + self.health.timeout_seconds)

    def calls(self) -> int:
        """API calls one check makes (for the poll interval and the call budget): the group, each
        target group's health, the alarms, and the target groups' ARNs while they are not known."""
        lookup = 0 if self.api.knows_target_groups else 1
        return 1 + len(self.api.settings.target_groups) + (1 if self.watch_alarms else 0) + lookup

    def alarms(self) -> None:
        """GateFailed when a configured alarm is in ALARM (INSUFFICIENT_DATA is not a failure,
        as for AWS's own AlarmSpecification)."""
        if not self.watch_alarms:
            return
        for name, state in self.api.alarm_states().items():
            if state == "ALARM":
                raise GateFailed(
                    f"the gate failed: CloudWatch alarm {name} is {state} in {self.api.region}", answer=state
                )

    def check(self, asg: str, version: int | None, *, pending_ok: bool = True) -> Look:
        """Alarms, then every InService instance launched from `version` (all of them when None)
        in the ASG's own health and in every configured target group. A target still in its
        first health checks (`initial`) waits unless `pending_ok` is false; it never passes."""
        self.budget.take(self.calls(), f"the gate on {asg}")
        self.alarms()
        group = self.api.must_group(asg)
        new = _launched_from(group, version, in_service=True)
        passed = len(new)
        for instance in new:
            _asg_healthy(asg, instance)
        for arn in self.api.target_group_arns():
            health = self.api.target_health(arn)
            for instance in new:
                state, reason = health.get(instance["InstanceId"], ("unused", "Target.NotRegistered"))
                if state == "healthy":
                    continue
                if _registering(state, reason) and pending_ok:
                    passed -= 1
                    continue
                raise _target_failed(instance["InstanceId"], arn, state, reason)
        return Look(group, len(new), max(0, passed))

    def settle(self, asg: str, version: int | None, what: str, reporter: Reporter, *, final: bool) -> Look:
        """Wait (up to the group's grace + timeout seconds) until every instance launched from
        `version` is InService, Healthy in the ASG and healthy in every configured target group;
        with `final`, also until no instance runs another version. GateFailed at once on an
        alarm in ALARM or a target that failed its checks; after the timeout, naming what waits."""
        seen: list[Look] = []

        def missing() -> str | None:
            self.alarms()
            group = self.api.must_group(asg)
            members = _launched_from(group, None, in_service=False)
            new = _launched_from(group, version, in_service=False)
            if final and len(new) < len(members):
                return f"{len(members) - len(new)} instance(s) still on another launch template version"
            waiting = [f"instance {i['InstanceId']} is {i.get('LifecycleState')}" for i in new if not _serving(i)]
            for instance in new:
                _asg_healthy(asg, instance)
            for arn in self.api.target_group_arns():
                health = self.api.target_health(arn)
                for instance in [i for i in new if _serving(i)]:
                    state, reason = health.get(instance["InstanceId"], ("unused", "Target.NotRegistered"))
                    if _registering(state, reason):
                        shown = "initial" if state == "initial" else "not registered yet"
                        waiting.append(f"instance {instance['InstanceId']} is {shown} in {target_group_name(arn)}")
                    elif state != "healthy":
                        raise _target_failed(instance["InstanceId"], arn, state, reason)
            seen[:] = [Look(group, len(new), len(new) - len(waiting))]
            return ", ".join(waiting) or None

        wait_for(what, reporter, missing, timeout=self.timeout, calls=self.calls(), budget=self.budget)
        return seen[-1]


def _registering(state: str, reason: str | None) -> bool:
    """A target on its way in: in its first health checks, or not registered yet (the ASG
    registers an instance with its target groups as it goes InService: the two are not one
    step). Such a target waits, up to the gate's timeout; it never passes."""
    return state == "initial" or (state == "unused" and reason == "Target.NotRegistered")


def _serving(instance: dict[str, Any]) -> bool:
    return instance.get("LifecycleState") == "InService"


def _launched_from(group: dict[str, Any], version: int | None, *, in_service: bool) -> list[dict[str, Any]]:
    """The group's instances launched from `version` (any, when None), InService only or every
    one not on its way out."""
    return [
        i
        for i in group.get("Instances", [])
        if (_serving(i) if in_service else not str(i.get("LifecycleState", "")).startswith(("Terminat", "Detach")))
        and (version is None or i.get("LaunchTemplate", {}).get("Version") == str(version))
    ]


def _asg_healthy(asg: str, instance: dict[str, Any]) -> None:
    if instance.get("HealthStatus", "Healthy") != "Healthy":
        raise GateFailed(
            f"the gate failed: instance {instance['InstanceId']} of {asg} is {instance['HealthStatus']}",
            instance=instance["InstanceId"],
            answer=instance["HealthStatus"],
        )


def _target_failed(instance: str, arn: str, state: str, reason: str) -> GateFailed:
    return GateFailed(
        f"the gate failed: instance {instance} is {state} in target group {target_group_name(arn)}"
        + (f" ({reason})" if reason else ""),
        instance=instance,
        answer=f"{state} {reason}".strip(),
    )


def watch(
    api: AsgApi,
    reporter: Reporter,
    asg: str,
    refresh_id: str,
    *,
    budget: CallBudget,
    gate: Callable[[dict[str, Any]], None] | None = None,
    gate_calls: int = 0,
) -> dict[str, Any]:
    """Poll the refresh until it reaches a final state and return it, reporting each change of
    progress; `gate(refresh)` runs after each poll while AWS replaces instances (it raises
    GateFailed, and counts its own calls in `budget`). Each poll waits until it fits in the
    budget with the gate's `gate_calls`: at most CALLS_PER_MINUTE calls in any minute."""
    interval = poll_seconds(1 + gate_calls)
    what = f"watching instance refresh {refresh_id}"
    last = ""
    while True:
        runner.check_interrupted(what)
        budget.wait_for_room(1 + gate_calls, what)
        budget.spent(1)
        refresh = api.refresh(asg, refresh_id)
        line = progress_line(refresh)
        if line != last:
            reporter.note(line)
            last = line
        if refresh.get("Status") not in ACTIVE:
            return refresh
        if gate is not None and refresh.get("Status") in ("InProgress", "Baking"):
            gate(refresh)
        budget.clock.wait(interval, what)


def wait_for(
    what: str,
    reporter: Reporter,
    probe: Callable[[], str | None],
    *,
    timeout: float,
    calls: int,
    budget: CallBudget,
) -> None:
    """Poll `probe()` (it returns what is still missing, None once done, in `calls` API calls
    counted in `budget`) until done. After `timeout` seconds, GateFailed names what was still missing."""
    interval = poll_seconds(calls)
    deadline = budget.clock.now() + timeout
    last = ""
    while True:
        runner.check_interrupted(what)
        budget.take(calls, what)
        missing = probe()
        if missing is None:
            return
        if missing != last:
            reporter.note(f"{what}: {missing}")
            last = missing
        if budget.clock.now() > deadline:
            raise GateFailed(f"{what}: still {missing} after {int(timeout)}s")
        budget.clock.wait(interval, what)
