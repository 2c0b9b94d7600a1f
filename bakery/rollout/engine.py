"""Running one rollout (or rollback) on the step engine: its forward steps, each guarded against
a revocation and followed by a look at the group; after a failure, the outcome `decide` picks;
the group's rollback steps. The service holds the group's lock around it."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence

from bakery import steps
from bakery.config.models import Group
from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError, Interrupted, RolloutRefused
from bakery.groups.base import GroupDriver, Release, Rollout
from bakery.progress import GroupView, Reporter
from bakery.rollout.decide import Failure, Outcome, classify, decide
from bakery.rollout.record import History, RolloutResult, details, result_of, shown
from bakery.steps import Journal, Step
from bakery.trust.gate import TrustGate

RecordOf = Callable[[Group, Release], ImageRecord | None]


class Engine:
    """One rollout on its journal. Raises BakeryError (exit 1) when it failed, paused or rolled back."""

    def __init__(
        self,
        driver: GroupDriver,
        rollout: Rollout,
        journal: Journal,
        *,
        reporter: Reporter,
        gate: TrustGate,
        history: History,
        record_of: RecordOf,
    ) -> None:
        self.driver = driver
        self.rollout = rollout
        self.journal = journal
        self.reporter = reporter
        self.gate = gate
        self.history = history
        self.record_of = record_of
        self._recorded = False  # the RUNNING record is written

    def forward(self, started: float, *, resumed_at: str | None) -> RolloutResult:
        """Run (or resume) the rollout's steps; a journal stopped in its rollback resumes that."""
        driver, rollout, journal = self.driver, self.rollout, self.journal
        if resumed_at is not None or journal.done:
            self._running()
        if journal.data.get("phase") == "rollback":
            return self.roll_back(journal.data.get("error") or "resumed", started)
        try:
            forward = self._watched(driver.rollout_steps(rollout), guard=True)
            steps.execute(forward, journal, self.reporter)
        except (Interrupted, KeyboardInterrupt):  # the signal guard turns the latter into Interrupted
            self.history.record(driver, rollout, steps.INTERRUPTED, reason="interrupted")
            raise
        except BakeryError as exc:
            return self._failed(exc, started)
        journal.mark(status=steps.SUCCEEDED)
        self.history.record(driver, rollout, steps.SUCCEEDED)
        self.history.prune(driver, rollout)
        return result_of(rollout, "succeeded", started, resumed_at=resumed_at)

    def roll_back(self, reason: str, started: float, *, failed: bool = True) -> RolloutResult:
        """Run the group's rollback steps. With `failed` (the rollout failed), raises once they
        succeeded; else returns the rolled-back result."""
        driver, rollout, journal = self.driver, self.rollout, self.journal
        journal.mark(error=reason)
        try:
            sequence = self._watched(driver.rollback_steps(rollout))
            steps.execute(sequence, journal, self.reporter, phase="rollback")
        except (Interrupted, KeyboardInterrupt):
            self.history.record(driver, rollout, steps.INTERRUPTED, reason=f"{reason}; its rollback was interrupted")
            raise
        except BakeryError as exc:
            journal.mark(status=steps.ROLLBACK_FAILED)
            self.history.record(
                driver, rollout, steps.ROLLBACK_FAILED, reason=f"{reason}; rollback failed: {exc.message}"
            )
            raise BakeryError(
                f"{rollout.id}: {reason}; the rollback to {shown(rollout.previous)} failed too: {exc.message}",
                hint=f"see `bakery status {rollout.group}`; `bakery rollback {rollout.group}` tries again",
            ) from None
        journal.mark(status=steps.ROLLED_BACK)
        self.history.record(driver, rollout, steps.ROLLED_BACK, reason=reason)
        if failed:
            raise BakeryError(
                f"{rollout.kind} {rollout.id} of {rollout.group} to {shown(rollout.to)} failed and was rolled back "
                f"to {shown(rollout.previous)}: {reason}",
                details=details(rollout, steps.ROLLED_BACK, reason),
            )
        return result_of(rollout, steps.ROLLED_BACK, started, reason=reason)

    def _failed(self, exc: BakeryError, started: float) -> RolloutResult:
        """A forward step failed: carry out what `decide` says."""
        rollout, journal = self.rollout, self.journal
        reason = exc.message
        failure = classify(exc)

        def outcome(*, previous_barred: bool) -> Outcome:
            # A refusal is the driver's word that its step changed nothing: only steps done count then.
            refused_cleanly = isinstance(exc, RolloutRefused)
            moved = bool(journal.done) or (bool(journal.values) and not refused_cleanly)
            kind, rollback = rollout.kind, rollout.spec.rollback
            return decide(failure, moved=moved, rollback=rollback, kind=kind, previous_barred=previous_barred)

        chosen = outcome(previous_barred=False)
        # The previous image's revocation only matters to a rollback onto it: looked up then only.
        if chosen is Outcome.ROLL_BACK and (barred := self._barred_previous()) is not None:
            chosen = outcome(previous_barred=True)
            previous, why = barred
            if chosen is Outcome.PAUSE_BARRED:
                what = "a revoked image" if why.startswith("is ") else "an image nothing can verify"
                raise self._paused(
                    f"{reason}; not rolled back onto {what}",
                    f"{rollout.kind} {rollout.id} of {rollout.group} failed ({reason}) and is paused: the image to "
                    f"roll back to, {previous}, {why}",
                    hint=f"`bakery rollout {rollout.group}` resumes it onto {shown(rollout.to)}; `bakery rollout "
                    f"{rollout.group} --image NAME@VERSION` replaces it with a rollout of an image that passes the "
                    f"gate (it is closed as abandoned, on the record); `bakery rollback {rollout.group} "
                    f'--allow-unverified --reason "WHY"` goes back onto {previous} anyway (recorded in the audit log)',
                ) from None
        if chosen is Outcome.STOP:
            if self._recorded:
                self.history.record(self.driver, rollout, steps.FAILED, reason=reason)
            else:  # refused before anything moved: no trace, nothing unfinished
                journal.discard()
            raise exc
        if chosen is Outcome.PAUSE:
            raise self._paused(
                reason,
                f"{rollout.kind} {rollout.id} of {rollout.group} is paused at "
                f"{journal.data.get('current') or 'its start'}: {reason}",
                hint=(
                    f"`bakery rollout {rollout.group}` resumes it, `bakery rollback {rollout.group}` undoes it"
                    if rollout.kind == "rollout"
                    else f"`bakery rollback {rollout.group}` resumes it (a rollback is resumed, never undone); once "
                    f"its image is revoked or gone, `bakery rollout {rollout.group} --image NAME@VERSION` replaces it"
                )
                + f"; `bakery status {rollout.group}` shows where the group stands",
            ) from None
        if chosen is Outcome.FAIL:
            self.history.record(self.driver, rollout, steps.FAILED, reason=reason)
            exc.details = details(rollout, steps.FAILED, reason)
            raise exc
        what = "gate failed" if failure is Failure.GATE else "failed"
        self.reporter.note(f"{what}: {reason}; rolling back to {shown(rollout.previous)}")
        return self.roll_back(reason, started)

    def _barred_previous(self) -> tuple[str, str] | None:
        """(the image a rollback would restore, why it is barred) when it is revoked, or baked by
        bakery but no longer found to verify (gate.barred): never rolled back onto unchecked."""
        previous = self.rollout.previous
        if previous is None:
            return None
        why = self.gate.barred(self.rollout.spec, previous.image, self.record_of(self.rollout.spec, previous))
        return (previous.image or shown(previous), why) if why is not None else None

    def _paused(self, why: str, message: str, *, hint: str) -> BakeryError:
        """Leave the rollout paused (its journal interrupted, its history saying `why`): resumable
        with `bakery rollout`, undone with `bakery rollback`. Returns the error to raise."""
        self.journal.mark(status=steps.INTERRUPTED, error=why)
        self.history.record(self.driver, self.rollout, steps.INTERRUPTED, reason=why)
        return BakeryError(message, hint=hint, details=details(self.rollout, steps.INTERRUPTED, why))

    def _running(self) -> None:
        """Record the rollout as running where the group keeps its history, once: when its first
        step is done (or at once, for a rollout resumed). A rollout refused by its first step's
        checks leaves no record anywhere."""
        if not self._recorded:
            self.history.record(self.driver, self.rollout, steps.RUNNING)
            self._recorded = True

    def _watched(self, sequence: Sequence[Step], *, guard: bool = False) -> list[Step]:
        """`sequence`, each step followed by a look at the group for the live view; with `guard`,
        each preceded by a look at the registry: an image revoked meanwhile goes no further."""
        rollout = self.rollout

        def after(step: Step) -> Step:
            def run(journal: Journal) -> None:
                if guard and rollout.to_record is not None:
                    self.gate.refuse_revoked(rollout.group, rollout.spec, rollout.to_record, during=step.name)
                step.run(journal)
                self._running()
                self._show(step.name)

            return dataclasses.replace(step, run=run)

        return [after(step) for step in sequence]

    def _show(self, step: str) -> None:
        rollout = self.rollout
        try:
            state = self.driver.read(rollout.group, rollout.spec, rollout.target_spec)
        except BakeryError:
            return  # the view waits for the next look; the steps themselves report what fails
        states = Counter(f"{i.image or i.image_id} {i.state}" for i in state.instances)
        health: Counter[str] = Counter(i.health for i in state.instances)
        on_new = sum(i.image_id == rollout.to.image_id for i in state.instances)
        percent = round(100 * on_new / len(state.instances)) if state.instances else None
        waves = rollout.plan.waves
        done = sum(w.total <= on_new for w in waves)
        self.reporter.progress(GroupView(rollout.group, step, done, len(waves), dict(states), dict(health), percent))
