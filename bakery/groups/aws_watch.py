"""Watching an AWS group move: the instance refresh's progress, and bakery's gate on the cloud's
own signals (every configured alarm in OK, every new instance healthy in every configured
target group). bakery cannot reach the instances themselves (they live in a VPC), so the
group's HTTP check is the target groups' health check on AWS."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bakery import runner
from bakery.groups.aws_api import ACTIVE, AsgApi
from bakery.groups.aws_requests import poll_seconds, progress_line
from bakery.groups.base import GateFailed
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
    """bakery's gate for one group's new instances: `check()` raises GateFailed naming the alarm
    or the instance and target group."""

    def __init__(self, api: AsgApi) -> None:
        self.api = api

    def calls(self) -> int:
        """API calls one check makes (for the poll interval)."""
        return 1 + len(self.api.settings.target_groups) + (1 if self.api.settings.alarms else 0)

    def alarms(self) -> None:
        for name, state in self.api.alarm_states().items():
            if state != "OK":
                raise GateFailed(
                    f"the gate failed: CloudWatch alarm {name} is {state} in {self.api.region}", answer=state
                )

    def check(self, asg: str, version: int | None, *, pending_ok: bool = True) -> Look:
        """Alarms, then every InService instance launched from `version` (all of them when None)
        in the ASG's own health and in every configured target group. A target still in its
        first health checks (`initial`) waits unless `pending_ok` is false."""
        self.alarms()
        group = self.api.must_group(asg)
        new = [
            i
            for i in group.get("Instances", [])
            if i.get("LifecycleState") == "InService"
            and (version is None or i.get("LaunchTemplate", {}).get("Version") == str(version))
        ]
        for instance in new:
            if instance.get("HealthStatus", "Healthy") != "Healthy":
                raise GateFailed(
                    f"the gate failed: instance {instance['InstanceId']} of {asg} is {instance['HealthStatus']}",
                    instance=instance["InstanceId"],
                    answer=instance["HealthStatus"],
                )
        passed = len(new)
        for arn in self.api.target_group_arns():
            health = self.api.target_health(arn)
            for instance in new:
                state, reason = health.get(instance["InstanceId"], ("unused", "Target.NotRegistered"))
                if state == "healthy":
                    continue
                if state == "initial" and pending_ok:
                    passed -= 1
                    continue
                raise GateFailed(
                    f"the gate failed: instance {instance['InstanceId']} is {state} in target group "
                    f"{target_group_name(arn)}" + (f" ({reason})" if reason else ""),
                    instance=instance["InstanceId"],
                    answer=f"{state} {reason}".strip(),
                )
        return Look(group, len(new), max(0, passed))


def watch(
    api: AsgApi,
    reporter: Reporter,
    asg: str,
    refresh_id: str,
    *,
    gate: Callable[[dict[str, Any]], None] | None = None,
    gate_calls: int = 0,
) -> dict[str, Any]:
    """Poll the refresh until it reaches a final state and return it, reporting each change of
    progress; `gate(refresh)` runs after each poll while AWS replaces instances (it raises
    GateFailed). At most CALLS_PER_MINUTE calls a minute, gate included."""
    interval = poll_seconds(1 + gate_calls)
    last = ""
    while True:
        runner.check_interrupted(f"watching instance refresh {refresh_id}")
        refresh = api.refresh(asg, refresh_id)
        line = progress_line(refresh)
        if line != last:
            reporter.note(line)
            last = line
        if refresh.get("Status") not in ACTIVE:
            return refresh
        if gate is not None and refresh.get("Status") in ("InProgress", "Baking"):
            gate(refresh)
        time.sleep(interval)


def wait_for(
    what: str,
    reporter: Reporter,
    probe: Callable[[], str | None],
    *,
    timeout: float,
    calls: int,
) -> None:
    """Poll `probe()` (it returns what is still missing, None once done) until done. After
    `timeout` seconds, GateFailed names what was still missing."""
    interval = poll_seconds(calls)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        runner.check_interrupted(what)
        missing = probe()
        if missing is None:
            return
        if missing != last:
            reporter.note(f"{what}: {missing}")
            last = missing
        if time.monotonic() > deadline:
            raise GateFailed(f"{what}: still {missing} after {int(timeout)}s")
        time.sleep(interval)
