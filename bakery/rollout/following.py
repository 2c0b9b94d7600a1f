"""What following a channel means for a group's rollouts: the head a rollout takes (refused while
the channel has none), and the rollouts and rollbacks that take a group off its channel: said, and
recorded as `rollout-off-channel` events (`rollout --image`; `rollback --allow-off-channel`,
without which a rollback onto an image that was never the channel's head is refused). The check
and the record are apart: every check that can refuse runs before anything allowing is recorded."""

from __future__ import annotations

from bakery.config.models import Group
from bakery.core.catalog import ImageRecord
from bakery.errors import UsageError
from bakery.progress import Reporter
from bakery.trust.context import TrustContext
from bakery.trust.gate import TrustGate
from bakery.trust.heads import Heads


class Following:
    def __init__(self, heads: Heads, trust: TrustContext, gate: TrustGate, reporter: Reporter) -> None:
        self.heads = heads
        self.trust = trust
        self.gate = gate
        self.reporter = reporter

    def head(self, name: str, group: Group) -> str:
        """The head of the channel `group` follows (revoked heads skipped). UsageError (exit 2)
        naming the missing promotion when the channel has none."""
        channel = str(group.channel)
        head = self.heads.head(channel, group.target, group.image)
        if head.fell_back:
            self.reporter.note(f"channel {channel} fell back past {'; '.join(head.skipped)}")
        if head.ref is None:
            why = (
                f" (every head it had is revoked or no longer verifies: {'; '.join(head.skipped)})"
                if head.skipped
                else ""
            )
            raise UsageError(
                f"{name} follows channel {channel}, which has no head for {group.image} on {group.target}{why}: "
                f"nothing to roll out",
                hint=f"promote one first: bakery promote {group.image}@VERSION --to {channel} --target {group.target}"
                "; or name one with --image (recorded as a rollout off its channel)",
            )
        return head.ref

    def head_of(self, group: Group) -> str | None:
        """The head of the channel `group` follows (None: it follows none, or it has no head)."""
        if group.channel is None:
            return None
        return self.heads.head(group.channel, group.target, group.image).ref

    def off_channel(
        self, name: str, group: Group, record: ImageRecord, *, audit: bool, operation: str = "rollout"
    ) -> None:
        head = self.heads.head(str(group.channel), group.target, group.image)
        if head.ref == record.ref:
            return
        how = "--image" if operation == "rollout" else "rollback --allow-off-channel"
        self.reporter.note(
            f"{name} follows channel {group.channel} (head: {head.ref or 'none'}); {how} moves it to "
            f"{record.ref} off its channel, on the record"
        )
        if audit:
            details = {"image": record.ref, "channel": group.channel, "head": head.ref}
            self.trust.record(
                "rollout-off-channel",
                f"group {name}",
                "allowed",
                policy=self.trust.policy(required=self.gate.required(group)),
                details=details if operation == "rollout" else {**details, "operation": operation},
                strict=True,
            )

    def rollback_off_channel(
        self,
        name: str,
        group: Group,
        record: ImageRecord | None,
        before: str,
        *,
        allowed: bool,
        hint: str | None = None,
    ) -> bool:
        """Refuse (UsageError) a rollback of `name` onto an image that was never a head of the
        channel it follows, unless `allowed`. Returns whether the rollback goes off its channel:
        then, once every other check passed, `rolled_back_off_channel` says and records it.
        `hint` (how to proceed) replaces the refusal's own, which suits a new rollback."""
        channel = str(group.channel)
        history = self.heads.channels.read(channel, group.target, group.image)
        if record is not None and record.name == group.image and history.was_head(record.version):
            return False
        if not allowed:
            raise UsageError(
                f"refusing to roll {name} back onto {record.ref if record else before}: {name} follows channel "
                f"{channel}, and that image was never a head of {channel} on {group.target}",
                hint=hint
                or f"`bakery rollout {name}` rolls the head of {channel}; --allow-off-channel rolls it back "
                "anyway, off its channel (recorded in the audit log, as `rollout --image` is)",
            )
        return True

    def rolled_back_off_channel(
        self, name: str, group: Group, record: ImageRecord | None, before: str, *, audit: bool = True
    ) -> None:
        """Say, and record (rollout-off-channel) with `audit`, a rollback of `name` off the channel
        it follows, allowed by `rollback_off_channel`."""
        if record is None:
            self.reporter.note(
                f"{name} follows channel {group.channel}; rollback --allow-off-channel moves it to {before}"
            )
            return
        self.off_channel(name, group, record, audit=audit, operation="rollback")
