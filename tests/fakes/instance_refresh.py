"""Instance refresh for moto's Auto Scaling groups, which moto 5 lacks, as a time-driven state machine.

Loaded into the moto server process by tests/fakes/moto_ebs.py (`install()`), it adds
Start/Describe/Cancel/RollbackInstanceRefresh to moto's autoscaling responses, and two EC2 launch
template behaviours that AWS has and moto does not: CreateLaunchTemplateVersion with SourceVersion
(the new version inherits every parameter it does not set) and DeleteLaunchTemplateVersions.

A refresh goes Pending -> InProgress -> Successful, replacing the group's instances in batches from
the pinned launch template version (new instances carry the version's tags and ImageId, are
registered in the group's target groups; old ones are deregistered and terminated). At each
CheckpointPercentages value below 100 it waits CheckpointDelay (scaled). An alarm of its
AlarmSpecification in ALARM fails it: with AutoRollback it goes RollbackInProgress ->
RollbackSuccessful, replacing what it replaced from the group's own configuration, else Failed.
On success the group takes the desired configuration, as on AWS. Cancel: Cancelling -> Cancelled.

Time moves when requests arrive (`tick()` runs before each one), with the durations of `Knobs`,
set through moto_ebs's control endpoint (`set_faults(endpoint, refresh={...})`).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
LATEST_OR_DEFAULT = ("$latest", "$default")
_LOCK = threading.RLock()


@dataclass
class Knobs:
    """Fake durations (seconds) and faults; CheckpointDelay is multiplied by `delay_scale`."""

    pending_seconds: float = 0.1
    batch_seconds: float = 0.2  # launch + warm-up of one batch of new instances
    cancel_seconds: float = 0.1
    delay_scale: float = 1.0
    fail_at_checkpoint: str = ""  # a reason: the refresh fails when it reaches its first checkpoint

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


def _refreshes(backend: Any) -> list[Refresh]:
    """The refreshes of one moto backend, newest first (kept on it, so moto's reset drops them)."""
    if not hasattr(backend, "bakery_refreshes"):
        backend.bakery_refreshes = []
    found: list[Refresh] = backend.bakery_refreshes
    return found


_BACKENDS: list[Any] = []  # backends that have refreshes, to tick


def tick(now: float | None = None) -> None:
    """Move every active refresh to where it is at `now` (before each request)."""
    from moto.autoscaling.models import autoscaling_backends

    now = time.time() if now is None else now
    with _LOCK:
        for backend in list(_BACKENDS):
            current = autoscaling_backends[backend.account_id][backend.region_name]
            if current is not backend:  # moto was reset
                _BACKENDS.remove(backend)
                continue
            for refresh in _refreshes(backend):
                if refresh.active:
                    _advance(refresh, now)


# --- the state machine --------------------------------------------------------------------------


def _group(refresh: Refresh) -> Any:
    return refresh.backend.autoscaling_groups.get(refresh.group)


def _launched_from(state: Any) -> tuple[str, int] | None:
    found = state.instance.ec2_backend.tags.get(state.instance.id, {})
    template, version = found.get("aws:ec2launchtemplate:id"), found.get("aws:ec2launchtemplate:version")
    return (template, int(version)) if template and version else None


def _group_config(group: Any) -> tuple[str, int] | None:
    if group.ec2_launch_template is None:
        return None
    version = group.ec2_launch_template.get_version(group.launch_template_version)
    return group.ec2_launch_template.id, version.number


def _begin(refresh: Refresh, now: float, target: tuple[str, int] | None, *, skip_matching: bool) -> None:
    group = _group(refresh)
    refresh.moving_to = target
    states = [s for s in group.instance_states if s.lifecycle_state in ("InService", "Pending")]
    refresh.todo = [s.instance.id for s in states if not (skip_matching and _launched_from(s) == target)]
    refresh.total = len(refresh.todo)
    refresh.replaced = 0
    refresh.next_at = now


def _advance(refresh: Refresh, now: float) -> None:
    while refresh.active and refresh.next_at <= now:
        at = refresh.next_at
        if refresh.status == "Pending":
            group = _group(refresh)
            target = _desired_target(refresh) if refresh.desired else _group_config(group)
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
    _register(group, refresh.launched)
    _retire(group, refresh.leaving)
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
        _start_rollback(refresh, at, reason)
    else:
        _land_batch(refresh)
        _finish(refresh, at, "Failed", reason)


def _start_rollback(refresh: Refresh, at: float, reason: str) -> None:
    group = _group(refresh)
    _land_batch(refresh)
    refresh.percent_before_rollback = refresh.percent()
    refresh.status = "RollbackInProgress"
    refresh.reason = reason
    refresh.waiting_until = None
    original = _group_config(group)
    refresh.moving_to = original
    refresh.todo = [s.instance.id for s in group.instance_states if _launched_from(s) != original]
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


# --- instances ----------------------------------------------------------------------------------


def launch(group: Any, template_id: str, version: int, count: int, *, lifecycle: str = "InService") -> list[Any]:
    """Launch `count` instances into `group` from one launch template version, as AWS does: the
    version's ImageId, instance type and TagSpecifications, the group's propagated tags."""
    import random

    from moto.autoscaling.models import ASG_NAME_TAG, InstanceState

    template = group.ec2_backend.get_launch_template(template_id)
    chosen = template.get_version(version)
    tags = group.get_propagated_tags()
    tags[ASG_NAME_TAG] = group.name
    tags.update(chosen.instance_tags)
    subnet = group.vpc_zone_identifier.split(",")[0] if group.vpc_zone_identifier else None
    reservation = group.ec2_backend.run_instances(
        chosen.image_id,
        count,
        chosen.user_data,
        chosen.security_groups,
        instance_type=chosen.instance_type or "t3.micro",
        tags={"instance": tags},
        placement=random.choice(group.availability_zones),
        launch_config=None,
        launch_template={"LaunchTemplateId": template.id, "Version": str(chosen.number)},
        is_instance_type_default=False,
        associate_public_ip=None,
        subnet_id=subnet,
    )
    states = []
    for instance in reservation.instances:
        instance.autoscaling_group = group
        state = InstanceState(instance, lifecycle_state=lifecycle)
        group.instance_states.append(state)
        states.append(state)
    return states


def _register(group: Any, instance_ids: list[str]) -> None:
    elbv2 = group.autoscaling_backend.elbv2_backend
    for arn in group.target_group_arns:
        target_group = elbv2.target_groups.get(arn)
        if target_group is not None and instance_ids:
            target_group.register([{"Id": i, "Port": target_group.port} for i in instance_ids])


def _retire(group: Any, instance_ids: list[str]) -> None:
    elbv2 = group.autoscaling_backend.elbv2_backend
    present = [s.instance.id for s in group.instance_states if s.instance.id in instance_ids]
    for arn in group.target_group_arns:
        target_group = elbv2.target_groups.get(arn)
        if target_group is not None:
            target_group.deregister_terminated_instances(present)
    if present:
        group.ec2_backend.terminate_instances(present)
    group.instance_states = [s for s in group.instance_states if s.instance.id not in present]


# --- the API ------------------------------------------------------------------------------------


def _error(code: str, message: str) -> Exception:
    from moto.autoscaling.exceptions import AutoscalingClientError

    return AutoscalingClientError(code, message)


def _version_of(spec: dict[str, Any] | None) -> str:
    return str((spec or {}).get("Version") or "$Default")


def start(backend: Any, group_name: str, desired: dict[str, Any] | None, preferences: dict[str, Any]) -> str:
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        raise _error("ValidationError", f"AutoScalingGroup name not found - {group_name}")
    refreshes = _refreshes(backend)
    if any(r.group == group_name and r.active for r in refreshes):
        raise _error(
            "InstanceRefreshInProgress",
            "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
        )
    template = (desired or {}).get("LaunchTemplate")
    _validate(group, template, preferences)
    refresh = Refresh(
        id=str(uuid.uuid4()),
        backend=backend,
        group=group_name,
        preferences=_with_defaults(preferences),
        desired=_described(group, template) if template else None,
        started=time.time(),
    )
    refresh.next_at = refresh.started + KNOBS.pending_seconds
    refreshes.insert(0, refresh)
    if backend not in _BACKENDS:
        _BACKENDS.append(backend)
    return refresh.id


def _validate(group: Any, template: dict[str, Any] | None, preferences: dict[str, Any]) -> None:
    if preferences.get("AutoRollback"):
        if template is None:
            raise _error("ValidationError", "AutoRollback requires a DesiredConfiguration.")
        for version in (_version_of(template), str(group.launch_template_version or "$Default")):
            if version.lower() in LATEST_OR_DEFAULT:
                raise _error(
                    "ValidationError",
                    "AutoRollback is not supported when the launch template version is $Latest or $Default.",
                )
    low, high = preferences.get("MinHealthyPercentage"), preferences.get("MaxHealthyPercentage")
    if high is not None and not 100 <= int(high) <= 200:
        raise _error("ValidationError", "MaxHealthyPercentage must be between 100 and 200.")
    if high is not None and low is not None and int(high) - int(low) > 100:
        raise _error(
            "ValidationError", "The difference between MaxHealthyPercentage and MinHealthyPercentage exceeds 100."
        )
    points = [int(p) for p in preferences.get("CheckpointPercentages") or []]
    if points != sorted(set(points)) or any(not 1 <= p <= 100 for p in points):
        raise _error("ValidationError", "CheckpointPercentages must be unique values from 1 to 100 in ascending order.")


def _with_defaults(preferences: dict[str, Any]) -> dict[str, Any]:
    out = {"MinHealthyPercentage": 90, "SkipMatching": False, "AutoRollback": False, **preferences}
    if out.get("CheckpointPercentages") and "CheckpointDelay" not in out:
        out["CheckpointDelay"] = 3600
    return out


def _described(group: Any, template: dict[str, Any]) -> dict[str, Any]:
    ec2 = group.ec2_backend
    found = (
        ec2.get_launch_template(template["LaunchTemplateId"])
        if template.get("LaunchTemplateId")
        else ec2.get_launch_template_by_name(template["LaunchTemplateName"])
    )
    return {"LaunchTemplateId": found.id, "LaunchTemplateName": found.name, "Version": _version_of(template)}


def _active(backend: Any, group_name: str) -> Refresh:
    for refresh in _refreshes(backend):
        if refresh.group == group_name and refresh.active:
            return refresh
    raise _error(
        "ActiveInstanceRefreshNotFound",
        f"No in progress or pending Instance Refresh found for Auto Scaling group {group_name}",
    )


def cancel(backend: Any, group_name: str) -> str:
    refresh = _active(backend, group_name)
    if refresh.status in ("Pending", "InProgress", "Baking"):
        refresh.after_cancel = "Cancelled"
        refresh.status = "Cancelling"
        refresh.next_at = time.time() + KNOBS.cancel_seconds
    elif refresh.status == "RollbackInProgress":
        refresh.after_cancel = "RollbackFailed"
        refresh.status = "Cancelling"
        refresh.next_at = time.time() + KNOBS.cancel_seconds
    return refresh.id


def rollback(backend: Any, group_name: str) -> str:
    refresh = _active(backend, group_name)
    if refresh.status in ("RollbackInProgress", "Cancelling"):
        raise _error("ActiveInstanceRefreshNotFound", f"The instance refresh {refresh.id} is already {refresh.status}.")
    if refresh.desired is None or _version_of(refresh.desired).lower() in LATEST_OR_DEFAULT:
        raise _error("IrreversibleInstanceRefresh", "The instance refresh has no desired configuration to roll back.")
    if refresh.status == "Pending":
        _advance(refresh, refresh.next_at)
    _start_rollback(refresh, time.time(), "Rollback started by a RollbackInstanceRefresh call.")
    return refresh.id


def describe(backend: Any, group_name: str, ids: list[str]) -> list[dict[str, Any]]:
    found = [r for r in _refreshes(backend) if r.group == group_name and (not ids or r.id in ids)]
    out = []
    for refresh in found:
        item = refresh.as_dict()
        if "RollbackDetails" in item:
            item["RollbackDetails"] = {k: v for k, v in item["RollbackDetails"].items() if not k.startswith("_")}
        out.append({k: v for k, v in item.items() if v is not None})
    return out


# --- wiring into moto ---------------------------------------------------------------------------


def install() -> None:
    """Add the refresh actions to moto's autoscaling responses, and SourceVersion and
    DeleteLaunchTemplateVersions to its launch templates; instances launched by a group record the
    numbered version they came from."""
    from moto.autoscaling import models as asg_models
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    def start_instance_refresh(self: Any) -> Any:
        with _LOCK:
            found = start(
                self.autoscaling_backend,
                self._get_param("AutoScalingGroupName"),
                self._get_param("DesiredConfiguration"),
                self._get_param("Preferences") or {},
            )
        return ActionResult({"InstanceRefreshId": found})

    def describe_instance_refreshes(self: Any) -> Any:
        with _LOCK:
            found = describe(
                self.autoscaling_backend,
                self._get_param("AutoScalingGroupName"),
                self._get_param("InstanceRefreshIds") or [],
            )
        return ActionResult({"InstanceRefreshes": found})

    def cancel_instance_refresh(self: Any) -> Any:
        with _LOCK:
            found = cancel(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": found})

    def rollback_instance_refresh(self: Any) -> Any:
        with _LOCK:
            found = rollback(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": found})

    AutoScalingResponse.start_instance_refresh = start_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes  # type: ignore[attr-defined]
    AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh  # type: ignore[attr-defined]

    def replace_instances(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        config = _group_config(self)
        if config is None:
            original_replace(self, count_needed, propagated_tags)
        else:
            launch(self, *config, count_needed)

    original_replace = asg_models.FakeAutoScalingGroup.replace_autoscaling_group_instances
    asg_models.FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_instances  # type: ignore[method-assign]

    def instance_launch_template(self: Any) -> dict[str, Any] | None:
        launched = _launched_from(self)
        if launched is None or self.auto_scaling_group is None or self.auto_scaling_group.ec2_launch_template is None:
            return None
        template = self.auto_scaling_group.ec2_backend.get_launch_template(launched[0])
        return {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name, "Version": str(launched[1])}

    asg_models.InstanceState.launch_template = property(instance_launch_template)  # type: ignore[assignment]
    _install_launch_templates()


def _install_launch_templates() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidLaunchTemplateVersionNotFound
    from moto.ec2.models import launch_templates as lt_models
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original_get = lt_models.LaunchTemplate.get_version

    def get_version(self: Any, num: Any) -> Any:
        found = original_get(self, num)
        if getattr(found, "deleted", False):
            raise InvalidLaunchTemplateVersionNotFound(template_id=self.id, version=num)
        return found

    lt_models.LaunchTemplate.get_version = get_version  # type: ignore[method-assign]

    original_versions = lt_models.LaunchTemplateBackend.describe_launch_template_versions

    def describe_versions(self: Any, *args: Any, **kwargs: Any) -> Any:
        return [(t, v) for t, v in original_versions(self, *args, **kwargs) if not getattr(v, "deleted", False)]

    lt_models.LaunchTemplateBackend.describe_launch_template_versions = describe_versions  # type: ignore[method-assign]

    original_create = LaunchTemplates.create_launch_template_version

    def create_version(self: Any) -> Any:
        source = self._get_param("SourceVersion")
        if source is not None:
            name, template_id = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
            template = (
                self.ec2_backend.get_launch_template(template_id)
                if template_id
                else self.ec2_backend.get_launch_template_by_name(name)
            )
            inherited = dict(template.get_version(source).data)
            inherited.update(self._get_param("LaunchTemplateData", {}) or {})
            self.params["LaunchTemplateData"] = inherited
        return original_create(self)

    LaunchTemplates.create_launch_template_version = create_version  # type: ignore[method-assign]

    def delete_launch_template_versions(self: Any) -> Any:
        name, template_id = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
        template = (
            self.ec2_backend.get_launch_template(template_id)
            if template_id
            else self.ec2_backend.get_launch_template_by_name(name)
        )
        done, failed = [], []
        for raw in self._get_param("Versions", []) or []:
            item = {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name}
            number = int(raw) if str(raw).isdigit() else 0
            exists = 1 <= number <= len(template.versions) and not getattr(
                template.versions[number - 1], "deleted", False
            )
            if not exists:
                failed.append(
                    {
                        **item,
                        "VersionNumber": number,
                        "ResponseError": {
                            "Code": "launchTemplateVersionDoesNotExist",
                            "Message": f"version {raw} does not exist",
                        },
                    }
                )
            elif template.default_version_number == number:
                failed.append(
                    {
                        **item,
                        "VersionNumber": number,
                        "ResponseError": {
                            "Code": "unexpectedError",
                            "Message": "Cannot delete the default version of a launch template",
                        },
                    }
                )
            else:
                template.versions[number - 1].deleted = True
                done.append({**item, "VersionNumber": number})
        return ActionResult(
            {"SuccessfullyDeletedLaunchTemplateVersions": done, "UnsuccessfullyDeletedLaunchTemplateVersions": failed}
        )

    LaunchTemplates.delete_launch_template_versions = delete_launch_template_versions  # type: ignore[attr-defined]
