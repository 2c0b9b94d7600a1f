"""An AWS group's history, kept on its launch template (aws_marks says how), and the pruning of
what rollouts leave: launch template versions bakery made and retired blue-green groups."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from bakery.core.provenance import AWS_MAX_TAGS
from bakery.groups.aws.api import AsgApi
from bakery.groups.aws.marks import (
    ACTIVE_TAG,
    HISTORY_PREFIX,
    HISTORY_ROOM,
    decode_entry,
    encode_entry,
    made_by_bakery,
    parse_template,
    parse_version_description,
    template_label,
)
from bakery.groups.aws.requests import desired_version
from bakery.groups.aws.resources import GROUP_TAG, RETAIN_TAG, SERVING_TAG, tags_of, template_of, version_instance_tags
from bakery.groups.base import HistoryEntry, Release
from bakery.progress import Reporter


def record(api: AsgApi, entry: HistoryEntry) -> None:
    """Write `entry` (replacing one with the same id); the oldest entries give way when the
    launch template has no room left for tags (AWS allows 50)."""
    template_id = api.template()["LaunchTemplateId"]
    if entry.to.template is None:  # the service knows the image; the version is the one this rollout made
        made = [n for n, v in api.versions(template_id).items() if _made_by(v, entry.id)]
        if made:
            entry = dataclasses.replace(
                entry, to=dataclasses.replace(entry.to, template=template_label(template_id, max(made)))
            )
    tags = api.template_tags(template_id)
    key = HISTORY_PREFIX + entry.id
    earlier = [e for e in _entries(tags, template_id) if e.id != entry.id]
    others = len([k for k in tags if not k.startswith(HISTORY_PREFIX)]) + (0 if ACTIVE_TAG in tags else 1)
    room = max(1, min(HISTORY_ROOM, AWS_MAX_TAGS - others))
    earlier.sort(key=lambda e: (e.started, e.id))
    api.untag_template(template_id, [HISTORY_PREFIX + e.id for e in earlier[: max(0, len(earlier) + 1 - room)]])
    api.tag_template(template_id, {key: encode_entry(entry)})


def history(api: AsgApi) -> list[HistoryEntry]:
    """Every entry kept, oldest first, with the releases' templates and inputs digests filled in
    from the launch template versions that still exist."""
    template_id = api.template()["LaunchTemplateId"]
    entries = _entries(api.template_tags(template_id), template_id)
    if not entries:
        return []
    versions = api.versions(template_id)
    return sorted((_filled(e, versions) for e in entries), key=lambda e: (e.started, e.id))


def _made_by(version: dict[str, Any], rollout_id: str) -> bool:
    made = parse_version_description(version.get("VersionDescription"))
    return made is not None and made[0] == rollout_id


def _entries(tags: dict[str, str], template_id: str) -> list[HistoryEntry]:
    out = []
    for key, value in tags.items():
        if key.startswith(HISTORY_PREFIX):
            entry = decode_entry(key[len(HISTORY_PREFIX) :], value, template_id)
            if entry is not None:
                out.append(entry)
    return out


def _filled(entry: HistoryEntry, versions: dict[int, dict[str, Any]]) -> HistoryEntry:
    def fill(release: Release | None) -> Release | None:
        if release is None or release.template is None:
            return release
        found = versions.get(parse_template(release.template)[1])
        if found is None:
            return release
        digest = version_instance_tags(found).get("bakery:inputs-digest")
        return Release(release.image, release.image_id, release.template, digest or None)

    to = fill(entry.to)
    assert to is not None
    return HistoryEntry(
        id=entry.id,
        kind=entry.kind,
        started=entry.started,
        who=entry.who,
        from_=fill(entry.from_),
        to=to,
        strategy=entry.strategy,
        result=entry.result,
        finished=entry.finished,
        reason=entry.reason,
    )


def prune(api: AsgApi, group: str, keep: int, reporter: Reporter) -> list[str]:
    """Delete the launch template versions bakery made that neither the last `keep` rollouts
    (from and to), nor any of the group's ASGs, nor an active refresh, nor the template's
    default use; and the retired blue-green groups whose retention has passed."""
    template = api.template()
    template_id = template["LaunchTemplateId"]
    kept: set[int] = {int(template.get("DefaultVersionNumber", 0))}
    for entry in history(api)[-keep:] if keep > 0 else []:
        for release in (entry.from_, entry.to):
            if release is not None and release.template is not None:
                kept.add(parse_template(release.template)[1])
    groups = _groups(api, group)
    for asg in groups:
        ref = template_of(asg)
        if ref is not None and ref.number is not None:
            kept.add(ref.number)
        kept.update(int(i["LaunchTemplate"]["Version"]) for i in asg.get("Instances", []) if "LaunchTemplate" in i)
        active = api.active_refresh(asg["AutoScalingGroupName"])
        version = desired_version(active) if active else None
        if version is not None and version.isdigit():
            kept.add(int(version))
    versions = api.versions(template_id)
    doomed = sorted(n for n, v in versions.items() if n not in kept and made_by_bakery(v.get("VersionDescription")))
    deleted, refused = api.delete_versions(template_id, doomed) if doomed else ([], [])
    for why in refused:
        reporter.note(f"launch template {template_id}: version {why}")
    out = [f"launch template {api.settings.launch_template} ({template_id}) version {n}" for n in deleted]
    now = datetime.now(UTC)
    for asg in groups:
        tags = tags_of(asg)
        until = _parse_time(tags.get(RETAIN_TAG, ""))
        if tags.get(SERVING_TAG) == "false" and until is not None and until < now and not asg.get("Instances"):
            api.delete_group(asg["AutoScalingGroupName"])
            out.append(f"Auto Scaling group {asg['AutoScalingGroupName']} (retained until {tags[RETAIN_TAG]})")
    return out


def _groups(api: AsgApi, group: str) -> list[dict[str, Any]]:
    found = {g["AutoScalingGroupName"]: g for g in api.tagged_groups(group)}
    configured = api.group(api.settings.asg)
    if configured is not None:
        found.setdefault(configured["AutoScalingGroupName"], configured)
    return [g for g in found.values() if tags_of(g).get(GROUP_TAG, group) == group]


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
