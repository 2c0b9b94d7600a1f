"""The way out of a stuck group: `bakery rollout GROUP --image NAME@VERSION` replacing an unfinished
rollback, or rollout, whose way on is barred: a rollback whose image is revoked (its own
revocation or an ancestor's, in effect now) or gone (baked by bakery, but its record can no longer
be found: nothing can verify it); a rollout whose image to go back to is (see engine.py: a rollout
whose gate fails then pauses instead of rolling back onto it).

Such a rollback can never be taken up without deploying what is barred (resuming it is refused
unless overridden), it has no undo, and a new rollout is refused while it is unfinished; such a
rollout can be resumed onto its image (which may be what failed its gate), but undone only onto
the barred image. So `rollout --image` may replace them, and only them (not one whose rollback
steps started: going on back is its only way on). The new image passes the full trust gate (no
`--allow-unverified`: the way out of a barred image is onto one that verifies), the user confirms
(or `--yes`), and the group's driver says it can start a rollout over what the stuck one left
(`GroupDriver.refuse_takeover`, which says what to do by hand where it cannot). Only then is the
stuck one closed: an `abandon` event in the audit log (strict: no event, no change), its history
entry `failed` with the reason `abandoned: ...`, its journal marked so. The new rollout is planned
from the group as the driver reads it now, like any other: `previous`, what a failed gate rolls
back to, is what the group's template runs (it must be: the drivers' rollback restores that, and
the plan is checked against it before it starts). When that is the barred image, a failed gate
pauses the new rollout instead (see decide.py), and it is replaced the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bakery import steps
from bakery.config.models import Group
from bakery.core.identity import who
from bakery.core.text import clean
from bakery.errors import BakeryError, UsageError
from bakery.groups.base import REPLACES, GroupDriver, GroupState, Rollout
from bakery.rollout import planning
from bakery.rollout.engine import RecordOf
from bakery.rollout.record import History, shown
from bakery.steps import Journal
from bakery.trust.context import TrustContext
from bakery.trust.gate import TrustGate

BECAUSE = "replaces-because"  # Rollout.options: why it can never be taken up (its revocation)
KIND = "replaces-kind"  # Rollout.options: what it replaces, "rollout" or "rollback"
REASON = "replaces-reason"  # Rollout.options: the user's --reason, if any


class Replacing:
    def __init__(self, gate: TrustGate, trust: TrustContext, history: History, record_of: RecordOf) -> None:
        self.gate = gate
        self.trust = trust
        self.history = history
        self._record_of = record_of

    def check(
        self,
        name: str,
        group: Group,
        stuck: Rollout,
        journal: Journal,
        image: str,
        *,
        allow_unverified: bool,
        reason: str | None,
    ) -> dict[str, Any]:
        """Before `rollout --image IMAGE` of `name` while `stuck` is unfinished: the options of the
        rollout that replaces it (Rollout.options), when it may (see the module's docstring).
        UsageError (exit 2) otherwise, naming what is unfinished and the commands that take it up."""
        if reason is not None:
            clean(reason, what="--reason")
        stopped = journal.data.get("current") or "its start"
        unfinished = f"{stuck.kind} {stuck.id} of {name} to {stuck.to.describe()} is unfinished (stopped at {stopped})"
        going_back = journal.data.get("phase") == "rollback"  # its rollback steps restore `previous`
        held = stuck.to if stuck.kind == "rollback" and not going_back else stuck.previous
        why = None
        if held is not None:  # nothing ran before: going back brings nothing up, barred by nothing
            record = stuck.to_record if held is stuck.to else self._record_of(group, held)
            why = self.gate.barred(group, held.image, record)
        if going_back:  # the only way on, even onto a barred image: a person's override then
            raise UsageError(
                unfinished + ", on its way back",
                hint=(
                    f"`bakery rollback {name}` goes on back"
                    if why is None or held is None
                    else f'`bakery rollback {name} --allow-unverified --reason "WHY"` goes on back onto {held.image}, '
                    f"which {why} (recorded in the audit log)"
                )
                + f"; then `bakery rollout {name} --image {image}`",
            )
        if why is None or held is None:
            raise UsageError(
                unfinished,
                hint=f"run `bakery rollout {name}` to resume it, or `bakery rollback {name}` to undo it"
                if stuck.kind == "rollout"
                else f"`bakery rollback {name}` resumes it (a rollback is resumed, never undone; with "
                '`--allow-unverified --reason "WHY"` if its image no longer verifies); `bakery rollout '
                f"{name} --image NAME@VERSION` replaces an unfinished rollback only once its image is revoked or gone",
            )
        because = (
            f"{held.image} {why}" if stuck.kind == "rollback" else f"the image it would go back to, {held.image}, {why}"
        )
        if allow_unverified:
            raise UsageError(
                f"{unfinished}, and {because}: a rollout replacing it takes an image that passes the trust gate, "
                "so --allow-unverified is not taken here",
                hint=f"bake or pick a version that verifies: `bakery rollout {name} --image NAME@VERSION`",
            )
        return {REPLACES: stuck.id, BECAUSE: because, REASON: reason, KIND: stuck.kind}

    def at_rest(self, driver: GroupDriver, rollout: Rollout, state: GroupState) -> GroupState:
        """Before a rollout replacing an unfinished rollback (or rollout) moves anything, and before
        its image is checked and recorded: nothing but the one it replaces may be moving the group
        (RolloutRefused naming what is), and the driver must be able to start a rollout over what
        it left (RolloutRefused saying what to do by hand). Returns `state` as the new rollout sees
        it: the abandoned one no longer moving it."""
        replaced = rollout.options[REPLACES]
        if state.active is not None and state.active.id != replaced:
            planning.refuse_active(rollout.group, state)
        driver.refuse_takeover(rollout.group, rollout.spec, rollout.target_spec, state, replaced)
        return dataclasses.replace(state, active=None)

    def abandon(self, driver: GroupDriver, stuck: Rollout, journal: Journal, rollout: Rollout) -> None:
        """Close `stuck` (the unfinished rollback or rollout `rollout` replaces): the audit event
        first (strict: an audit log that cannot be written stops it here, nothing changed), then its
        history entry (`failed`, `abandoned: ...`) and its journal."""
        because, given = str(rollout.options.get(BECAUSE) or ""), rollout.options.get(REASON)
        reason = f"abandoned: {because}; replaced by rollout {rollout.id} to {shown(rollout.to)} by {who()}" + (
            f": {given}" if given else ""
        )
        self.trust.record(
            "abandon",
            f"group {stuck.group}",
            "allowed",
            policy=self.trust.policy(required=self.gate.required(stuck.spec)),
            details={
                "rollout": stuck.id,
                "operation": stuck.kind,
                "to": stuck.to.image or stuck.to.image_id,
                "stopped_at": journal.data.get("current"),
                "why": because,
                "replaced_by": rollout.id,
                "image": rollout.to.image,
                "reason": given or "",
            },
            strict=True,
        )
        self.history.record(driver, stuck, steps.FAILED, reason=reason)
        journal.mark(status=steps.FAILED, error=reason)


def refuse_other(name: str, journal: Journal, rollout: Rollout) -> None:
    """Raise when `journal` (unfinished) is neither `rollout`'s nor the one it replaces: it
    started after the plan was made (another command of this machine, between plan and lock)."""
    if journal.data.get("rollout", {}).get("id") != rollout.options.get(REPLACES):
        raise BakeryError(
            f"{name} has an unfinished rollout or rollback that started after this plan was made",
            hint=f"`bakery status {name}` shows it; run the command again",
        )
