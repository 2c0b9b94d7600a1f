"""The API of the fake instance refresh (tests/fakes/instance_refresh.py): Start, Describe,
Cancel and RollbackInstanceRefresh with AWS's validations, wired into moto's autoscaling
responses by `install()` (in the moto server process, from tests/fakes/moto_ebs.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.fakes import instance_refresh as machine
from tests.fakes import instance_refresh_health, moto_launch
from tests.fakes.instance_refresh import (
    BACKENDS,
    LATEST_OR_DEFAULT,
    LOCK,
    Refresh,
    advance,
    refreshes_of,
    start_rollback,
)

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
    refreshes = refreshes_of(backend)
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
    refresh.next_at = refresh.started + machine.KNOBS.pending_seconds
    refreshes.insert(0, refresh)
    if backend not in BACKENDS:
        BACKENDS.append(backend)
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
    for refresh in refreshes_of(backend):
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
        refresh.next_at = time.time() + machine.KNOBS.cancel_seconds
    elif refresh.status == "RollbackInProgress":
        refresh.after_cancel = "RollbackFailed"
        refresh.status = "Cancelling"
        refresh.next_at = time.time() + machine.KNOBS.cancel_seconds
    return refresh.id


def rollback(backend: Any, group_name: str) -> str:
    refresh = _active(backend, group_name)
    if refresh.status in ("RollbackInProgress", "Cancelling"):
        raise _error("ActiveInstanceRefreshNotFound", f"The instance refresh {refresh.id} is already {refresh.status}.")
    if refresh.desired is None or _version_of(refresh.desired).lower() in LATEST_OR_DEFAULT:
        raise _error("IrreversibleInstanceRefresh", "The instance refresh has no desired configuration to roll back.")
    if refresh.status == "Pending":
        advance(refresh, refresh.next_at)
    start_rollback(refresh, time.time(), "Rollback started by a RollbackInstanceRefresh call.")
    return refresh.id


def describe(backend: Any, group_name: str, ids: list[str]) -> list[dict[str, Any]]:
    found = [r for r in refreshes_of(backend) if r.group == group_name and (not ids or r.id in ids)]
    out = []
    for refresh in found:
        item = refresh.as_dict()
        if "RollbackDetails" in item:
            item["RollbackDetails"] = {k: v for k, v in item["RollbackDetails"].items() if not k.startswith("_")}
        out.append({k: v for k, v in item.items() if v is not None})
    return out


# --- wiring into moto ---------------------------------------------------------------------------


def install() -> None:
    """Add the refresh actions to moto's autoscaling responses (and moto_launch's fixes)."""
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    def start_instance_refresh(self: Any) -> Any:
        with LOCK:
            found = start(
                self.autoscaling_backend,
                self._get_param("AutoScalingGroupName"),
                self._get_param("DesiredConfiguration"),
                self._get_param("Preferences") or {},
            )
        return ActionResult({"InstanceRefreshId": found})

    def describe_instance_refreshes(self: Any) -> Any:
        with LOCK:
            found = describe(
                self.autoscaling_backend,
                self._get_param("AutoScalingGroupName"),
                self._get_param("InstanceRefreshIds") or [],
            )
        return ActionResult({"InstanceRefreshes": found})

    def cancel_instance_refresh(self: Any) -> Any:
        with LOCK:
            found = cancel(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": found})

    def rollback_instance_refresh(self: Any) -> Any:
        with LOCK:
            found = rollback(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": found})

    AutoScalingResponse.start_instance_refresh = start_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes  # type: ignore[attr-defined]
    AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh  # type: ignore[attr-defined]
    moto_launch.install()
    instance_refresh_health.install()
