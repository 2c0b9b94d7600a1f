"""Before an unfinished rollout or rollback (interrupted, or its process killed) is taken up again:
the checks that ran when it started run again, on what the registry and the channel say now, and
an override given then (`--allow-unverified --reason`, `--allow-off-channel`) counts only when it is
given again. A refusal changes nothing: the journal stays as it was, to be taken up again (with the
override) or, for a rollout, undone (an unfinished rollback has no undo: `bakery rollout GROUP`
resumes it too).

What is taken up, and what is checked:
- a rollout resumed forward (`bakery rollout GROUP`): the trust gate on its image (`Resume.rollout`);
- a rollback resumed forward (`bakery rollback GROUP`, or `bakery rollout GROUP`): the trust gate on
  the image it goes back to, and, for a group following a channel, the rule that it was a head of
  that channel (`Resume.rollback`);
- an unfinished rollout undone (`bakery rollback GROUP`), or any journal whose rollback steps
  already started (either command): only the revocation of the image it restores (`Resume.back`).

An image whose catalog record is gone (pruned, deregistered) cannot be verified at all: each of
these refuses it (TrustError, exit 1) unless `--allow-unverified --reason` is given, on the record
(gate.check_unrecorded); one the registry revokes by name is refused as revoked.
"""

from __future__ import annotations

from typing import Literal

from bakery.config.models import Group
from bakery.groups.base import Rollout
from bakery.progress import Reporter
from bakery.rollout.engine import RecordOf
from bakery.rollout.following import Following
from bakery.rollout.record import shown
from bakery.steps import Journal
from bakery.trust.gate import TrustGate
from bakery.trust.heads import Heads


class Resume:
    def __init__(
        self, heads: Heads, gate: TrustGate, following: Following, reporter: Reporter, record_of: RecordOf
    ) -> None:
        self.heads = heads
        self.gate = gate
        self.following = following
        self.reporter = reporter
        self.record_of = record_of

    def check(
        self,
        name: str,
        group: Group,
        rollout: Rollout,
        journal: Journal,
        *,
        command: Literal["rollout", "rollback"],
        allow_unverified: bool,
        reason: str | None,
        allow_off_channel: bool = False,
        audit: bool = True,
    ) -> bool:
        """Run again the checks for what `bakery COMMAND NAME` takes up from `journal` (see the
        module's docstring); raises what they raise. Returns whether it undoes an unfinished rollout
        with its rollback steps (`bakery rollback` of a rollout), rather than resume it forward."""
        undo = command == "rollback" and rollout.kind == "rollout"
        if undo or journal.data.get("phase") == "rollback":
            self.back(name, group, rollout, journal, allow_unverified=allow_unverified, reason=reason, audit=audit)
        elif rollout.kind == "rollback":
            self.rollback(
                name,
                group,
                rollout,
                journal,
                allow_unverified=allow_unverified,
                reason=reason,
                allow_off_channel=allow_off_channel,
                audit=audit,
            )
        else:
            self.rollout(name, group, rollout, journal, allow_unverified, reason, audit=audit)
        return undo

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
        then = f"{rollout.kind} {rollout.id} of {name} is unfinished (stopped at {stopped}); {after}"
        if rollout.to_record is None:  # pruned or deregistered since: nothing to verify it by
            self.gate.check_unrecorded(
                name,
                group,
                shown(rollout.to),
                ref=rollout.to.image,
                operation="rollout",
                allow_unverified=allow_unverified,
                reason=reason,
                audit=audit,
                hint=then,
            )
            return
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

    def rollback(
        self,
        name: str,
        group: Group,
        rollout: Rollout,
        journal: Journal,
        *,
        allow_unverified: bool,
        reason: str | None,
        allow_off_channel: bool,
        audit: bool,
    ) -> None:
        """Before an interrupted rollback is resumed, as strict as when it started: the full trust
        gate on the image it goes back to (signatures, tests, revocation; TrustError), an
        `allow_unverified` override only when given again (its `reason` recorded again), and for a
        group following a channel, the rule that the image was a head of it unless
        `allow_off_channel` is given again (UsageError). Each refusal names the rollback, where it
        stopped, and the command that resumes it."""
        stopped = journal.data.get("current") or "its start"
        unfinished = (
            f"rollback {rollout.id} of {name} to {rollout.to.describe()} is unfinished (stopped at {stopped}) "
            "and stays so"
        )
        way_out = (  # a rollback has no undo, and a new rollout waits for it: see rollout.replace
            f"`bakery rollout {name} --image NAME@VERSION` replaces it with a rollout of an image that passes the "
            "gate (the rollback is closed as abandoned, on the record)"
        )
        off = group.channel is not None and self.following.rollback_off_channel(
            name,
            group,
            rollout.to_record,
            rollout.to.describe(),
            allowed=allow_off_channel,
            hint=f"{unfinished}; `bakery rollback {name} --allow-off-channel` resumes it anyway, off its "
            "channel (recorded in the audit log, as `rollout --image` is)",
        )
        # The gate is the last check that can refuse (its refusal recorded as one): then what allows it.
        if rollout.to_record is not None:
            self.gate.check(
                name,
                group,
                rollout.to_record,
                operation="rollback",
                allow_unverified=allow_unverified,
                reason=reason,
                audit=audit,
                hint=unfinished,
                way_out=way_out,
            )
        else:
            self.gate.check_unrecorded(
                name,
                group,
                shown(rollout.to),
                ref=rollout.to.image,
                allow_unverified=allow_unverified,
                reason=reason,
                audit=audit,
                hint=unfinished,
                way_out=way_out,
            )
        if off:
            self.following.rolled_back_off_channel(name, group, rollout.to_record, rollout.to.describe(), audit=audit)

    def back(
        self,
        name: str,
        group: Group,
        rollout: Rollout,
        journal: Journal,
        *,
        allow_unverified: bool,
        reason: str | None,
        audit: bool,
    ) -> None:
        """Before an unfinished rollout is undone, or a journal whose rollback steps already started
        is taken up: the group goes back to `rollout.previous`, what it ran before, which the
        instances not yet replaced still run. Whatever moves the group there is a recovery, and the
        only thing that stops it is that image's revocation.

        Why not the full gate: that image passed the gate when it was rolled out, and a refusal
        leaves the group half on a new image that may be failing its health gate, with no way
        forward while the rollout is unfinished. A signature, a tag or a test result that no longer
        verifies is said (a warning) and the group goes back; so is an image bakery did not bake
        (hand-made: no revocation can name it). No off-channel rule either: it is what the group
        ran, not a choice of image.

        An image bakery baked whose record is gone (pruned, deregistered) is refused unless
        `--allow-unverified --reason` (then recorded in the audit log): its revocation cannot be
        ruled out (the registry is read for one by its name, which refuses it as revoked; its
        ancestors cannot be known), and refusing costs an operator one flag and a reason, while
        `bakery rollout` still resumes the rollout. An image deregistered where the group runs
        cannot launch instances either: stopping before the undo beats one that fails half-way.

        Why the revocation still stops it: going back would put every instance on an image declared
        bad (by itself or an ancestor; or whose revocation cannot be read: fail closed), where
        resuming the rollout (while its rollback steps have not started) moves them off it. So it
        is refused (TrustError, exit 1), naming the revocation and both ways on: `bakery rollout`
        resumes the rollout onto its image; `bakery rollback --allow-unverified --reason` goes back
        anyway, an override said and recorded in the audit log (the only one a revoked image gets:
        the automatic rollback after a failed gate pauses instead, leaving this choice to a person).
        Once its rollback steps started, going on back is the only way on, so the hint says so."""
        if rollout.previous is None:
            return  # nothing ran before: going back brings nothing up
        record = self.record_of(group, rollout.previous)
        if record is None and rollout.previous.image is None:
            self.reporter.note(
                f"bakery did not bake {shown(rollout.previous)}, so it cannot verify it; going back to it, as "
                f"{name} ran it before {rollout.id}"
            )
            return
        stopped = journal.data.get("current") or "its start"
        back_to = record.ref if record is not None else shown(rollout.previous)
        if journal.data.get("phase") == "rollback":
            hint = (
                f"{rollout.kind} {rollout.id} of {name} stopped while going back to {back_to} (at {stopped}), "
                "and stays so: going on back is the only way on"
            )
        else:
            hint = (
                f"{rollout.kind} {rollout.id} of {name} to {rollout.to.describe()} is unfinished (stopped at "
                f"{stopped}) and stays so; `bakery rollout {name}` resumes it onto {rollout.to.describe()} instead"
            )
        if record is None:  # baked by bakery, but pruned or deregistered since: fail closed
            self.gate.check_unrecorded(
                name,
                group,
                shown(rollout.previous),
                ref=rollout.previous.image,
                operation="undo",
                allow_unverified=allow_unverified,
                reason=reason,
                audit=audit,
                hint=hint,
            )
            return
        self.gate.check_restore(
            name, group, record, allow_unverified=allow_unverified, reason=reason, audit=audit, hint=hint
        )
