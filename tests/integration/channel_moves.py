"""Channel moves in a test world, recorded as `bakery promote` records them (Promoter.promote):
the move's audit event written ahead (result "intended", via `Channels.append`'s `before_write`),
the move, then its "ok" event. Worlds whose images carry no signed provenance cannot pass the
promotion gates, so this writes the move past the gates, never past the audit log."""

from __future__ import annotations

from bakery.trust.audit_facts import INTENDED
from bakery.trust.channel_model import Channel, Move
from bakery.trust.channels import Channels, Proposal, facts
from bakery.trust.context import TrustContext


def promote(trust: TrustContext, channel: str, target: str, image: str, version: str) -> Move:
    """Make `image@version` the head of `channel` on `target`, with both of its audit events."""
    subject = f"{image}@{version} on {target} to channel {channel}"
    policy = f"channel {channel} gates: none; {trust.policy()}"

    def propose(_current: Channel) -> Proposal:
        return Proposal("promote", version, "sha256:" + "0" * 64, policy, "test")

    def intend(move: Move) -> None:
        details = {**facts(move), "gates": [], "overrides": []}
        trust.record("promote", subject, INTENDED, policy=policy, details=details, strict=True)

    move = Channels(trust).append(channel, target, image, propose, intend)
    assert move is not None
    trust.record("promote", subject, "ok", policy=policy, details=facts(move))
    return move
