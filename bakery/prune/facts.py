"""What uses each recorded version on a target, read live: the provider's references (launch
templates, launch configurations, fleets, instances, instance templates; sharing), the groups of
images.yaml on the target (what they run and their last `keep` rollouts), and the channels' kept
heads in the registry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from bakery.config.load import Project
from bakery.core.catalog import ImageRecord
from bakery.groups.base import GroupDriver, Release
from bakery.providers.base import Provider
from bakery.prune.decide import Candidate
from bakery.trust.channels import Channels
from bakery.trust.context import TrustContext


def candidates(
    project: Project,
    trust: TrustContext,
    target: str,
    provider: Provider,
    driver: Callable[[], GroupDriver],
    records: list[ImageRecord],
) -> list[Candidate]:
    """Every record with what uses it. Raises BakeryError when a fact cannot be read: a prune
    never decides blind."""
    group_uses, members = _group_uses(project, target, driver) if _groups_on(project, target) else ({}, {})
    heads = _channel_heads(trust, target)
    out = []
    for record, usage in zip(records, provider.usage(records), strict=True):
        theirs = group_uses.get(record.ref, [])
        # An instance a group's line credits to this version is not named again by the provider's;
        # one the group could not tie to it (its launch template version deleted...) still is.
        credited = members.get(record.ref, set())
        own = [u for u in usage.uses if not any(u.startswith(f"instance {m} ") for m in credited)]
        out.append(
            Candidate(
                record=record,
                uses=(*own, *theirs),
                shared_with=usage.shared_with,
                heads=tuple(heads.get(record.ref, ())),
            )
        )
    return out


def _groups_on(project: Project, target: str) -> list[str]:
    return [name for name, group in project.config.groups.items() if group.target == target]


def _group_uses(
    project: Project, target: str, make: Callable[[], GroupDriver]
) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """What each ref is used by in the groups on `target`, and the ids of the groups' instances
    each ref's lines name."""
    driver = make()
    members: dict[str, set[str]] = defaultdict(set)
    spec = project.config.targets[target]
    uses: dict[str, list[str]] = defaultdict(list)

    def add(ref: str | None, line: str) -> None:
        if ref and line not in uses[ref]:
            uses[ref].append(line)

    for name in _groups_on(project, target):
        group = project.config.groups[name]
        state = driver.read(name, group, spec)
        if state.intended is not None:
            add(state.intended.image, f"group {name}'s template {_template(state.intended)}")
        running: dict[str, list[str]] = defaultdict(list)
        for instance in state.instances + state.kept:
            if instance.image:
                running[instance.image].append(instance.id)
                members[instance.image].add(instance.id)
        for ref, ids in running.items():
            add(ref, f"group {name}'s instance{'s' if len(ids) > 1 else ''} {', '.join(sorted(ids))}")
        for entry in driver.history(name, group, spec)[-group.keep :]:
            for release in (entry.from_, entry.to):
                if release is not None:
                    add(release.image, f"group {name}'s rollout history ({entry.id}, {_template(release)})")
    return uses, members


def _template(release: Release) -> str:
    return release.template or release.image_id


def _channel_heads(trust: TrustContext, target: str) -> dict[str, list[str]]:
    heads: dict[str, list[str]] = defaultdict(list)
    for channel in Channels(trust).every():
        if channel.target != target:
            continue
        stack = channel.stack
        for version in stack[:-1]:
            heads[f"{channel.image}@{version}"].append(f"in the kept history of channel {channel.channel}")
        if stack:
            heads[f"{channel.image}@{stack[-1]}"].append(f"head of channel {channel.channel}")
    return heads
