"""Channels' heads as they stand now: the recorded head unless it is unfit (revoked, or it no
longer verifies: signature, unchanged image, trusted keys, the provenance it was promoted with),
then the newest earlier head that is fit; the fall-back recorded after a revocation; and whether a
version is, or was, a channel's head (`bakery verify --channel`)."""

from __future__ import annotations

from collections.abc import Callable

from bakery.core.identity import who
from bakery.errors import TrustError
from bakery.trust.audit_facts import INTENDED
from bakery.trust.channels import Channel, Channels, Head, Move, Proposal, Unfit, facts
from bakery.trust.revocations import Revocation, Revocations, revocation_of
from bakery.trust.verify import Check, Verifier


class Heads:
    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.trust = verifier.trust
        self.channels = Channels(self.trust)
        self._table: dict[tuple[str, str], Revocation] | None = None
        self._lookups: dict[str, Callable[[str], str | None]] = {}
        self._fit: dict[str, Unfit] = {}

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

    def unfit(self, target: str) -> Unfit:
        """(ref, the provenance digest a channel recorded for it) -> why it cannot be a head now on
        `target`: revoked, not in the catalog, not verifying (Verifier.verify_record), or verifying
        with another provenance than the one it was promoted with; None when it can."""
        if target not in self._fit:
            revoked = self.revoked(target)
            records = self.verifier.provider_for(target).images(target)
            by_ref = {r.ref: r for r in records}
            seen: dict[str, tuple[str | None, str]] = {}  # ref -> (why it does not verify, its digest)

            def verified(ref: str) -> tuple[str | None, str]:
                record = by_ref.get(ref)
                if record is None:
                    return f"not in the {target} catalog", ""
                found = self.verifier.verify_record(record, records)
                if not found.ok:
                    return "does not verify: " + "; ".join(found.problems[:3]), ""
                return None, found.digest or ""

            def lookup(ref: str, provenance: str) -> str | None:
                why = revoked(ref)
                if why is None:
                    if ref not in seen:
                        seen[ref] = verified(ref)
                    why, digest = seen[ref]
                    if why is None and provenance and digest != provenance:
                        why = f"its provenance is {digest[:19]}… now, it was promoted with {provenance[:19]}…"
                return why

            self._fit[target] = lookup
        return self._fit[target]

    def head(self, channel: str, target: str, image: str) -> Head:
        return self.channels.read(channel, target, image).effective(self.unfit(target))

    def fall_back(self, target: str) -> list[tuple[Channel, Move]]:
        """Record a `fallback` move on every channel of `target` whose head is unfit now (revoked,
        or no longer verifying), to the newest earlier head that is fit (or to none), each with its
        audit events (its intent before it is written)."""
        self._table, self._lookups, self._fit = None, {}, {}
        moved: list[tuple[Channel, Move]] = []
        for channel in self.channels.every():
            if channel.target != target:
                continue

            def propose(current: Channel) -> Proposal | None:
                head = current.effective(self.unfit(target))
                if not head.fell_back:
                    return None
                provenance = current.provenance_of(head.version) if head.version else ""
                return Proposal(
                    "fallback",
                    head.version,
                    provenance,
                    self.trust.policy(),
                    who(),
                    reason="fell back past: " + "; ".join(head.skipped),
                )

            subject = f"{channel.image} on {target} in channel {channel.channel}"

            def intend(move: Move, subject: str = subject) -> None:
                details = {**facts(move), "reason": move.reason}
                self.trust.record(
                    "channel-fallback", subject, INTENDED, policy=move.policy, details=details, strict=True
                )

            move = self.channels.append(channel.channel, target, channel.image, propose, intend)
            if move is not None:
                moved.append((channel, move))
                self.trust.record("channel-fallback", subject, "ok", policy=move.policy, details=facts(move))
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
        head = history.effective(self.unfit(target))
        first = moves[0]
        signed = ", ".join(first.signed_by)
        when = f"since {first.time}" if head.version == version else f"from {first.time}, no longer"
        return Check("channel", True, f"head of {channel} ({when}; move {first.seq} by {first.by}, signed by {signed})")
