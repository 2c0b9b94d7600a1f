"""Which image versions a prune removes, and why each one goes or stays: a pure function of the
candidates (every recorded version on a target), what uses them, and each image's policy.

An image stays if anything below holds, and every reason that holds is listed:
- something uses it: a launch template version (directly or through an SSM parameter), an Auto
  Scaling group, an EC2 or Spot Fleet, an instance (booted from it, in a group or not), an
  instance template, a MIG version, a group's rollout history (the `uses` of its Candidate); or
  a kind of use could not be read ("could not tell ..."), which keeps it too;
- it is a channel's head, or a head within the channel's kept history (what a rollback returns to);
- it (or one of its snapshots) is shared with other accounts or projects (unless its policy
  says `shared: true`);
- it is one of the newest `keep` versions of its image on its target;
- it is younger than `older_than_days`;
- it is the parent of an image that stays (and so on up the ancestry).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bakery.config.models import Prune
from bakery.core.catalog import ImageRecord, version_key
from bakery.core.debris import utc

REMOVE, KEEP = "remove", "keep"


@dataclass(frozen=True)
class Candidate:
    """One recorded version and what is known of its use."""

    record: ImageRecord
    uses: tuple[str, ...] = ()  # "launch template lt-0abc version 3 (eu-west-1)", "running instance i-0abc"
    shared_with: tuple[str, ...] = ()  # accounts or projects it is shared with ("123456789012", "all")
    heads: tuple[str, ...] = ()  # "head of channel stable", "in the kept history of channel stable"


@dataclass(frozen=True)
class Verdict:
    image: str  # "web@1.0.3"
    target: str
    action: str  # REMOVE or KEEP
    reasons: tuple[str, ...]
    created: str = ""
    record: ImageRecord | None = field(default=None, compare=False)


def decide(candidates: Iterable[Candidate], policies: Mapping[str, Prune], now: datetime) -> list[Verdict]:
    """A verdict for every candidate, in image, target and version order. `policies` maps an
    image name to its policy (as given on the command line over images.yaml); an image without
    one is kept ("no prune policy")."""
    items = sorted(candidates, key=lambda c: (c.record.name, c.record.target, version_key(c.record.version)))
    reasons: dict[tuple[str, str], list[str]] = {}
    by_image: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
    for c in items:
        by_image[(c.record.name, c.record.target)].append(c)
    for (name, _target), versions in by_image.items():
        policy = policies.get(name)
        newest = {c.record.version for c in versions[-policy.keep :]} if policy else set()
        for c in versions:
            why = _own_reasons(c, policy, newest, now)
            reasons[(c.record.ref, c.record.target)] = why
    _keep_parents(items, reasons)
    return [
        Verdict(
            image=c.record.ref,
            target=c.record.target,
            action=KEEP if reasons[(c.record.ref, c.record.target)] else REMOVE,
            reasons=tuple(reasons[(c.record.ref, c.record.target)]) or _why_it_goes(c, policies[c.record.name]),
            created=c.record.created,
            record=c.record,
        )
        for c in items
    ]


def _own_reasons(c: Candidate, policy: Prune | None, newest: set[str], now: datetime) -> list[str]:
    why = [f"in use: {use}" for use in c.uses] + list(c.heads)
    if c.shared_with and not (policy and policy.shared):
        why.append(f"shared with {', '.join(c.shared_with)}")
    if policy is None:
        return [*why, "no prune policy"]
    if c.record.version in newest:
        why.append(f"among the newest {policy.keep}")
    created = utc(c.record.created)
    if created is None:
        why.append(f"creation time unknown ({c.record.created or 'none recorded'})")
    elif now - created < timedelta(days=policy.older_than_days):
        why.append(f"younger than {policy.older_than_days} days (created {c.record.created})")
    return why


def _keep_parents(items: list[Candidate], reasons: dict[tuple[str, str], list[str]]) -> None:
    """Every ancestor (on the same target) of a version that stays, stays too."""
    known = {(c.record.ref, c.record.target) for c in items}
    parent_of = {(c.record.ref, c.record.target): c.record.parent for c in items}
    pending = [key for key in known if reasons[key]]
    while pending:
        child = pending.pop()
        parent = parent_of.get(child)
        key = (parent or "", child[1])
        if parent and key in known:
            line = f"parent of {child[0]}, which stays"
            if line not in reasons[key]:
                was_kept = bool(reasons[key])
                reasons[key].append(line)
                if not was_kept:
                    pending.append(key)


def _why_it_goes(c: Candidate, policy: Prune) -> tuple[str, ...]:
    shared = f", shared with {', '.join(c.shared_with)} (policy allows)" if c.shared_with else ""
    return (f"older than {policy.older_than_days} days, not among the newest {policy.keep}, unused{shared}",)
