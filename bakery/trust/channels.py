"""Channels in the registry: which version of an image is a channel's head on a target, who moved
it there, when, under which policy, and every move before.

One document per channel, target and image, at channels/CHANNEL/TARGET/IMAGE.json, holding the
channel's history as a list of DSSE envelopes. Each envelope signs an in-toto Statement of
bakery's own predicate type (PROMOTION_PREDICATE) that names the move (promote, rollback,
fallback), the version it makes the head, the image's provenance digest, the gate results, the
approvals, any override and the policy, its place in the history (`seq`) and the digest of the
statement before it (`previous`): the records are signed and chained. Moves are appended with the
registry's conditional writes (`registry.base.update`), so two promotions at once are both kept,
one after the other, and neither is lost.

What is read back is untrusted: every statement must verify against trust.keys, name its own
document, follow the one before it, and be in order, or nothing is decided from that document
(TrustError naming what is wrong).

The head: promotions push onto a stack, a rollback or a fall-back pops back to the version it
names. A head that is revoked, or no longer verifies, does not stay one: the channel's effective
head is the newest earlier head that is fit (worked out when read: bakery/trust/heads.py, and
recorded as a `fallback` move by `bakery revoke`, so the history says when it happened).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bakery.core import documents
from bakery.core.jcs import jcs_bytes
from bakery.core.text import shown
from bakery.errors import TrustError
from bakery.registry.base import Blob, update
from bakery.trust.attestation import payload_digest
from bakery.trust.audit_facts import channel_key
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, sign, verify

PREFIX = "channels/"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PROMOTION_PREDICATE = "https://bakery.dev/promotion/v1"
ACTIONS = ("promote", "rollback", "fallback")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
Unfit = Callable[[str, str], "str | None"]  # (ref, its provenance as recorded) -> why it cannot be a head


def now() -> datetime:
    """The time moves are stamped with and soaks are measured to (tests move it)."""
    return datetime.now(UTC)


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def key_of(channel: str, target: str, image: str) -> str:
    return f"{PREFIX}{channel}/{target}/{image}.json"


@dataclass(frozen=True)
class Move:
    """One verified entry of a channel's history."""

    seq: int
    action: str  # promote | rollback | fallback
    version: str | None  # the head it leaves (None: a fall-back with nothing left to fall back to)
    from_: str | None  # the head before it
    time: str
    by: str
    policy: str
    reason: str
    provenance: str  # the provenance statement digest of `version`
    digest: str  # sha256 of this move's signed statement (the next one names it as `previous`)
    signed_by: tuple[str, ...]
    gates: tuple[dict[str, Any], ...] = ()
    approvals: tuple[dict[str, Any], ...] = ()
    overrides: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Channel:
    """A channel's history for one image on one target, verified."""

    channel: str
    target: str
    image: str
    moves: tuple[Move, ...] = ()

    @property
    def stack(self) -> tuple[str, ...]:
        """The heads as recorded, oldest first: the last one is the head."""
        heads: list[str] = []
        for move in self.moves:
            heads = _step(heads, move)
        return tuple(heads)

    @property
    def head(self) -> str | None:
        """The recorded head's version (revocations not considered: see `effective`)."""
        stack = self.stack
        return stack[-1] if stack else None

    def effective(self, unfit: Unfit) -> Head:
        """The head once heads unfit now are skipped: `unfit(ref, provenance)` says why a version
        (whose provenance digest the history records) can no longer be a head (None: it can)."""
        return self._good(list(self.stack), unfit)

    def previous_good(self, unfit: Unfit) -> Head:
        """Where a rollback returns to: the newest earlier head (below the current one) not unfit,
        with the ones skipped on the way."""
        return self._good(list(self.stack)[:-1], unfit)

    def _good(self, stack: list[str], unfit: Unfit) -> Head:
        skipped: list[str] = []
        for version in reversed(stack):
            why = unfit(f"{self.image}@{version}", self.provenance_of(version))
            if why is None:
                return Head(self, version, tuple(skipped))
            skipped.append(f"{self.image}@{version} ({why})")
        return Head(self, None, tuple(skipped))

    def was_head(self, version: str) -> list[Move]:
        """The moves that made `version` the head."""
        return [m for m in self.moves if m.version == version]

    def provenance_of(self, version: str) -> str:
        return next((m.provenance for m in reversed(self.moves) if m.version == version), "")

    def spans(self, version: str, until: datetime) -> list[tuple[datetime, datetime]]:
        """When `version` was the recorded head: (from, to) spans, the last one open until `until`."""
        out: list[tuple[datetime, datetime]] = []
        started: datetime | None = None
        heads: list[str] = []
        for move in self.moves:
            before = heads[-1] if heads else None
            heads = _step(heads, move)
            after = heads[-1] if heads else None
            if before != version and after == version:
                started = parse_stamp(move.time)
            elif before == version and after != version and started is not None:
                out.append((started, parse_stamp(move.time)))
                started = None
        if started is not None:
            out.append((started, until))
        return out


def _step(heads: list[str], move: Move) -> list[str]:
    """The stack of heads after `move`: a promotion pushes, a rollback or fall-back pops back to
    the version it names (or starts afresh from it, or empties the stack for none)."""
    if move.action == "promote" and move.version is not None:
        return [*heads, move.version]
    if move.version is None:
        return []
    kept = list(heads)
    while kept and kept[-1] != move.version:
        kept.pop()
    return kept or [move.version]


@dataclass(frozen=True)
class Head:
    channel: Channel
    version: str | None  # None: no head (never promoted, or every head unfit)
    skipped: tuple[str, ...] = ()  # the unfit heads above it (revoked, not verifying), each with why

    @property
    def ref(self) -> str | None:
        return f"{self.channel.image}@{self.version}" if self.version else None

    @property
    def fell_back(self) -> bool:
        return bool(self.skipped)

    @property
    def moved_past(self) -> tuple[str, ...]:
        """The revoked heads the channel fell back past: skipped now, or by its last move (a
        fall-back recorded by `bakery revoke`)."""
        if self.skipped:
            return self.skipped
        last = self.channel.moves[-1] if self.channel.moves else None
        if last is not None and last.action == "fallback":
            return (last.reason.removeprefix("revoked: ").removeprefix("fell back past: "),)
        return ()


@dataclass
class Proposal:
    """What a move will record (the statement is completed with its place in the history)."""

    action: str
    version: str | None
    provenance: str
    policy: str
    by: str
    reason: str = ""
    gates: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)


class Channels:
    """The channels' documents in the registry, read and verified, and moves appended to them."""

    def __init__(self, trust: TrustContext) -> None:
        self.trust = trust

    def read(self, channel: str, target: str, image: str) -> Channel:
        """The channel's verified history (empty when it has none). Raises TrustError when its
        document does not verify."""
        key = key_of(channel, target, image)
        blob = self.trust.store.get(key)
        found = self._parse(key, blob.data, (channel, target, image)) if blob else Channel(channel, target, image)
        return self._not_behind_the_log(key, found)

    def _not_behind_the_log(self, key: str, found: Channel) -> Channel:
        """`found`, unless the verified audit log records more moves of it than it holds: a
        history cut short (or deleted) in the registry would move the channel back to an older
        head, so it is refused (TrustError), naming both."""
        logged = self.trust.log().channels.get(channel_key(found.channel, found.target, found.image), 0)
        holds = found.moves[-1].seq if found.moves else 0
        if logged > holds:
            now = f"ends at move {holds}" if holds else "is gone"
            raise TrustError(
                f"the history of channel {found.channel} for {found.image} on {found.target} went back: the signed "
                f"audit log records its move {logged}, but {key} in {self.trust.store.where} {now}",
                hint="restore the channel's document from a backup of the registry; until then nothing follows it",
            )
        return found

    def every(self) -> list[Channel]:
        """Every channel history in the registry, verified, by channel, target and image."""
        store = self.trust.store
        out = []
        for key, blob in sorted(store.get_many(store.keys(PREFIX)).items()):
            parts = key.removeprefix(PREFIX).removesuffix(".json").split("/")
            if len(parts) != 3 or not key.endswith(".json"):
                raise self._unreadable(key, "it is not at channels/CHANNEL/TARGET/IMAGE.json")
            out.append(self._not_behind_the_log(key, self._parse(key, blob.data, (parts[0], parts[1], parts[2]))))
        held = {channel_key(c.channel, c.target, c.image) for c in out}
        for gone in sorted(set(self.trust.log().channels) - held):  # a history deleted whole
            channel, target, image = gone.split(" ", 2)
            self._not_behind_the_log(key_of(channel, target, image), Channel(channel, target, image))
        return out

    def append(
        self, channel: str, target: str, image: str, propose: Callable[[Channel], Proposal | None]
    ) -> Move | None:
        """Append the move `propose` makes of the channel as read (None: nothing to move), signed
        by this machine, with a conditional write; read again and asked again after a lost race.
        Returns the move recorded. Raises what `propose` raises, TrustError for a document that
        does not verify, Conflict after too many lost races."""
        key = key_of(channel, target, image)
        signer = self.trust.signer()
        made: list[Move] = []

        def change(there: Blob | None) -> bytes | None:
            names = (channel, target, image)
            current = self._not_behind_the_log(key, self._parse(key, there.data, names) if there else Channel(*names))
            proposal = propose(current)
            if proposal is None:
                return None
            statement = _statement(current, proposal)
            envelope = sign(jcs_bytes(statement), PAYLOAD_TYPE, [signer])
            entries = [*(_envelopes(there.data) if there else []), envelope]
            made[:] = [_move(statement, payload_digest(envelope), ())]
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
