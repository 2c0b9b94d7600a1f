"""The way out of a stuck group: `bakery rollout GROUP --image NAME@VERSION` replacing an unfinished
rollback whose image was revoked meanwhile.

Such a rollback can never be taken up (a revoked image never rolls out, and resuming it is
refused), it has no undo, and a new rollout is refused while it is unfinished. So `rollout --image`
may replace it, and only it: an unfinished rollback (its rollback steps not started) whose image is
revoked (its own revocation or an ancestor's, in effect now). The new image passes the full trust
gate (no `--allow-unverified`: the way out of a revoked image is onto one that verifies), the
user confirms (or `--yes`), and the group's driver says it can start a rollout over what the
rollback left (`GroupDriver.refuse_takeover`, which says what to do by hand where it cannot). Only
then is the rollback closed: an `abandon` event in the audit log (strict: no event, no change),
its history entry `failed` with the reason `abandoned: ...`, its journal marked so. The new
rollout is planned from the group as the driver reads it now, like any other: what its template
says (`previous`, what a failed gate rolls back to, is never the revoked image unless the group's
template already is: then the rollback pauses instead, see decide.py).
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
from bakery.rollout.record import History, shown
from bakery.steps import Journal
from bakery.trust.context import TrustContext
from bakery.trust.gate import TrustGate

BECAUSE = "replaces-because"  # Rollout.options: why it can never be taken up (its revocation)
REASON = "replaces-reason"  # Rollout.options: the user's --reason, if any


class Replacing:
    def __init__(self, gate: TrustGate, trust: TrustContext, history: History) -> None:
        self.gate = gate
        self.trust = trust
        self.history = history

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
        rollout that replaces it (Rollout.options), when it may. UsageError (exit 2) otherwise,
        naming what is unfinished and the commands that take it up."""
        if reason is not None:
            clean(reason, what="--reason")
        stopped = journal.data.get("current") or "its start"
        unfinished = f"{stuck.kind} {stuck.id} of {name} to {stuck.to.describe()} is unfinished (stopped at {stopped})"
        if stuck.kind == "rollout" or journal.data.get("phase") == "rollback":
            going_back = journal.data.get("phase") == "rollback"
            raise UsageError(
                unfinished + (", on its way back" if going_back else ""),
                hint=f"run `bakery rollout {name}` to resume it, or `bakery rollback {name}` to undo it"
                if not going_back
                else f"`bakery rollback {name}` goes on back; then `bakery rollout {name} --image {image}`",
            )
        revocation = (
            self.gate.revoked(group, stuck.to_record)
            if stuck.to_record is not None
            else self.gate.revoked_by_name(group, stuck.to.image)
            if stuck.to.image is not None
            else None
        )
        if revocation is None:
            raise UsageError(
                unfinished,
                hint=f"`bakery rollback {name}` resumes it (a rollback is resumed, never undone); `bakery rollout "
                f"{name} --image NAME@VERSION` replaces an unfinished rollback only once its image is revoked",
            )
        if allow_unverified:
            raise UsageError(
                f"{unfinished}, and {stuck.to.image} is {revocation.describe()}: a rollout replacing it takes an "
                "image that passes the trust gate, so --allow-unverified is not taken here",
                hint=f"bake or pick a version that verifies: `bakery rollout {name} --image NAME@VERSION`",
            )
        return {REPLACES: stuck.id, BECAUSE: f"{stuck.to.image} is {revocation.describe()}", REASON: reason}

    def at_rest(self, driver: GroupDriver, rollout: Rollout, state: GroupState) -> GroupState:
        """Before a rollout replacing an unfinished rollback moves anything: nothing but that
        rollback may be moving the group (RolloutRefused naming what is), and the driver must be
        able to start a rollout over what it left (RolloutRefused saying what to do by hand).
        Returns `state` as the new rollout sees it: the abandoned rollback no longer moving it."""
        replaced = rollout.options[REPLACES]
        if state.active is not None and state.active.id != replaced:
            planning.refuse_active(rollout.group, state)
        driver.refuse_takeover(rollout.group, rollout.spec, rollout.target_spec, state, replaced)
        return dataclasses.replace(state, active=None)

    def abandon(self, driver: GroupDriver, stuck: Rollout, journal: Journal, rollout: Rollout) -> None:
        """Close `stuck` (the unfinished rollback `rollout` replaces): the audit event first (strict:
        an audit log that cannot be written stops it here, nothing changed), then its history entry
        (`failed`, `abandoned: ...`) and its journal."""
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
    """Raise when `journal` (unfinished) is neither `rollout`'s nor the rollback it replaces: it
    started after the plan was made (another command of this machine, between plan and lock)."""
    if journal.data.get("rollout", {}).get("id") != rollout.options.get(REPLACES):
        raise BakeryError(
            f"{name} has an unfinished rollout or rollback that started after this plan was made",
            hint=f"`bakery status {name}` shows it; run the command again",
        )
