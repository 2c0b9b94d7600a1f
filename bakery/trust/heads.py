"""Channels' heads as they stand now: the recorded head unless it is revoked (then the newest
earlier head that is not), the fall-back recorded after a revocation, and whether a version is,
or was, a channel's head (`bakery verify --channel`)."""

from __future__ import annotations

from collections.abc import Callable

from bakery.core.identity import who
from bakery.errors import TrustError
from bakery.trust.channels import Channel, Channels, Head, Move, Proposal
from bakery.trust.revocations import Revocation, Revocations, revocation_of
from bakery.trust.verify import Check, Verifier


class Heads:
    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.trust = verifier.trust
        self.channels = Channels(self.trust)
        self._table: dict[tuple[str, str], Revocation] | None = None
        self._lookups: dict[str, Callable[[str], str | None]] = {}

    def revoked(self, target: str) -> Callable[[str], str | None]:
        """ref -> why it is revoked now on `target` (its own revocation or an ancestor's), or None."""
        if target not in self._lookups:
            if self._table is None:
                self._table = Revocations(self.trust).table()
            table = self._table
            records = {r.ref: r for r in self.verifier.provider_for(target).images(target)}
            parents = self.verifier.ancestry.parents

            def lookup(ref: str) -> str | None:
                record = records.get(ref)
                found = revocation_of(record, table, records, parents) if record else table.get((target, ref))
                return found.describe() if found is not None and found.effective() else None

            self._lookups[target] = lookup
        return self._lookups[target]

    def head(self, channel: str, target: str, image: str) -> Head:
        return self.channels.read(channel, target, image).effective(self.revoked(target))

    def fall_back(self, target: str) -> list[tuple[Channel, Move]]:
        """Record a `fallback` move on every channel of `target` whose head is revoked now, to the
        newest earlier head that is not (or to none), each with its audit event."""
        self._table, self._lookups = None, {}
        moved: list[tuple[Channel, Move]] = []
        for channel in self.channels.every():
            if channel.target != target:
                continue

            def propose(current: Channel) -> Proposal | None:
                head = current.effective(self.revoked(target))
                if not head.fell_back:
                    return None
                provenance = current.provenance_of(head.version) if head.version else ""
                return Proposal(
                    "fallback",
                    head.version,
                    provenance,
                    self.trust.policy(),
                    who(),
                    reason="revoked: " + "; ".join(head.skipped),
                )

            move = self.channels.append(channel.channel, target, channel.image, propose)
            if move is not None:
                moved.append((channel, move))
                self.trust.record(
                    "channel-fallback",
                    f"{channel.image} on {target} in channel {channel.channel}",
                    "ok",
                    policy=move.policy,
                    details={"from": move.from_, "to": move.version, "reason": move.reason, "seq": move.seq},
                )
        return moved

    def channel_check(self, channel: str, target: str, image: str, version: str) -> Check:
        """Whether `image@version` is, or was, `channel`'s head on `target` (a verified record)."""
        try:
            history = self.channels.read(channel, target, image)
        except TrustError as exc:
            return Check("channel", False, exc.message)
        moves = history.was_head(version)
        if not moves:
            return Check("channel", False, f"{image}@{version} was never the head of {channel} on {target}")
        head = history.effective(self.revoked(target))
        first = moves[0]
        signed = ", ".join(first.signed_by)
        when = f"since {first.time}" if head.version == version else f"from {first.time}, no longer"
        return Check("channel", True, f"head of {channel} ({when}; move {first.seq} by {first.by}, signed by {signed})")
