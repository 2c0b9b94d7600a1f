"""`bakery rollout` and `bakery rollback`: pick the image, plan, hold the group, run the driver's
steps on the step engine, roll back on a failed gate, and record what happened where the group lives.

A rollout's journal (.bakery/rollouts/GROUP.json) is the engine's saved state: while it is
unfinished (interrupted, or its process killed), `bakery rollout GROUP` resumes it and
`bakery rollback GROUP` undoes it. The group's lock (.bakery/locks/group-GROUP.lock) keeps a second
rollout of the same group from starting on this machine; a cloud group's engine (an active refresh,
a MIG on the move) refuses one from any other machine.

The rooms: planning.py picks the image and plans; rollback.py plans a rollback after a completed
rollout; resume.py checks again what an unfinished rollout or rollback is taken up onto;
replace.py lets `rollout --image` replace an unfinished rollback (or rollout) whose way on is
barred (its image, or the one it would go back to, revoked or gone); engine.py
runs the steps and, after a failure, does what decide.py picks; record.py writes the result, the
journal's form and the history; behind.py finds the groups behind their channel (`--behind`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bakery import steps, traces
from bakery.config.kinds import TargetSpec
from bakery.config.load import Project
from bakery.config.models import Group
from bakery.core import catalog
from bakery.core.catalog import ImageRecord
from bakery.core.identity import who
from bakery.core.text import clean
from bakery.errors import BakeryError, UsageError
from bakery.groups.base import GroupDriver, GroupState, Release, Rollout, get_driver
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory, Provider, get_provider
from bakery.rollout import planning
from bakery.rollout.behind import Behind, behind
from bakery.rollout.engine import Engine
from bakery.rollout.following import Following
from bakery.rollout.record import History, RolloutResult, saved
from bakery.rollout.replace import Replacing, refuse_other
from bakery.rollout.resume import Resume
from bakery.rollout.rollback import Rollbacks
from bakery.runner import signal_guard
from bakery.steps import Journal
from bakery.trust.context import TrustContext
from bakery.trust.gate import TrustGate
from bakery.trust.heads import Heads
from bakery.workspace import Workspace

UNFINISHED = (steps.RUNNING, steps.INTERRUPTED)

__all__ = ["UNFINISHED", "Behind", "RolloutResult", "Rollouts"]


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
        self.history = History(reporter, self.trust, self.gate)
        self.heads = Heads(self.gate.verifier)
        self.following = Following(self.heads, self.trust, self.gate, reporter)
        self.resume = Resume(self.heads, self.gate, self.following, reporter, self._record_of)
        self.rollbacks = Rollbacks(self.gate, self.following, self._record_of)
        self.replacing = Replacing(self.gate, self.trust, self.history, self._record_of)

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

    def journal_path(self, name: str) -> Path:
        return self.ws.root / "rollouts" / f"{name}.json"

    def journal(self, name: str) -> Journal | None:
        return Journal.load(self.journal_path(name))

    def unfinished(self, name: str) -> Journal | None:
        journal = self.journal(name)
        return journal if journal is not None and journal.status in UNFINISHED else None

    def resumes(self, rollout: Rollout) -> bool:
        """Whether `run(rollout)` takes up an unfinished journal (rather than start a new one)."""
        journal = self.unfinished(rollout.group)
        return journal is not None and journal.data.get("rollout", {}).get("id") == rollout.id

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
        reason: str | None = None,
        dry_run: bool = False,
    ) -> Rollout:
        """The rollout `bakery rollout NAME` would run (a resumed one when one is unfinished): its
        image verified by the trust gate (TrustError when refused). An override (`allow_unverified`)
        needs a `reason`, which the audit log keeps (UsageError without one)."""
        _overriding(allow_unverified, reason)
        group = self.group(name)
        self._not_held(name)
        journal = self.unfinished(name)
        options: dict[str, Any] = {}
        if journal is not None:
            rollout = self._from_journal(name, group, journal)
            if image is not None and image != rollout.to.image:  # replacing a stuck one (replace.py)
                options = self.replacing.check(
                    name, group, rollout, journal, image, allow_unverified=allow_unverified, reason=reason
                )
            else:
                self.resume.check(
                    name,
                    group,
                    rollout,
                    journal,
                    command="rollout",
                    allow_unverified=allow_unverified,
                    reason=reason,
                    audit=not dry_run,
                )
                return rollout
        spec = self.target_spec(group)
        driver = self.driver(group)
        state = driver.read(name, group, spec)
        if not options:
            planning.refuse_active(name, state)
        wanted = self.following.head(name, group) if image is None and group.channel is not None else image
        record = planning.pick(self.gate, group, self.provider(group).images(group.target, group.image), wanted)
        rollout = planning.new(
            name, group, spec, "rollout", driver.release_of(record, spec), record, state, strategy_type
        )
        if options:  # the driver must be able to take the group over from the one it replaces
            rollout = dataclasses.replace(rollout, options=options)
            self.replacing.at_rest(driver, rollout, state)
        # Every check that can refuse ran (the gate's refusal is recorded as one): now what allows it.
        audit = not dry_run
        self.gate.check(
            name, group, record, operation="rollout", allow_unverified=allow_unverified, reason=reason, audit=audit
        )
        if image is not None and group.channel is not None:
            self.following.off_channel(name, group, record, audit=audit)
        return rollout

    def behind(self) -> Behind:
        """The groups that follow a channel and do not run its head (see behind.py)."""

        def unfinished(name: str, group: Group) -> Rollout | None:
            journal = self.unfinished(name)
            return self._from_journal(name, group, journal) if journal is not None else None

        return behind(self.project.config.groups, self.heads, unfinished, lambda name: self.read(name).intended)

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
        with self._lock(rollout), signal_guard():
            journal = self.unfinished(rollout.group)
            resumed_at = None
            driver = self.driver(rollout.spec)
            if journal is not None and journal.data.get("rollout", {}).get("id") == rollout.id:
                resumed_at = journal.data.get("current") or "the start"
                if confirm is not None and not confirm(rollout):
                    raise BakeryError(f"not confirmed; {rollout.id} stays unfinished at {resumed_at}")
                self.reporter.note(f"resuming {rollout.kind} {rollout.id} of {rollout.group} at {resumed_at}")
            else:
                if journal is not None:
                    refuse_other(rollout.group, journal, rollout)
                if confirm is not None and not confirm(rollout):
                    raise BakeryError("not confirmed; the group was not touched")
                # another machine may have moved it meanwhile
                state = driver.read(rollout.group, rollout.spec, rollout.target_spec)
                if journal is not None:  # the one it replaces is closed only now: nothing refuses after
                    state = self.replacing.at_rest(driver, rollout, state)
                planning.unchanged_since_plan(state, rollout)
                if journal is not None:
                    self.replacing.abandon(
                        driver, self._from_journal(rollout.group, rollout.spec, journal), journal, rollout
                    )
                journal = Journal.create(
                    self.journal_path(rollout.group),
                    rollout=saved(rollout),
                    channel_head=self.following.head_of(rollout.spec),
                )
            started = time.monotonic()
            return self._engine(driver, rollout, journal).forward(started, resumed_at=resumed_at)

    # --- rollback ------------------------------------------------------------------------------

    def prepare_rollback(
        self, name: str, *, reason: str | None = None, allow_unverified: bool = False, allow_off_channel: bool = False
    ) -> tuple[Rollout, bool]:
        """(the rollback to run, whether it undoes an unfinished rollout with its rollback steps).
        An unfinished rollback (interrupted, killed) is resumed, each check that ran when it started
        run again and an override counting only when given again (resume.py); else it is a new
        one (rollback.py). Raises what their checks raise (TrustError, UsageError)."""
        if reason is not None:
            clean(reason, what="--reason")
        _overriding(allow_unverified, reason)
        group = self.group(name)
        self._not_held(name)
        journal = self.unfinished(name)
        if journal is not None:
            rollout = self._from_journal(name, group, journal)
            undo = self.resume.check(
                name,
                group,
                rollout,
                journal,
                command="rollback",
                allow_unverified=allow_unverified,
                reason=reason,
                allow_off_channel=allow_off_channel,
            )
            return rollout, undo
        rollout = self.rollbacks.new(
            name,
            group,
            self.target_spec(group),
            self.driver(group),
            reason=reason,
            allow_unverified=allow_unverified,
            allow_off_channel=allow_off_channel,
        )
        return rollout, False

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
            engine = self._engine(self.driver(rollout.spec), rollout, journal)
            return engine.roll_back(reason, time.monotonic(), failed=False)

    # --- inner workings ------------------------------------------------------------------------

    def _engine(self, driver: GroupDriver, rollout: Rollout, journal: Journal) -> Engine:
        return Engine(
            driver,
            rollout,
            journal,
            reporter=self.reporter,
            gate=self.gate,
            history=self.history,
            record_of=self._record_of,
        )

    def _record_of(self, group: Group, release: Release) -> ImageRecord | None:
        if release.image is None:
            return None
        name, version = catalog.parse_ref(release.image)
        return next((r for r in self.provider(group).images(group.target, name) if r.version == version), None)

    def _from_journal(self, name: str, group: Group, journal: Journal) -> Rollout:
        data = journal.data.get("rollout") or {}
        rollout = planning.from_saved(name, group, self.target_spec(group), data, where=str(journal.path))
        return dataclasses.replace(rollout, to_record=self._record_of(group, rollout.to))

    def _not_held(self, name: str) -> None:
        from bakery.rollout.locks import refuse_held

        refuse_held(self.ws.locks / f"group-{name}.lock", name)

    @contextmanager
    def _lock(self, rollout: Rollout) -> Iterator[None]:
        """The group's lock, inside the rollout's span (when traced): all a rollout does is in both."""
        from bakery.rollout.locks import held

        record = rollout.to_record
        with (
            traces.job(
                rollout.kind,
                group=rollout.group,
                rollout_id=rollout.id,
                target=rollout.target,
                image=record.name if record else rollout.to.image,
                version=record.version if record else None,
                inputs_digest=record.inputs_digest if record else None,
            ),
            held(self.ws.locks / f"group-{rollout.group}.lock", rollout.group, rollout.id, rollout.who),
        ):
            yield


def _overriding(allow_unverified: bool, reason: str | None) -> None:
    """UsageError (exit 2) for an override without a reason: every override is on the record."""
    if not allow_unverified:
        return
    if not (reason or "").strip():
        raise UsageError(
            "--allow-unverified needs --reason TEXT: the override and its reason go into the audit log",
            hint='e.g. --allow-unverified --reason "hotfix for INC-123, signed build pending"',
        )
    clean(str(reason), what="--reason")
