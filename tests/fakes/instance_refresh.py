"""Instance refresh for moto's Auto Scaling groups, which moto 5 lacks, as a time-driven state machine.

Loaded into the moto server process by tests/fakes/moto_ebs.py: instance_refresh_api.py adds
Start/Describe/Cancel/RollbackInstanceRefresh to moto's autoscaling responses, moto_launch.py the
launch template behaviours a rollout relies on (SourceVersion, DeleteLaunchTemplateVersions,
launches from the pinned version).

A refresh goes Pending -> InProgress -> Successful, replacing the group's instances in batches from
the pinned launch template version (new instances carry the version's tags and ImageId, are
registered in the group's target groups; old ones are deregistered and terminated). At each
CheckpointPercentages value below 100 it waits CheckpointDelay (scaled). An alarm of its
AlarmSpecification in ALARM fails it: with AutoRollback it goes RollbackInProgress ->
RollbackSuccessful, replacing what it replaced from the group's own configuration, else Failed.
On success the group takes the desired configuration, as on AWS. Cancel: Cancelling -> Cancelled.

Time moves when requests arrive (`tick()` runs before each one), with the durations of `Knobs`,
set through moto_ebs's control endpoint (`set_faults(endpoint, refresh={...})`), which also
set the target health the target groups report (instance_refresh_health.py).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from tests.fakes.moto_launch import group_config, launch, launched_from, register, retire

ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
LATEST_OR_DEFAULT = ("$latest", "$default")
LOCK = threading.RLock()


@dataclass
class Knobs:
    """Fake durations (seconds) and faults; CheckpointDelay is multiplied by `delay_scale`."""

    pending_seconds: float = 0.1
    batch_seconds: float = 0.2  # launch + warm-up of one batch of new instances
    cancel_seconds: float = 0.1
    delay_scale: float = 1.0
    fail_at_checkpoint: str = ""  # a reason: the refresh fails when it reaches its first checkpoint
    # Target health (instance_refresh_health.py): a target is `initial` this long after it is
    # registered, then healthy, or unhealthy when it runs one of `unhealthy_amis` (a broken
    # image) or is one of `unhealthy_instances`.
    health_warmup_seconds: float = 0.0
    unhealthy_amis: list[str] = field(default_factory=list)
    unhealthy_instances: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, wanted: dict[str, Any]) -> Knobs:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in wanted.items() if k in names})


KNOBS = Knobs()


def configure(wanted: dict[str, Any]) -> None:
    global KNOBS
    KNOBS = Knobs.of(wanted)


def _iso(at: float | None) -> datetime | None:
    return datetime.fromtimestamp(at, UTC) if at is not None else None


@dataclass
class Refresh:
    id: str
    backend: Any  # moto's AutoScalingBackend of the group's account and region
    group: str
    preferences: dict[str, Any]
    desired: dict[str, Any] | None  # {"LaunchTemplateId", "LaunchTemplateName", "Version"}
    started: float
    status: str = "Pending"
    reason: str = ""
    ended: float | None = None
    next_at: float = 0.0
    moving_to: tuple[str, int] | None = None  # (template id, version) instances are replaced with
    todo: list[str] = field(default_factory=list)  # instance ids still to replace
    total: int = 0
    replaced: int = 0
    launched: list[str] = field(default_factory=list)  # the batch in flight
    leaving: list[str] = field(default_factory=list)  # what the batch in flight replaces
    passed: set[int] = field(default_factory=set)  # checkpoints reached
    waiting_until: float | None = None  # at a checkpoint
    rollback: dict[str, Any] | None = None
    percent_before_rollback: int = 0
    after_cancel: str = "Cancelled"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def percent(self) -> int:
        if self.total == 0:
            return 100 if self.status == "Successful" else 0
        return self.replaced * 100 // self.total

    def as_dict(self) -> dict[str, Any]:
        rolling_back = self.rollback is not None
        out: dict[str, Any] = {
            "AutoScalingGroupName": self.group,
            "InstanceRefreshId": self.id,
            "Status": self.status,
            "StatusReason": self.reason or None,
            "StartTime": _iso(self.started),
            "EndTime": _iso(self.ended),
            "PercentageComplete": self.percent_before_rollback if rolling_back else self.percent(),
            "InstancesToUpdate": len(self.todo) + len(self.launched),
            "Preferences": self.preferences,
        }
        if self.desired is not None:
            out["DesiredConfiguration"] = {"LaunchTemplate": self.desired}
        if rolling_back:
            out["RollbackDetails"] = self.rollback
        return out


def refreshes_of(backend: Any) -> list[Refresh]:
    """The refreshes of one moto backend, newest first (kept on it, so moto's reset drops them)."""
    if not hasattr(backend, "bakery_refreshes"):
        backend.bakery_refreshes = []
    found: list[Refresh] = backend.bakery_refreshes
    return found


BACKENDS: list[Any] = []  # backends that have refreshes, to tick


def tick(now: float | None = None) -> None:
    """Move every active refresh to where it is at `now` (before each request)."""
    from moto.autoscaling.models import autoscaling_backends

    now = time.time() if now is None else now
    with LOCK:
        for backend in list(BACKENDS):
            current = autoscaling_backends[backend.account_id][backend.region_name]
            if current is not backend:  # moto was reset
                BACKENDS.remove(backend)
                continue
            for refresh in refreshes_of(backend):
                if refresh.active:
                    advance(refresh, now)


# --- the state machine --------------------------------------------------------------------------


def _group(refresh: Refresh) -> Any:
    return refresh.backend.autoscaling_groups.get(refresh.group)


def _begin(refresh: Refresh, now: float, target: tuple[str, int] | None, *, skip_matching: bool) -> None:
    group = _group(refresh)
    refresh.moving_to = target
    states = [s for s in group.instance_states if s.lifecycle_state in ("InService", "Pending")]
    refresh.todo = [s.instance.id for s in states if not (skip_matching and launched_from(s) == target)]
    refresh.total = len(refresh.todo)
    refresh.replaced = 0
    refresh.next_at = now


def advance(refresh: Refresh, now: float) -> None:
    while refresh.active and refresh.next_at <= now:
        at = refresh.next_at
        if refresh.status == "Pending":
            group = _group(refresh)
            target = _desired_target(refresh) if refresh.desired else group_config(group)
            _begin(refresh, at, target, skip_matching=bool(refresh.preferences.get("SkipMatching")))
            refresh.status = "InProgress"
            continue
        if refresh.status == "Cancelling":
            _land_batch(refresh)
            _finish(refresh, at, refresh.after_cancel)
            return
        if refresh.status == "InProgress" and _alarm_fired(refresh, at):
            continue
        if refresh.waiting_until is not None:
            refresh.waiting_until = None
            refresh.reason = ""
        if refresh.launched:
            _land_batch(refresh)
            if _at_checkpoint(refresh, at):
                continue
        if not refresh.todo:
            _done(refresh, at)
            return
        _launch_batch(refresh, at)
    if refresh.status == "InProgress":
        _alarm_fired(refresh, now)


def _desired_target(refresh: Refresh) -> tuple[str, int]:
    assert refresh.desired is not None
    ec2 = refresh.backend.ec2_backend
    template = (
        ec2.get_launch_template(refresh.desired["LaunchTemplateId"])
        if refresh.desired.get("LaunchTemplateId")
        else ec2.get_launch_template_by_name(refresh.desired["LaunchTemplateName"])
    )
    return template.id, template.get_version(refresh.desired.get("Version", "$Default")).number


def _batch_size(refresh: Refresh) -> int:
    group = _group(refresh)
    size = max(1, group.desired_capacity or 1)
    low = int(refresh.preferences.get("MinHealthyPercentage", 90))
    high = int(refresh.preferences.get("MaxHealthyPercentage", 100))
    room = (high - 100) if high > 100 else (100 - low)
    batch = max(1, size * room // 100)
    if refresh.rollback is None:  # stop at the next checkpoint
        for point in sorted(int(p) for p in refresh.preferences.get("CheckpointPercentages") or []):
            if point not in refresh.passed and point < 100:
                batch = min(batch, max(1, math.ceil(point * refresh.total / 100) - refresh.replaced))
                break
    return min(batch, len(refresh.todo))


def _launch_batch(refresh: Refresh, at: float) -> None:
    group = _group(refresh)
    count = _batch_size(refresh)
    refresh.leaving, refresh.todo = refresh.todo[:count], refresh.todo[count:]
    assert refresh.moving_to is not None
    refresh.launched = [s.instance.id for s in launch(group, *refresh.moving_to, count, lifecycle="Pending")]
    refresh.next_at = at + KNOBS.batch_seconds


def _land_batch(refresh: Refresh) -> None:
    """The batch in flight is in service: register it, retire what it replaces."""
    group = _group(refresh)
    if not refresh.launched:
        return
    for state in group.instance_states:
        if state.instance.id in refresh.launched:
            state.lifecycle_state = "InService"
    register(group, refresh.launched)
    retire(group, refresh.leaving)
    refresh.replaced += len(refresh.leaving)
    if refresh.rollback is not None:
        rb = refresh.rollback
        rb["InstancesToUpdateOnRollback"] = len(refresh.todo)
        done = rb["_total"] - len(refresh.todo)
        rb["PercentageCompleteOnRollback"] = 100 if not rb["_total"] else done * 100 // rb["_total"]
    refresh.launched, refresh.leaving = [], []


def _at_checkpoint(refresh: Refresh, at: float) -> bool:
    if refresh.rollback is not None:
        return False
    percent = refresh.percent()
    for point in sorted(int(p) for p in refresh.preferences.get("CheckpointPercentages") or []):
        if point in refresh.passed or point > percent or point >= 100:
            continue
        refresh.passed.add(point)
        if KNOBS.fail_at_checkpoint:
            _fail(refresh, at, KNOBS.fail_at_checkpoint)
            return True
        delay = float(refresh.preferences.get("CheckpointDelay", 3600)) * KNOBS.delay_scale
        refresh.waiting_until = at + delay
        refresh.next_at = at + delay
        refresh.reason = f"Waiting for checkpoint: {percent}% of instances replaced (checkpoint {point}%)."
        return True
    return False


def _alarm_fired(refresh: Refresh, at: float) -> bool:
    from moto.cloudwatch.models import cloudwatch_backends

    names = (refresh.preferences.get("AlarmSpecification") or {}).get("Alarms") or []
    alarms = cloudwatch_backends[refresh.backend.account_id][refresh.backend.region_name].alarms
    fired = [n for n in names if n in alarms and alarms[n].state_value == "ALARM"]
    if fired:
        _fail(refresh, at, f"Instance refresh failed: alarm {', '.join(fired)} went into ALARM state.")
    return bool(fired)


def _fail(refresh: Refresh, at: float, reason: str) -> None:
    if refresh.preferences.get("AutoRollback"):
        start_rollback(refresh, at, reason)
    else:
        _land_batch(refresh)
        _finish(refresh, at, "Failed", reason)


def start_rollback(refresh: Refresh, at: float, reason: str) -> None:
    group = _group(refresh)
    _land_batch(refresh)
    refresh.percent_before_rollback = refresh.percent()
    refresh.status = "RollbackInProgress"
    refresh.reason = reason
    refresh.waiting_until = None
    original = group_config(group)
    refresh.moving_to = original
    refresh.todo = [s.instance.id for s in group.instance_states if launched_from(s) != original]
    refresh.rollback = {
        "RollbackReason": reason,
        "RollbackStartTime": _iso(at),
        "PercentageCompleteOnRollback": 0,
        "InstancesToUpdateOnRollback": len(refresh.todo),
        "_total": len(refresh.todo),
    }
    refresh.next_at = at


def _done(refresh: Refresh, at: float) -> None:
    if refresh.rollback is not None:
        _finish(refresh, at, "RollbackSuccessful", refresh.reason)
        return
    group = _group(refresh)
    if refresh.desired is not None:  # AWS updates the group's settings when the refresh succeeds
        spec = {k: v for k, v in refresh.desired.items() if k in ("LaunchTemplateId", "Version")}
        if "LaunchTemplateId" not in spec:
            spec["LaunchTemplateName"] = refresh.desired["LaunchTemplateName"]
        group._set_launch_configuration(None, spec, None)
    _finish(refresh, at, "Successful")


def _finish(refresh: Refresh, at: float, status: str, reason: str = "") -> None:
    refresh.status = status
    refresh.reason = reason
    refresh.ended = at
    refresh.waiting_until = None
