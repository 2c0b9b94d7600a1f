"""`bakery status`: per group, the intended image, what its instances run, any rollout under way,
health, and drift (instances on another image than the intended one, or on images bakery did not
bake), and the images it runs whose stored scan is over the policy of the channel it follows, or
that have none (bakery/scan/fleet.py). Exit 0 in sync, 3 on drift, such findings or an image not
scanned (act: roll out, finish, roll forward, scan), 1 when what bakery would vouch for cannot be
read: a group, the revocations, the history of the channel a group follows or the stored scan of an
image it runs (tampered, a bad signature, cut short, replayed): no rollout fixes that."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bakery.core import catalog
from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError
from bakery.groups.base import ActiveRollout, GroupState, Instance, Release
from bakery.rollout.service import Rollouts
from bakery.scan.fleet import over_policy
from bakery.trust.revocations import Revocation, Revocations, marks_disagree, revocation_of

EXIT_IN_SYNC, EXIT_UNREADABLE, EXIT_DRIFT = 0, 1, 3


@dataclass(frozen=True)
class GroupStatus:
    group: str
    image: str  # the image the group is declared to run (images.yaml)
    target: str
    kind: str
    running: bool = False
    intended: Release | None = None
    counts: dict[str, int] = field(default_factory=dict)  # instances per image ref (or id)
    instances: tuple[Instance, ...] = ()
    kept: tuple[Instance, ...] = ()  # out of rotation, for an immediate blue-green rollback
    healthy: int = 0
    unhealthy: int = 0
    active: ActiveRollout | None = None
    newest: str | None = None  # the newest complete version of the image on the target
    drift: bool = False
    reasons: tuple[str, ...] = ()
    revoked: tuple[str, ...] = ()  # "web@1.0.1 (2 instances): revoked since …" for each revoked image it runs
    error: str | None = None
    channel: str | None = None  # the channel the group follows
    channel_head: str | None = None  # its head now (revoked heads skipped)
    behind: bool = False  # the group does not intend to run its channel's head
    fell_back: tuple[str, ...] = ()  # the revoked heads the channel fell back past
    channel_error: str | None = None  # why the channel's history cannot be trusted (exit 1)
    vulnerable: tuple[str, ...] = ()  # an image it runs whose stored scan is over its channel's policy (exit 3)
    unscanned: tuple[str, ...] = ()  # an image it runs with no stored scan, its channel having a policy (exit 3)
    scan_errors: tuple[str, ...] = ()  # an image it runs whose stored scan cannot be trusted (exit 1)


@dataclass(frozen=True)
class StatusReport:
    groups: tuple[GroupStatus, ...]
    exit_code: int


def status(rollouts: Rollouts, names: list[str]) -> StatusReport:
    groups = names or sorted(rollouts.project.config.groups)
    try:
        table = Revocations(rollouts.trust).table()
    except BakeryError as exc:
        table = None
        rollouts.reporter.note(f"warning: cannot read revocations from the registry: {exc.message}")
    out = [_one(rollouts, name, table) for name in groups]
    # revocations unread: drift cannot be ruled out; a channel history that does not verify: nor its head
    unreadable = table is None or any(g.error or g.channel_error or g.scan_errors for g in out)
    code = EXIT_UNREADABLE if unreadable else EXIT_DRIFT if any(g.drift for g in out) else EXIT_IN_SYNC
    return StatusReport(tuple(out), code)


def _one(rollouts: Rollouts, name: str, table: dict[tuple[str, str], Revocation] | None) -> GroupStatus:
    group = rollouts.group(name)
    kind = rollouts.target_spec(group).kind
    base = GroupStatus(group=name, image=group.image, target=group.target, kind=kind)
    try:
        state = rollouts.read(name)
        everything = rollouts.provider(group).images(group.target)
    except BakeryError as exc:
        return GroupStatus(**{**base.__dict__, "error": exc.message})
    records = [r for r in everything if r.name == group.image]
    newest = catalog.newest(records)
    active = state.active or _journal_active(rollouts, name)
    reasons = drift_of(state, active)
    parents = rollouts.gate.verifier.ancestry.parents
    revoked = revoked_in(state, {r.ref: r for r in everything}, table, parents) if table is not None else []
    if table is None:
        reasons.append("revocations could not be read from the registry")
    head, behind, fell_back, channel_error = _channel(rollouts, name, state, reasons)
    refs = [*state.counts(), *([state.intended.image] if state.intended and state.intended.image else [])]
    project, verifier = rollouts.project, rollouts.gate.verifier
    scans = over_policy(project, rollouts.trust, verifier, group.channel, refs, everything)
    vulnerable = [*scans.over, *scans.unscanned, *scans.unreadable]
    return GroupStatus(
        group=name,
        image=group.image,
        target=group.target,
        kind=kind,
        running=state.running,
        intended=state.intended,
        counts=state.counts(),
        instances=state.instances,
        kept=state.kept,
        healthy=sum(i.health == "healthy" for i in state.instances),
        unhealthy=sum(i.health == "unhealthy" for i in state.instances),
        active=active,
        newest=newest.ref if newest else None,
        drift=bool(reasons or revoked or vulnerable),
        reasons=tuple(reasons + revoked + vulnerable),
        revoked=tuple(revoked),
        channel=group.channel,
        channel_head=head,
        behind=behind,
        fell_back=fell_back,
        channel_error=channel_error,
        vulnerable=scans.over,
        unscanned=scans.unscanned,
        scan_errors=scans.unreadable,
    )


def _channel(
    rollouts: Rollouts, name: str, state: GroupState, reasons: list[str]
) -> tuple[str | None, bool, tuple[str, ...], str | None]:
    """(the head of the channel the group follows, whether the group is behind it, the revoked
    heads it fell back past, why its history cannot be trusted); a reason is added to `reasons`
    when it is behind or unreadable."""
    group = rollouts.group(name)
    if group.channel is None:
        return None, False, (), None
    try:
        head = rollouts.heads.head(group.channel, group.target, group.image)
    except BakeryError as exc:
        reasons.append(f"channel {group.channel} cannot be read: {exc.message}")
        return None, False, (), exc.message
    intended = state.intended.image if state.intended is not None else None
    behind = head.ref is not None and intended != head.ref
    if behind:
        moved = f" (it fell back past {'; '.join(head.moved_past)})" if head.moved_past else ""
        reasons.append(
            f"behind channel {group.channel}: its head is {head.ref}{moved}, the group runs {intended or 'nothing'}"
        )
    elif head.ref is None and head.skipped:
        gone = "; ".join(head.skipped)
        reasons.append(f"channel {group.channel} has no head left: every head is revoked or unverified ({gone})")
    return head.ref, behind, head.moved_past, None


def revoked_in(
    state: GroupState,
    records: dict[str, ImageRecord],
    table: dict[tuple[str, str], Revocation],
    parents: Callable[[ImageRecord], Iterable[str]] | None = None,
) -> list[str]:
    """One line per revoked image (by itself or an ancestor, along every parent claimed:
    `parents`) the group runs or intends to run."""
    counts = state.counts()
    refs = set(counts)
    if state.intended is not None and state.intended.image:
        refs.add(state.intended.image)
    out = []
    for ref in sorted(refs):
        record = records.get(ref)
        found = revocation_of(record, table, records, parents) if record is not None else None
        if found is not None and found.effective():
            out.append(f"runs revoked image {ref} ({counts.get(ref, 0)} instance(s)): {found.describe()}")
        elif record is not None and (disagreement := marks_disagree(record, found, records, parents)) is not None:
            out.append(f"runs {ref} ({counts.get(ref, 0)} instance(s)), which may be revoked: {disagreement}")
    return out


def drift_of(state: GroupState, active: ActiveRollout | None) -> list[str]:
    """Why the group is not in sync with its intended image (empty: in sync)."""
    reasons: list[str] = []
    if not state.running:
        return ["the group is not running (bakery rollout brings it up)"]
    intended = state.intended
    if intended is None or intended.image is None:
        shown = intended.image_id if intended else "nothing"
        reasons.append(f"its template runs {shown}, an image bakery did not bake")
    for image, count in sorted(state.counts().items()):
        if intended is not None and intended.image is not None and image == intended.image:
            continue
        baked = any(i.image == image for i in state.instances)
        what = image if baked else f"{image}, an image bakery did not bake"
        wanted = intended.image if intended is not None and intended.image else "the intended image"
        reasons.append(f"{count} instance(s) on {what}, not {wanted}")
    if active is not None:
        reasons.append(f"rollout {active.id} to {active.to} is unfinished (at {active.step})")
    return reasons


def _journal_active(rollouts: Rollouts, name: str) -> ActiveRollout | None:
    journal = rollouts.unfinished(name)
    if journal is None:
        return None
    data = journal.data.get("rollout") or {}
    to = (data.get("to") or {}).get("image") or (data.get("to") or {}).get("image_id") or "?"
    return ActiveRollout(
        id=str(data.get("id", "?")),
        to=str(to),
        step=f"{journal.data.get('current') or 'start'} ({journal.status})",
        percent=None,
        started=str(journal.data.get("started", "?")),
        who=str(data.get("who", "?")),
        where=f"{data.get('host', '?')} (pid {data.get('pid', '?')})",
    )
