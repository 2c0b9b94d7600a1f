"""Channels in the registry: which version of an image is a channel's head on a target, who moved
it there, when, under which policy, and every move before.

One document per channel, target and image, at channels/CHANNEL/TARGET/IMAGE.json, holding the
channel's history as a list of DSSE envelopes. Each envelope signs an in-toto Statement of
bakery's own predicate type (PROMOTION_PREDICATE) that names the move (promote, rollback,
fallback), the version it makes the head, the image's provenance digest, the gate results, the
approvals, any override and the policy, its place in the history (`seq`) and the digest of the
statement before it (`previous`): the records are signed and chained. Moves are appended with the
registry's conditional writes (`registry.base.update`), so two promotions at once are both kept,
one after the other, and neither is lost. Each attempt hands its finished move to `before_write`
first, which records its audit event ahead of the write (bakery/trust/channel_log.py).

What is read back is untrusted: every statement must verify against trust.keys, name its own
document, follow the one before it, and be in order, and every move must be in the signed audit
log, or nothing is decided from that document (TrustError naming what is wrong).

The head: promotions push onto a stack, a rollback or a fall-back pops back to the version it
names. A head that is revoked, or no longer verifies, does not stay one: the channel's effective
head is the newest earlier head that is fit (worked out when read: bakery/trust/heads.py, and
recorded as a `fallback` move by `bakery revoke`, so the history says when it happened).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bakery.core import documents
from bakery.core.jcs import jcs_bytes
from bakery.core.text import shown
from bakery.errors import Conflict, TrustError
from bakery.registry.base import Blob, update
from bakery.trust.attestation import payload_digest
from bakery.trust.audit_facts import channel_key
from bakery.trust.channel_log import behind_gone, held_to_the_log
from bakery.trust.channel_model import (
    PREFIX,
    TIME_FORMAT,
    Channel,
    Head,
    Move,
    Proposal,
    Unfit,
    key_of,
    parse_stamp,
    stamp,
)
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, sign, verify

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PROMOTION_PREDICATE = "https://bakery.dev/promotion/v1"
ACTIONS = ("promote", "rollback", "fallback")
__all__ = [
    "PREFIX",
    "TIME_FORMAT",
    "Channel",
    "Channels",
    "Head",
    "Move",
    "Proposal",
    "Unfit",
    "facts",
    "key_of",
    "now",
    "parse_stamp",
    "stamp",
]


def now() -> datetime:
    """The time moves are stamped with and soaks are measured to (tests move it)."""
    return datetime.now(UTC)


class Channels:
    """The channels' documents in the registry, read and verified, and moves appended to them."""

    def __init__(self, trust: TrustContext) -> None:
        self.trust = trust

    def read(self, channel: str, target: str, image: str) -> Channel:
        """The channel's verified history (empty when it has none). Raises TrustError when its
        document does not verify, or the audit log does not record it."""
        key = key_of(channel, target, image)
        for _ in range(3):
            try:
                return self._held(key, self.trust.store.get(key), (channel, target, image))
            except Conflict:
                continue  # it moved while the log was read: read both again
        return self._held(key, self.trust.store.get(key), (channel, target, image))

    def _held(self, key: str, blob: Blob | None, names: tuple[str, str, str]) -> Channel:
        """The history in `blob` held to the audit log. When the log refuses it and the document
        has changed since `blob` was read, raises Conflict instead: a log read after the document
        may count moves written since (a history that looks cut short), it is read again."""
        try:
            return held_to_the_log(self.trust, key, self._parse(key, blob.data, names) if blob else Channel(*names))
        except TrustError:
            again = self.trust.store.get(key)
            if (again.version if again else None) != (blob.version if blob else None):
                raise Conflict(f"{key} in {self.trust.store.where} changed while it was read") from None
            raise

    def every(self) -> list[Channel]:
        """Every channel history in the registry, verified, by channel, target and image."""
        store = self.trust.store
        out = []
        for key, blob in sorted(store.get_many(store.keys(PREFIX)).items()):
            parts = key.removeprefix(PREFIX).removesuffix(".json").split("/")
            if len(parts) != 3 or not key.endswith(".json"):
                raise self._unreadable(key, "it is not at channels/CHANNEL/TARGET/IMAGE.json")
            try:
                out.append(self._held(key, blob, (parts[0], parts[1], parts[2])))
            except Conflict:
                out.append(self.read(parts[0], parts[1], parts[2]))
        behind_gone(self.trust, {channel_key(c.channel, c.target, c.image) for c in out})  # a history deleted whole
        return out

    def append(
        self,
        channel: str,
        target: str,
        image: str,
        propose: Callable[[Channel], Proposal | None],
        before_write: Callable[[Move], None] | None = None,
    ) -> Move | None:
        """Append the move `propose` makes of the channel as read (None: nothing to move), signed
        by this machine, with a conditional write; read again and asked again after a lost race.
        `before_write(move)` is called with each finished move right before its write is tried
        (once per attempt): it records the move's audit event ahead of it, so no move is ever
        written that the log does not name; what it raises stops the write. Returns the move
        recorded. Raises what `propose` or `before_write` raise, TrustError for a document that
        does not verify, Conflict after too many lost races."""
        key = key_of(channel, target, image)
        signer = self.trust.signer()
        made: list[Move] = []

        def change(there: Blob | None) -> bytes | None:
            current = self._held(key, there, (channel, target, image))  # Conflict: the write would lose
            proposal = propose(current)
            if proposal is None:
                return None
            statement = _statement(current, proposal)
            envelope = sign(jcs_bytes(statement), PAYLOAD_TYPE, [signer])
            entries = [*(_envelopes(there.data) if there else []), envelope]
            move = _move(statement, payload_digest(envelope), ())
            if before_write is not None:
                before_write(move)
            made[:] = [move]
            doc = {"channel": channel, "target": target, "image": image, "entries": entries}
            return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"

        update(self.trust.store, key, change)
        return made[0] if made else None

    def _parse(self, key: str, data: bytes, names: tuple[str, str, str]) -> Channel:
        try:
            doc = documents.parse_object(data)
        except ValueError as exc:
            raise self._unreadable(key, str(exc)) from None
        entries = doc.get("entries")
        if not isinstance(entries, list):
            raise self._unreadable(key, "it has no list of entries")
        if not self.trust.keys:
            raise self._unreadable(key, "no key is trusted to check its signatures (trust.keys)")
        channel, target, image = names
        moves: list[Move] = []
        previous: str | None = None
        for i, envelope in enumerate(entries, start=1):
            if not isinstance(envelope, dict):
                raise self._unreadable(key, f"entry {i} is not a signed statement")
            try:
                verified = verify(envelope, self.trust.keys, 1, payload_type=PAYLOAD_TYPE)
            except TrustError as exc:
                raise self._unreadable(key, f"entry {i} does not verify: {exc.message}") from None
            statement = verified.document
            predicate = statement.get("predicate")
            if statement.get("predicateType") != PROMOTION_PREDICATE or not isinstance(predicate, dict):
                raise self._unreadable(key, f"entry {i} is not a promotion statement ({PROMOTION_PREDICATE})")
            said = (predicate.get("channel"), predicate.get("target"), predicate.get("image"))
            if said != names:
                raise self._unreadable(key, f"entry {i} is about {shown(said)}, not {channel}/{target}/{image}")
            if predicate.get("seq") != i or predicate.get("previous") != previous:
                raise self._unreadable(
                    key,
                    f"entry {i} is out of its chain (seq {shown(predicate.get('seq'))}, previous "
                    f"{shown(predicate.get('previous'))}): entries were removed, reordered or replaced",
                )
            try:
                move = _move(statement, payload_digest(envelope), verified.signed_by)
            except (KeyError, TypeError, ValueError) as exc:
                raise self._unreadable(key, f"entry {i} is malformed ({exc})") from None
            moves.append(move)
            previous = move.digest
        return Channel(channel, target, image, tuple(moves))

    def _unreadable(self, key: str, why: str) -> TrustError:
        return TrustError(
            f"{key} in {self.trust.store.where} is not a channel history bakery can trust: {why}",
            hint="restore it from a backup; `bakery channels` reads it, and promotions and channel rollouts refuse "
            "until it verifies",
        )


def facts(move: Move) -> dict[str, Any]:
    """What a move's audit events name of it: its place in the history, its statement's digest,
    the heads before and after it and the provenance it moves to."""
    return {"from": move.from_, "to": move.version, "seq": move.seq, "move": move.digest, "provenance": move.provenance}


def _envelopes(data: bytes) -> list[Any]:
    entries = documents.parse_object(data).get("entries")
    return list(entries) if isinstance(entries, list) else []


def _statement(current: Channel, proposal: Proposal) -> dict[str, Any]:
    last = current.moves[-1] if current.moves else None
    version = proposal.version
    subject_version = version or current.head or "none"
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"{current.image}@{subject_version} on {current.target}",
                "digest": {"sha256": proposal.provenance.removeprefix("sha256:")},
            }
        ],
        "predicateType": PROMOTION_PREDICATE,
        "predicate": {
            "action": proposal.action,
            "channel": current.channel,
            "target": current.target,
            "image": current.image,
            "version": version,
            "from": current.head,
            "seq": len(current.moves) + 1,
            "previous": last.digest if last else None,
            "provenance": proposal.provenance,
            "gates": proposal.gates,
            "approvals": proposal.approvals,
            "overrides": proposal.overrides,
            "policy": proposal.policy,
            "by": proposal.by,
            "time": stamp(now()),
            "reason": proposal.reason,
        },
    }


def _move(statement: Mapping[str, Any], digest: str, signed_by: tuple[str, ...]) -> Move:
    p = statement["predicate"]
    if p["action"] not in ACTIONS:
        raise ValueError(f"action {shown(p['action'])} is none of {', '.join(ACTIONS)}")
    version = p["version"]
    if version is not None and not isinstance(version, str):
        raise ValueError("version is not text")
    parse_stamp(str(p["time"]))
    lists = [p.get(name) or [] for name in ("gates", "approvals", "overrides")]
    if not all(isinstance(each, list) and all(isinstance(x, dict) for x in each) for each in lists):
        raise ValueError("gates, approvals and overrides must be lists of objects")
    return Move(
        seq=int(p["seq"]),
        action=str(p["action"]),
        version=version,
        from_=p.get("from") if isinstance(p.get("from"), str) else None,
        time=str(p["time"]),
        by=str(p.get("by", "")),
        policy=str(p.get("policy", "")),
        reason=str(p.get("reason", "")),
        provenance=str(p.get("provenance", "")),
        digest=digest,
        signed_by=signed_by,
        gates=tuple(lists[0]),
        approvals=tuple(lists[1]),
        overrides=tuple(lists[2]),
    )
