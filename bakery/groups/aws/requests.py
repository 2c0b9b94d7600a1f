"""The AWS requests a rollout makes, built apart from sending them, and the readings of AWS's
answers (a refresh's progress, its outcome). Pure: tested by equality."""

from __future__ import annotations

from typing import Any

from bakery.config.targets.aws import AwsGroup
from bakery.core.provenance import AWS_MAX_TAGS
from bakery.errors import BakeryError, ConfigError
from bakery.groups.base import INSTANCE_TAGS
from bakery.groups.budget import CALLS_PER_MINUTE, poll_override
from bakery.groups.strategy import RolloutPlan

# While bakery watches a refresh it polls so as to make at most CALLS_PER_MINUTE API calls a
# minute (bakery.groups.budget keeps any minute within it), and never faster than this.
MIN_POLL_SECONDS = 5.0
# AWS's bound on CheckpointDelay.
MAX_CHECKPOINT_DELAY = 172800


def instance_tag_specs(source: list[dict[str, Any]], tags: dict[str, str]) -> list[dict[str, Any]]:
    """The source version's TagSpecifications with `tags` on instances (AWS replaces the whole
    list when a new version sets it, so the others are carried over). ConfigError past 50 tags."""
    out: list[dict[str, Any]] = []
    placed = False
    for spec in source:
        if spec.get("ResourceType") != "instance":
            out.append(spec)
            continue
        kept = [t for t in spec.get("Tags", []) if t["Key"] not in INSTANCE_TAGS and t["Key"] not in tags]
        out.append({"ResourceType": "instance", "Tags": kept + [{"Key": k, "Value": v} for k, v in tags.items()]})
        placed = True
    if not placed:
        out.append({"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]})
    for spec in out:
        if len(spec.get("Tags", [])) > AWS_MAX_TAGS:
            raise ConfigError(
                f"the launch template's {spec['ResourceType']} tags and bakery's {len(tags)} exceed AWS's limit "
                f"of {AWS_MAX_TAGS}; remove some from the launch template"
            )
    return out


def version_request(
    template_id: str, source: int, ami: str, tag_specs: list[dict[str, Any]], description: str
) -> dict[str, Any]:
    """CreateLaunchTemplateVersion: everything from `source` (SourceVersion), the new AMI and tags."""
    return {
        "LaunchTemplateId": template_id,
        "SourceVersion": str(source),
        "VersionDescription": description,
        "LaunchTemplateData": {"ImageId": ami, "TagSpecifications": tag_specs},
    }


def refresh_request(
    asg: str,
    template_id: str,
    version: int,
    plan: RolloutPlan,
    settings: AwsGroup,
    *,
    auto_rollback: bool,
    checkpoints: bool = True,
    alarms: bool = True,
) -> dict[str, Any]:
    """StartInstanceRefresh pinned to a numbered version (never $Latest/$Default: AWS could not
    roll back, and the group itself is only updated by AWS when the refresh succeeds).

    rolling: Min/MaxHealthyPercentage from the plan; canary also CheckpointPercentages with one
    CheckpointDelay (AWS has a single delay: the longest hold of the plan's waves). `alarms`
    false (a refresh that restores a previous version) leaves out the AlarmSpecification: the
    alarms fire because of what it undoes."""
    preferences: dict[str, Any] = {
        "MinHealthyPercentage": plan.min_healthy_percentage,
        "MaxHealthyPercentage": plan.max_healthy_percentage,
        "InstanceWarmup": settings.instance_warmup,
        "SkipMatching": True,
        "AutoRollback": auto_rollback,
    }
    if checkpoints and plan.strategy == "canary" and len(plan.checkpoints) > 1:
        preferences["CheckpointPercentages"] = list(plan.checkpoints)
        delay = max((w.hold_seconds for w in plan.waves), default=0)
        preferences["CheckpointDelay"] = min(delay, MAX_CHECKPOINT_DELAY)
    if alarms and settings.alarms:
        preferences["AlarmSpecification"] = {"Alarms": list(settings.alarms)}
    return {
        "AutoScalingGroupName": asg,
        "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": template_id, "Version": str(version)}},
        "Preferences": preferences,
    }


def desired_version(refresh: dict[str, Any]) -> str | None:
    """The launch template version a refresh moves to, as AWS reports it."""
    template = refresh.get("DesiredConfiguration", {}).get("LaunchTemplate", {})
    version = template.get("Version")
    return str(version) if version is not None else None


def progress_line(refresh: dict[str, Any]) -> str:
    """'instance refresh 1a2b3c4d: InProgress, 25% done, 3 to update (Waiting for checkpoint...)'."""
    status = refresh.get("Status", "?")
    if status == "RollbackInProgress":
        details = refresh.get("RollbackDetails", {})
        done = f"rolling back, {details.get('PercentageCompleteOnRollback', 0)}% done"
        left = details.get("InstancesToUpdateOnRollback")
    else:
        done = f"{status}, {refresh.get('PercentageComplete', 0)}% done"
        left = refresh.get("InstancesToUpdate")
    line = f"instance refresh {str(refresh.get('InstanceRefreshId', '?'))[:8]}: {done}"
    if left is not None:
        line += f", {left} to update"
    reason = refresh.get("StatusReason")
    return f"{line} ({reason})" if reason else line


def outcome_error(refresh: dict[str, Any], asg: str) -> BakeryError | None:
    """None for Successful; else the error (exit 1) with AWS's own reason."""
    status = refresh.get("Status")
    if status == "Successful":
        return None
    which = f"instance refresh {refresh.get('InstanceRefreshId', '?')} of {asg}"
    reason = refresh.get("StatusReason") or refresh.get("RollbackDetails", {}).get("RollbackReason") or ""
    because = f": {reason}" if reason else " (AWS gave no reason)"
    if status == "RollbackSuccessful":
        return BakeryError(f"{which} was rolled back by AWS{because}", hint="the group runs its previous image")
    if status == "Cancelled":
        return BakeryError(f"{which} was cancelled{because}")
    if status == "RollbackFailed":
        return BakeryError(f"{which} failed and its rollback failed too{because}", hint="look at the group's activity")
    return BakeryError(f"{which} ended {status}{because}")


def production_poll_seconds(calls_per_round: int) -> float:
    """Seconds between two rounds of `calls_per_round` calls: at most CALLS_PER_MINUTE calls a minute."""
    return max(MIN_POLL_SECONDS, 60.0 * max(1, calls_per_round) / CALLS_PER_MINUTE)


def poll_seconds(calls_per_round: int) -> float:
    """production_poll_seconds, unless $BAKERY_POLL_SECONDS overrides it (tests, and fakes that
    move in fractions of a second)."""
    return poll_override() or production_poll_seconds(calls_per_round)
