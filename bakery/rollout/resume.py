"""Before an unfinished rollout or rollback (interrupted, or its process killed) is taken up again:
the checks that ran when it started run again, on what the registry and the channel say now."""

from __future__ import annotations

from bakery.config.models import Group
from bakery.groups.base import Rollout
from bakery.progress import Reporter
from bakery.steps import Journal
from bakery.trust.gate import TrustGate
from bakery.trust.heads import Heads


class Resume:
    def __init__(self, heads: Heads, gate: TrustGate, reporter: Reporter) -> None:
        self.heads = heads
        self.gate = gate
        self.reporter = reporter

    def rollout(
        self,
        name: str,
        group: Group,
        rollout: Rollout,
        journal: Journal,
        allow_unverified: bool,
        reason: str | None,
        *,
        audit: bool,
    ) -> None:
        """Before an interrupted rollout is resumed: say so when the head of the channel the group
        follows moved since it started (a promotion, a rollback, a fall-back), and run the trust
        gate on its image again: one revoked, or no longer verifying, since is refused (TrustError),
        pointing at `bakery rollback` (undo it) and `bakery rollout` (then roll the head)."""
        stopped = journal.data.get("current") or "its start"
        after = f"`bakery rollback {name}` undoes {rollout.id}"
        if group.channel is not None:
            head = self.heads.head(group.channel, group.target, group.image)
            was = journal.data.get("channel_head", rollout.to.image)
            after += f"; then `bakery rollout {name}` rolls the head of {group.channel}"
            if head.ref != was:
                moved = f" (it fell back past {'; '.join(head.moved_past)})" if head.moved_past else ""
                self.reporter.note(
                    f"channel {group.channel} moved since {rollout.id} of {name} started: its head is "
                    f"{head.ref or 'none'}{moved}, was {was or 'none'}; resuming rolls {rollout.to.describe()} "
                    f"still ({after})"
                )
        if rollout.to_record is None:
            return
        then = f"{rollout.kind} {rollout.id} of {name} is unfinished (stopped at {stopped}); {after}"
        self.gate.refuse_revoked(name, group, rollout.to_record, hint=then)
        self.gate.check(
            name,
            group,
            rollout.to_record,
            operation="rollout",
            allow_unverified=allow_unverified,
            reason=reason,
            audit=audit,
            hint=then,
        )

    def rollback(self, name: str, group: Group, rollout: Rollout, journal: Journal) -> bool:
        """Before `bakery rollback` takes up an unfinished rollout or rollback: whether it undoes
        an unfinished rollout (with its rollback steps), rather than resume a rollback."""
        undo = rollout.kind == "rollout"
        if not undo and rollout.to_record is not None and journal.data.get("phase") != "rollback":
            self.gate.refuse_revoked(name, group, rollout.to_record)  # a rollback resumed onto a revoked image
        return undo
