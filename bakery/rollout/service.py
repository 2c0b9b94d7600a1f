"""`bakery rollout` and `bakery rollback`: pick the image, plan, hold the group, run the driver's
steps on the step engine, roll back on a failed gate, and record what happened where the group lives.

A rollout's journal (.bakery/rollouts/GROUP.json) is the engine's saved state: while it is
unfinished (interrupted, or its process killed), `bakery rollout GROUP` resumes it and
`bakery rollback GROUP` undoes it. The group's lock (.bakery/locks/group-GROUP.lock) keeps a second
rollout of the same group from starting on this machine; a cloud group's engine (an active refresh,
a MIG on the move) refuses one from any other machine.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from bakery import steps
from bakery.config.kinds import TargetSpec
from bakery.config.load import Project
from bakery.config.models import Group
from bakery.core import catalog
from bakery.core.catalog import ImageRecord
from bakery.core.identity import who
from bakery.errors import BakeryError, ConfigError, Interrupted, ProviderError, TrustError, UsageError
from bakery.groups import strategy
from bakery.groups.base import (
    GateFailed,
    GroupDriver,
    GroupState,
    HistoryEntry,
    Release,
    Rollout,
    RolloutRefused,
    get_driver,
)
from bakery.groups.strategy import RolloutPlan
from bakery.progress import GroupView, Reporter
from bakery.providers.base import ClientFactory, Provider, get_provider
from bakery.runner import signal_guard
from bakery.steps import Journal, Step
from bakery.trust.context import TrustContext
from bakery.trust.gate import TrustGate
from bakery.workspace import Workspace

UNFINISHED = (steps.RUNNING, steps.INTERRUPTED)


@dataclass(frozen=True)
class RolloutResult:
    group: str
    id: str
    operation: Literal["rollout", "rollback"]
    strategy: str
    from_: Release | None
    to: Release
    result: str  # planned, succeeded, rolled-back, up-to-date
    plan: RolloutPlan
    resumed_at: str | None = None  # the step a resumed rollout started from
    reason: str | None = None
    seconds: float = 0.0


def new_id() -> str:
    return "r-" + secrets.token_hex(6)


def release_dict(release: Release | None) -> dict[str, Any] | None:
    return dataclasses.asdict(release) if release is not None else None


def release_of(data: dict[str, Any] | None) -> Release | None:
    return Release(**data) if data else None


class Rollouts:
    """The rollout service for one project."""

    def __init__(
        self,
        project: Project,
        workspace: Workspace,
        reporter: Reporter,
        clients: ClientFactory | None = None,
        trust: TrustContext | None = None,
    ) -> None:
        self.project = project
        self.ws = workspace
        self.reporter = reporter
        self.clients = clients
        self.trust = trust or TrustContext(project, workspace, reporter)
        self.gate = TrustGate(project, self.trust, reporter, self.target_provider)

    # --- what the commands share -------------------------------------------------------------

    def group(self, name: str) -> Group:
        groups = self.project.config.groups
        if name not in groups:
            known = ", ".join(sorted(groups)) or "none (add groups: to images.yaml)"
            raise UsageError(f"no group '{name}' in {self.project.path}; groups: {known}")
        return groups[name]

    def target_spec(self, group: Group) -> TargetSpec:
        return self.project.config.targets[group.target]

    def driver(self, group: Group) -> GroupDriver:
        return get_driver(self.target_spec(group).kind, self.ws, self.reporter, self.clients)

    def provider(self, group: Group) -> Provider:
        return self.target_provider(group.target)

    def target_provider(self, target: str) -> Provider:
        spec = self.project.config.targets[target]
        return get_provider(spec.kind, self.ws, self.reporter, self.clients, self.project.config.targets)

    def journal_path(self, name: str) -> Any:
        return self.ws.root / "rollouts" / f"{name}.json"

    def journal(self, name: str) -> Journal | None:
        return Journal.load(self.journal_path(name))

    def unfinished(self, name: str) -> Journal | None:
        journal = self.journal(name)
        return journal if journal is not None and journal.status in UNFINISHED else None

    def read(self, name: str) -> GroupState:
        group = self.group(name)
        return self.driver(group).read(name, group, self.target_spec(group))

    # --- rollout -------------------------------------------------------------------------------

    def prepare(
        self,
        name: str,
        *,
        image: str | None = None,
        strategy_type: str | None = None,
        allow_unverified: bool = False,
        dry_run: bool = False,
    ) -> Rollout:
        """The rollout `bakery rollout NAME` would run (a resumed one when one is unfinished): its
        image verified by the trust gate (TrustError when refused)."""
        group = self.group(name)
        self._not_held(name)
        journal = self.unfinished(name)
        if journal is not None:
            rollout = self._from_journal(name, group, journal)
            if rollout.to_record is not None and journal.data.get("phase") != "rollback":
                self.gate.refuse_revoked(name, group, rollout.to_record)
            if image is not None and image != rollout.to.image:
                raise UsageError(
                    f"{rollout.kind} {rollout.id} of {name} to {rollout.to.describe()} is unfinished "
                    f"(stopped at {journal.data.get('current') or 'its start'})",
                    hint=f"run `bakery rollout {name}` to resume it, or `bakery rollback {name}` to undo it",
                )
            return rollout
        spec = self.target_spec(group)
        driver = self.driver(group)
        state = driver.read(name, group, spec)
        if state.active is not None:
            raise _busy(name, state.active.id, state.active.started, f"{state.active.who} on {state.active.where}")
        record = self._pick(group, image)
        self.gate.check(name, group, record, operation="rollout", allow_unverified=allow_unverified, audit=not dry_run)
        to = driver.release_of(record, spec)
        return self._new(name, group, "rollout", to, record, state.intended, state, strategy_type)

    def in_sync(self, rollout: Rollout) -> bool:
        """Whether the group already runs `rollout.to` on every instance (a rollout would be a no-op)."""
        state = self.read(rollout.group)
        return (
            state.running
            and state.intended is not None
            and state.intended.image_id == rollout.to.image_id
            and all(i.image_id == rollout.to.image_id for i in state.instances)
        )

    def run(self, rollout: Rollout, *, confirm: Callable[[Rollout], bool] | None = None) -> RolloutResult:
        """Run (or resume) `rollout`. Raises BakeryError (exit 1) when it failed or rolled back."""
        group = rollout.spec
        with self._lock(rollout), signal_guard():
            journal = self.unfinished(rollout.group)
            resumed_at = None
            driver = self.driver(group)
            if journal is not None and journal.data.get("rollout", {}).get("id") == rollout.id:
                resumed_at = journal.data.get("current") or "the start"
                if confirm is not None and not confirm(rollout):
                    raise BakeryError(f"not confirmed; {rollout.id} stays unfinished at {resumed_at}")
                self.reporter.note(f"resuming {rollout.kind} {rollout.id} of {rollout.group} at {resumed_at}")
            else:
                if confirm is not None and not confirm(rollout):
                    raise BakeryError("not confirmed; the group was not touched")
                self._unchanged_since_plan(driver, rollout)  # another machine may have moved it meanwhile
                journal = Journal.create(self.journal_path(rollout.group), rollout=self._to_json(rollout))
            started = time.monotonic()
            self._record(driver, rollout, steps.RUNNING)
            if journal.data.get("phase") == "rollback":
                return self._roll_back(driver, rollout, journal, journal.data.get("error") or "resumed", started)
            try:
                forward = self._watched(driver, rollout, driver.rollout_steps(rollout), guard=True)
                steps.execute(forward, journal, self.reporter)
            except (Interrupted, KeyboardInterrupt):  # the signal guard turns the latter into Interrupted
                self._record(driver, rollout, steps.INTERRUPTED, reason="interrupted")
                raise
            except BakeryError as exc:
                return self._failed(driver, rollout, journal, exc, started)
            journal.mark(status=steps.SUCCEEDED)
            self._record(driver, rollout, steps.SUCCEEDED)
            self._prune(driver, rollout)
            return self._result(rollout, "succeeded", started, resumed_at=resumed_at)

    def _failed(
        self, driver: GroupDriver, rollout: Rollout, journal: Journal, exc: BakeryError, started: float
    ) -> RolloutResult:
        """A forward step failed: roll back on a failed gate or engine outcome; pause when the cloud
        could not be asked (the group stays as it is, resumable); stop when nothing moved."""
        reason = exc.message
        moved = bool(journal.done) or bool(journal.values)
        if isinstance(exc, (RolloutRefused, ConfigError, UsageError)) and not moved:
            self._record(driver, rollout, steps.FAILED, reason=reason)
            raise exc
        if isinstance(exc, ProviderError) or (isinstance(exc, RolloutRefused) and moved):
            raise self._paused(
                driver,
                rollout,
                journal,
                reason,
                f"{rollout.kind} {rollout.id} of {rollout.group} is paused at "
                f"{journal.data.get('current') or 'its start'}: {reason}",
                hint=f"`bakery rollout {rollout.group}` resumes it, `bakery rollback {rollout.group}` undoes it; "
                f"`bakery status {rollout.group}` shows where the group stands",
            ) from None
        previous = self._record_of(rollout.spec, rollout.previous) if rollout.previous else None
        revoked = self.gate.revoked(rollout.spec, previous) if previous is not None else None
        if previous is not None and revoked is not None and rollout.spec.rollback and rollout.kind == "rollout":
            raise self._paused(
                driver,
                rollout,
                journal,
                f"{reason}; not rolled back onto a revoked image",
                f"{rollout.kind} {rollout.id} of {rollout.group} failed ({reason}) and is paused: the image to roll "
                f"back to, {previous.ref}, is {revoked.describe()}",
                hint=f"move it forward with `bakery rollout {rollout.group} --image NAME@VERSION`, or back anyway "
                f"with `bakery rollback {rollout.group}`",
            ) from None
        if not rollout.spec.rollback or rollout.kind == "rollback":
            self._record(driver, rollout, steps.FAILED, reason=reason)
            exc.details = self._details(rollout, steps.FAILED, reason)
            raise exc
        self.reporter.note(f"{_gate_or_step(exc)}; rolling back to {_shown(rollout.previous)}")
        return self._roll_back(driver, rollout, journal, reason, started, failed=True)

    def _paused(
        self, driver: GroupDriver, rollout: Rollout, journal: Journal, why: str, message: str, *, hint: str
    ) -> BakeryError:
        """Leave `rollout` paused (its journal interrupted, its history saying `why`): resumable
        with `bakery rollout`, undone with `bakery rollback`. Returns the error to raise."""
        journal.mark(status=steps.INTERRUPTED, error=why)
        self._record(driver, rollout, steps.INTERRUPTED, reason=why)
        return BakeryError(message, hint=hint, details=self._details(rollout, steps.INTERRUPTED, why))

    def _unchanged_since_plan(self, driver: GroupDriver, rollout: Rollout) -> None:
        state = driver.read(rollout.group, rollout.spec, rollout.target_spec)
        if state.active is not None:
            active = state.active
            raise _busy(rollout.group, active.id, active.started, f"{active.who} on {active.where}")
        now_id = state.intended.image_id if state.intended else None
        planned = rollout.previous.image_id if rollout.previous else None
        if now_id != planned:
            raise RolloutRefused(
                f"{rollout.group} changed since the plan was made: it now runs {_shown(state.intended)}, "
                f"the plan said {_shown(rollout.previous)}",
                hint=f"run `bakery rollout {rollout.group}` again for a new plan",
            )

    # --- rollback ------------------------------------------------------------------------------

    def prepare_rollback(
        self, name: str, *, reason: str | None = None, allow_unverified: bool = False
    ) -> tuple[Rollout, bool]:
        """(the rollback to run, whether it undoes an unfinished rollout with its rollback steps).
        An unfinished rollback (interrupted, killed) is resumed."""
        group = self.group(name)
        self._not_held(name)
        journal = self.unfinished(name)
        if journal is not None:
            rollout = self._from_journal(name, group, journal)
            undo = rollout.kind == "rollout"
            if not undo and rollout.to_record is not None and journal.data.get("phase") != "rollback":
                self.gate.refuse_revoked(name, group, rollout.to_record)  # a rollback resumed onto a revoked image
            return rollout, undo
        spec = self.target_spec(group)
        driver = self.driver(group)
        state = driver.read(name, group, spec)
        if state.active is not None:
            raise _busy(name, state.active.id, state.active.started, f"{state.active.who} on {state.active.where}")
        last = self._last_move(name, driver.history(name, group, spec), state)
        assert last.from_ is not None  # _last_move refuses otherwise
        record = self._record_of(group, last.from_)
        if record is not None:
            self.gate.check(name, group, record, operation="rollback", allow_unverified=allow_unverified)
        elif self.gate.required(group) and not allow_unverified:
            raise TrustError(
                f"refusing to roll {name} back onto {_shown(last.from_)}: bakery did not bake it, so it cannot verify",
                hint="--allow-unverified deploys it anyway (recorded in the audit log)",
            )
        rollout = self._new(name, group, "rollback", last.from_, record, state.intended, state, None)
        return dataclasses.replace(rollout, reason=reason or f"rollback of {last.id} requested by {who()}"), False

    def _last_move(self, name: str, history: list[HistoryEntry], state: GroupState) -> HistoryEntry:
        """The completed rollout that brought the group to what it runs now."""
        now_id = state.intended.image_id if state.intended else None
        for entry in reversed(history):
            if entry.result != steps.SUCCEEDED or entry.to.image_id != now_id:
                continue  # refused, failed, rolled back, or not what the group runs now
            if entry.from_ is not None and entry.from_.image_id == entry.to.image_id:
                continue  # moved nowhere
            if entry.kind == "rollback":
                forward = entry.from_.image if entry.from_ and entry.from_.image else "NAME@VERSION"
                raise UsageError(
                    f"the last change of {name} ({entry.id}) was a rollback; the group runs {_shown(entry.to)}",
                    hint=f"roll forward with `bakery rollout {name} --image {forward}`",
                )
            if entry.from_ is None:
                raise UsageError(f"{name} ran nothing before rollout {entry.id}: there is nothing to roll back to")
            return entry
        raise UsageError(
            f"no completed rollout of {name} led to what it runs now ({_shown(state.intended)})",
            hint=f"`bakery history {name}` lists its rollouts; `bakery rollout {name} --image NAME@VERSION` moves it",
        )

    def rollback(
        self, rollout: Rollout, *, undo: bool, confirm: Callable[[Rollout], bool] | None = None
    ) -> RolloutResult:
        if not undo:  # a rollback after completion is a rollout back (or the resume of one)
            return self.run(rollout, confirm=confirm)
        with self._lock(rollout), signal_guard():
            journal = self.unfinished(rollout.group)
            if journal is None:
                raise UsageError(f"{rollout.id} of {rollout.group} is no longer unfinished")
            if confirm is not None and not confirm(rollout):
                raise BakeryError("not confirmed; the group was not touched")
            reason = f"rollback requested by {who()}"
            return self._roll_back(self.driver(rollout.spec), rollout, journal, reason, time.monotonic(), failed=False)

    # --- inner workings ------------------------------------------------------------------------

    def _roll_back(
        self, driver: GroupDriver, rollout: Rollout, journal: Journal, reason: str, started: float, failed: bool = True
    ) -> RolloutResult:
        journal.mark(error=reason)
        try:
            sequence = self._watched(driver, rollout, driver.rollback_steps(rollout))
            steps.execute(sequence, journal, self.reporter, phase="rollback")
        except (Interrupted, KeyboardInterrupt):
            self._record(driver, rollout, steps.INTERRUPTED, reason=f"{reason}; its rollback was interrupted")
            raise
        except BakeryError as exc:
            journal.mark(status=steps.ROLLBACK_FAILED)
            self._record(driver, rollout, steps.ROLLBACK_FAILED, reason=f"{reason}; rollback failed: {exc.message}")
            raise BakeryError(
                f"{rollout.id}: {reason}; the rollback to {_shown(rollout.previous)} failed too: {exc.message}",
                hint=f"see `bakery status {rollout.group}`; `bakery rollback {rollout.group}` tries again",
            ) from None
        journal.mark(status=steps.ROLLED_BACK)
        self._record(driver, rollout, steps.ROLLED_BACK, reason=reason)
        if failed:
            raise BakeryError(
                f"{rollout.kind} {rollout.id} of {rollout.group} to {_shown(rollout.to)} failed and was rolled back "
                f"to {_shown(rollout.previous)}: {reason}",
                details=self._details(rollout, steps.ROLLED_BACK, reason),
            )
        return self._result(rollout, steps.ROLLED_BACK, started, reason=reason)

    def _pick(self, group: Group, ref: str | None) -> ImageRecord:
        records = self.provider(group).images(group.target, group.image)
        if ref is None:
            return self.gate.newest_allowed(group, records)
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
            raise UsageError(f"{ref} is claimed by {len(found)} images on {group.target}; see `bakery images {name}`")
        return found[0]

    def _record_of(self, group: Group, release: Release) -> ImageRecord | None:
        if release.image is None:
            return None
        name, version = catalog.parse_ref(release.image)
        return next((r for r in self.provider(group).images(group.target, name) if r.version == version), None)

    def _new(
        self,
        name: str,
        group: Group,
        kind: Literal["rollout", "rollback"],
        to: Release,
        record: ImageRecord | None,
        previous: Release | None,
        state: GroupState,
        strategy_type: str | None,
    ) -> Rollout:
        chosen = group.strategy if strategy_type is None else group.strategy.model_copy(update={"type": strategy_type})
        if kind == "rollback" and chosen.type == "canary":
            chosen = chosen.model_copy(update={"type": "rolling"})  # going back: no canary to hold
        settings = group.settings()
        size = state.desired if state.desired is not None else (settings.planned_size() if settings else 0)
        low, high = settings.healthy_bounds() if settings else (None, None)
        plan = strategy.plan(chosen, size, min_healthy=low, max_healthy=high)
        return Rollout(
            id=new_id(),
            kind=kind,
            group=name,
            spec=group,
            target=group.target,
            target_spec=self.target_spec(group),
            to=to,
            to_record=record,
            previous=previous,
            plan=plan,
            who=who(),
            started=steps.now(),
        )

    def _to_json(self, rollout: Rollout) -> dict[str, Any]:
        return {
            "id": rollout.id,
            "kind": rollout.kind,
            "to": release_dict(rollout.to),
            "previous": release_dict(rollout.previous),
            "strategy": rollout.plan.strategy,
            "size": rollout.plan.size,
            "who": rollout.who,
            "started": rollout.started,
            "reason": rollout.reason,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def _from_journal(self, name: str, group: Group, journal: Journal) -> Rollout:
        data = journal.data.get("rollout") or {}
        to = release_of(data.get("to"))
        if to is None:
            raise BakeryError(f"the saved state {journal.path} names no image", hint="move it away to start over")
        chosen = group.strategy.model_copy(update={"type": data.get("strategy", group.strategy.type)})
        settings = group.settings()
        low, high = settings.healthy_bounds() if settings else (None, None)
        plan = strategy.plan(chosen, int(data.get("size", 0)), min_healthy=low, max_healthy=high)
        return Rollout(
            id=data["id"],
            kind=data.get("kind", "rollout"),
            group=name,
            spec=group,
            target=group.target,
            target_spec=self.target_spec(group),
            to=to,
            to_record=self._record_of(group, to),
            previous=release_of(data.get("previous")),
            plan=plan,
            who=data.get("who", "?"),
            started=data.get("started", ""),
            reason=data.get("reason"),
        )

    def _record(self, driver: GroupDriver, rollout: Rollout, result: str, reason: str | None = None) -> None:
        entry = HistoryEntry(
            id=rollout.id,
            kind=rollout.kind,
            started=rollout.started,
            who=rollout.who,
            from_=rollout.previous,
            to=rollout.to,
            strategy=rollout.plan.strategy,
            result=result,
            finished=None if result == steps.RUNNING else steps.now(),
            reason=reason or rollout.reason,
        )
        try:
            driver.record(rollout.group, rollout.spec, rollout.target_spec, entry)
        except BakeryError as exc:  # the group moved (or not) whatever its history says: never hide that
            self.reporter.note(
                f"warning: could not record {rollout.id} ({result}) in the group's history: {exc.message}"
            )
        self.trust.keep(f"rollouts/{rollout.group}/{rollout.id}.json", self._details(rollout, result, reason))
        if result != steps.RUNNING:
            self.trust.record(
                rollout.kind,
                f"group {rollout.group}",
                result,
                policy=self.trust.policy(required=self.gate.required(rollout.spec)),
                details=self._details(rollout, result, reason),
            )

    def _watched(
        self, driver: GroupDriver, rollout: Rollout, sequence: Sequence[Step], *, guard: bool = False
    ) -> list[Step]:
        """`sequence`, each step followed by a look at the group for the live view; with `guard`,
        each preceded by a look at the registry: an image revoked meanwhile goes no further."""

        def after(step: Step) -> Step:
            def run(journal: Journal) -> None:
                if guard and rollout.to_record is not None:
                    self.gate.refuse_revoked(rollout.group, rollout.spec, rollout.to_record, during=step.name)
                step.run(journal)
                self._show(driver, rollout, step.name)

            return dataclasses.replace(step, run=run)

        return [after(step) for step in sequence]

    def _show(self, driver: GroupDriver, rollout: Rollout, step: str) -> None:
        try:
            state = driver.read(rollout.group, rollout.spec, rollout.target_spec)
        except BakeryError:
            return  # the view waits for the next look; the steps themselves report what fails
        states = Counter(f"{i.image or i.image_id} {i.state}" for i in state.instances)
        health: Counter[str] = Counter(i.health for i in state.instances)
        on_new = sum(i.image_id == rollout.to.image_id for i in state.instances)
        percent = round(100 * on_new / len(state.instances)) if state.instances else None
        waves = rollout.plan.waves
        done = sum(w.total <= on_new for w in waves)
        self.reporter.progress(GroupView(rollout.group, step, done, len(waves), dict(states), dict(health), percent))

    def _details(self, rollout: Rollout, result: str, reason: str | None) -> dict[str, Any]:
        return {
            "rollout": rollout.id,
            "operation": rollout.kind,
            "group": rollout.group,
            "from": release_dict(rollout.previous),
            "to": release_dict(rollout.to),
            "result": result,
            "reason": reason,
        }

    def _not_held(self, name: str) -> None:
        from bakery.rollout.locks import holder

        held_by = holder(self.ws.locks / f"group-{name}.lock")
        if held_by is not None:
            raise RolloutRefused(
                f"another rollout of {name} is running: {held_by}",
                hint=f"wait for it to finish (bakery status {name}); one group never runs two rollouts",
            )

    def _prune(self, driver: GroupDriver, rollout: Rollout) -> None:
        try:
            removed = driver.prune(rollout.group, rollout.spec, rollout.target_spec, rollout.spec.keep)
        except BakeryError as exc:  # the rollout succeeded; an old template left behind is no failure
            self.reporter.note(f"warning: could not prune old templates: {exc.message}")
            return
        for line in removed:
            self.reporter.note(f"pruned {line} (older than the last {rollout.spec.keep} rollouts)")

    def _result(
        self,
        rollout: Rollout,
        result: str,
        started: float,
        *,
        resumed_at: str | None = None,
        reason: str | None = None,
    ) -> RolloutResult:
        return RolloutResult(
            group=rollout.group,
            id=rollout.id,
            operation=rollout.kind,
            strategy=rollout.plan.strategy,
            from_=rollout.previous,
            to=rollout.to,
            result=result,
            plan=rollout.plan,
            resumed_at=resumed_at,
            reason=reason,
            seconds=round(time.monotonic() - started, 1),
        )

    @contextmanager
    def _lock(self, rollout: Rollout) -> Iterator[None]:
        from bakery.rollout.locks import held

        with held(self.ws.locks / f"group-{rollout.group}.lock", rollout.group, rollout.id, rollout.who):
            yield


def _busy(group: str, rollout_id: str, since: str, where: str) -> RolloutRefused:
    return RolloutRefused(
        f"another rollout of {group} is running: {rollout_id}, started {since} by {where}",
        hint=f"wait for it (bakery status {group}); a second rollout of one group is never started",
    )


def _shown(release: Release | None) -> str:
    return release.describe() if release is not None else "nothing (the group was empty)"


def _gate_or_step(exc: BakeryError) -> str:
    return f"gate failed: {exc.message}" if isinstance(exc, GateFailed) else f"failed: {exc.message}"
