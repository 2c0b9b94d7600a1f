"""Which image a rollout moves a group to, and its plan: picked from the catalog, planned by the
group's strategy, read back from a journal, checked against the group before it starts."""

from __future__ import annotations

import secrets
from typing import Any, Literal

from bakery import steps
from bakery.config.kinds import TargetSpec
from bakery.config.models import Group, Strategy
from bakery.core import catalog
from bakery.core.catalog import ImageRecord
from bakery.core.identity import who
from bakery.errors import BakeryError, RolloutRefused, UsageError
from bakery.groups import strategy
from bakery.groups.base import REPLACES, GroupState, HistoryEntry, Release, Rollout
from bakery.groups.strategy import RolloutPlan
from bakery.rollout.record import release_of, shown
from bakery.trust.gate import TrustGate


def new_id() -> str:
    return "r-" + secrets.token_hex(6)


def busy(group: str, rollout_id: str, since: str, where: str) -> RolloutRefused:
    return RolloutRefused(
        f"another rollout of {group} is running: {rollout_id}, started {since} by {where}",
        hint=f"wait for it (bakery status {group}); a second rollout of one group is never started",
    )


def refuse_active(name: str, state: GroupState) -> None:
    """Raise RolloutRefused when the group's engine is moving it (from any machine), naming what
    moves it: a bakery rollout by its id, anything else by what it is."""
    if state.active is not None:
        raise RolloutRefused(
            f"{name} is moving now: {state.active.describe()}",
            hint=f"wait for it (bakery status {name}); a second rollout of one group is never started",
        )


def pick(gate: TrustGate, group: Group, records: list[ImageRecord], ref: str | None) -> ImageRecord:
    """The image `--image ref` names among `records` (the group's image on its target), or the
    newest one the trust gate allows. Raises UsageError (or the gate's TrustError)."""
    if ref is None:
        return gate.newest_allowed(group, records)
    name, version = catalog.parse_ref(ref)
    if name != group.image:
        raise UsageError(f"{ref} is an image of {name}; this group runs {group.image}")
    if version is None:
        raise UsageError(f"--image takes NAME@VERSION, got {ref!r}")
    found = [r for r in records if r.version == version]
    if not found:
        known = ", ".join(r.version for r in sorted(records, key=lambda r: catalog.version_key(r.version)))
        raise UsageError(
            f"{ref} is not a completely recorded image on {group.target}",
            hint=f"versions of {name} on {group.target}: {known or 'none'} (bakery images {name})",
        )
    if len(found) > 1:
        return gate.claimant(group, found)
    return found[0]


def last_move(name: str, history: list[HistoryEntry], state: GroupState) -> tuple[HistoryEntry, Release]:
    """The completed rollout that brought the group to what it runs now, and what it ran before.
    Raises UsageError when there is none to undo."""
    now_id = state.intended.image_id if state.intended else None
    for entry in reversed(history):
        if entry.result != steps.SUCCEEDED or entry.to.image_id != now_id:
            continue  # refused, failed, rolled back, or not what the group runs now
        if entry.from_ is not None and entry.from_.image_id == entry.to.image_id:
            continue  # moved nowhere
        if entry.kind == "rollback":
            forward = entry.from_.image if entry.from_ and entry.from_.image else "NAME@VERSION"
            raise UsageError(
                f"the last change of {name} ({entry.id}) was a rollback; the group runs {shown(entry.to)}",
                hint=f"roll forward with `bakery rollout {name} --image {forward}`",
            )
        if entry.from_ is None:
            raise UsageError(f"{name} ran nothing before rollout {entry.id}: there is nothing to roll back to")
        return entry, entry.from_
    raise UsageError(
        f"no completed rollout of {name} led to what it runs now ({shown(state.intended)})",
        hint=f"`bakery history {name}` lists its rollouts; `bakery rollout {name} --image NAME@VERSION` moves it",
    )


def new(
    name: str,
    group: Group,
    target_spec: TargetSpec,
    kind: Literal["rollout", "rollback"],
    to: Release,
    record: ImageRecord | None,
    state: GroupState,
    strategy_type: str | None,
) -> Rollout:
    """A new rollout of `name` from what it intends now (`state`) to `to`, planned by the group's
    strategy (or `strategy_type`; a rollback never holds a canary)."""
    chosen = group.strategy if strategy_type is None else group.strategy.model_copy(update={"type": strategy_type})
    if kind == "rollback" and chosen.type == "canary":
        chosen = chosen.model_copy(update={"type": "rolling"})  # going back: no canary to hold
    settings = group.settings()
    size = state.desired if state.desired is not None else (settings.planned_size() if settings else 0)
    return Rollout(
        id=new_id(),
        kind=kind,
        group=name,
        spec=group,
        target=group.target,
        target_spec=target_spec,
        to=to,
        to_record=record,
        previous=state.intended,
        plan=_plan(group, chosen, size),
        who=who(),
        started=steps.now(),
    )


def from_saved(name: str, group: Group, target_spec: TargetSpec, data: dict[str, Any], *, where: str) -> Rollout:
    """The rollout a journal (at `where`) saved with record.saved, without its catalog record."""
    to = release_of(data.get("to"))
    if to is None:
        raise BakeryError(f"the saved state {where} names no image", hint="move it away to start over")
    chosen = group.strategy.model_copy(update={"type": data.get("strategy", group.strategy.type)})
    return Rollout(
        id=data["id"],
        kind=data.get("kind", "rollout"),
        group=name,
        spec=group,
        target=group.target,
        target_spec=target_spec,
        to=to,
        to_record=None,
        previous=release_of(data.get("previous")),
        plan=_plan(group, chosen, int(data.get("size", 0))),
        who=data.get("who", "?"),
        started=data.get("started", ""),
        reason=data.get("reason"),
        options={REPLACES: data[REPLACES]} if data.get(REPLACES) else {},
    )


def unchanged_since_plan(state: GroupState, rollout: Rollout) -> None:
    """Raise RolloutRefused when the group (`state`, read just now) moved since `rollout` was planned."""
    refuse_active(rollout.group, state)
    now_id = state.intended.image_id if state.intended else None
    planned = rollout.previous.image_id if rollout.previous else None
    if now_id != planned:
        raise RolloutRefused(
            f"{rollout.group} changed since the plan was made: it now runs {shown(state.intended)}, "
            f"the plan said {shown(rollout.previous)}",
            hint=f"run `bakery rollout {rollout.group}` again for a new plan",
        )


def _plan(group: Group, chosen: Strategy, size: int) -> RolloutPlan:
    settings = group.settings()
    low, high = settings.healthy_bounds() if settings else (None, None)
    return strategy.plan(chosen, size, min_healthy=low, max_healthy=high)
