"""What an audit event is in the registry, and the check that finds any event changed, removed or
reordered (`bakery audit verify`).

Each event is a DSSE envelope at audit/events/<seq, 12 digits>.json whose payload is the event in
canonical JSON; the event's digest is the sha256 of exactly those payload bytes, and the next event
carries it as `prev`. audit/head.json, a small signed envelope, records the newest event's seq and
digest, so removing the newest events shows too.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bakery.core import documents
from bakery.core.jcs import sha256
from bakery.errors import TrustError
from bakery.registry.base import Blob
from bakery.trust.signing import AUDIT_PAYLOAD_TYPE, PublicKey, Verified, short, verify, verify_many

EVENTS = "audit/events/"
HEAD = "audit/head.json"
HEAD_PAYLOAD_TYPE = "application/vnd.bakery.audit-head+json"
EVENT_NAME = re.compile(r"audit/events/([0-9]{12})\.json")  # ASCII digits only: one name per seq
FIELDS = ("seq", "prev", "time", "who", "action", "subject", "policy", "result", "details")
_FIELD_SET = frozenset(FIELDS)
_TEXT_FIELDS = FIELDS[1:-1]


@dataclass(frozen=True)
class Event:
    seq: int  # 1, 2, 3 ... contiguous
    prev: str  # digest of event seq-1; "" for event 1
    time: str  # UTC, "2026-11-27T05:00:00Z"
    who: str
    action: str  # build | sign | verify-failed | revoke | unrevoke | rollout | rollback | override | ...
    subject: str  # "web@1.0.2 on local", "group web-local"
    policy: str  # which policy decided; may be ""
    result: str  # ok | refused | failed | allowed-unverified | ...
    details: dict[str, Any]
    digest: str  # "sha256:<hex>" of the canonical payload (computed, not stored in it)

    def document(self) -> dict[str, Any]:
        """The signed fields: what the payload holds."""
        return {name: getattr(self, name) for name in FIELDS}

    @property
    def label(self) -> str:
        """'rollout group web-local by alice@host', for messages."""
        return f"{self.action} {self.subject} by {self.who}"


@dataclass(frozen=True)
class Problem:
    seq: int  # the event concerned (0: the log as a whole)
    what: str


@dataclass(frozen=True)
class AuditReport:
    events: int  # event objects read
    head: int  # the newest event's seq (0: none)
    problems: tuple[Problem, ...]
    signatures_checked: bool = True
    unchecked_why: str = ""  # why signatures were not checked
    sealed: int = 0  # events up to this seq: their signatures vouched for by the signed head's seal

    @property
    def ok(self) -> bool:
        return not self.problems


def event_key(seq: int) -> str:
    return f"{EVENTS}{seq:012d}.json"


def seq_of(key: str) -> int | None:
    """The seq an event's object name says, or None for a name that is no event's."""
    found = EVENT_NAME.fullmatch(key)
    return int(found.group(1)) if found else None


def open_envelope(data: bytes, payload_type: str) -> tuple[dict[str, Any], bytes]:
    """The envelope's JSON and its decoded payload, signatures not checked. Raises ValueError
    saying what is wrong with it."""
    envelope = documents.parse(data)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("signatures"), list):
        raise ValueError("not a DSSE envelope")
    if envelope.get("payloadType") != payload_type:
        raise ValueError(f"payloadType is {envelope.get('payloadType')!r}, not {payload_type}")
    try:
        payload = base64.b64decode(envelope.get("payload", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ValueError("its payload is not base64") from None
    return envelope, payload


def decode_event(payload: bytes, document: object = None) -> Event:
    """The event a payload holds (`document`: the payload already parsed). Raises ValueError."""
    if document is None:
        document = _json_object(payload)
    if not isinstance(document, dict) or document.keys() != _FIELD_SET:
        raise ValueError(f"its payload is not an audit event (fields: {', '.join(FIELDS)})")
    seq, details = document["seq"], document["details"]
    if type(seq) is not int or seq < 1 or not isinstance(details, dict):
        raise ValueError("its seq is not a positive integer or its details not an object")
    if set(map(type, map(document.__getitem__, _TEXT_FIELDS))) != {str}:  # C-speed: 10,000 events in < 1 s
        raise ValueError(f"one of {', '.join(_TEXT_FIELDS)} is not a string")
    return Event(digest=sha256(payload), **document)


def check(
    blobs: Mapping[str, Blob], head: Blob | None, *, keys: Sequence[PublicKey], threshold: int, sealed: int = 0
) -> AuditReport:
    """Every problem with the stored events `blobs` (by object name) and the head, in seq order:
    unreadable objects, signatures (when `keys` are given), gaps, broken or forked links, events
    stored out of place, and a head that names events no longer there. `sealed`: the seq up to
    which the head's trusted seal vouches for the events' signatures (audit_seal.py); they are
    not checked one by one while the chain holds, and all are when anything is wrong."""
    return check_from(1, blobs, head, keys=keys, threshold=threshold, sealed=sealed)[0]


def check_from(
    first: int,
    blobs: Mapping[str, Blob],
    head: Blob | None,
    *,
    keys: Sequence[PublicKey],
    threshold: int,
    sealed: int = 0,
) -> tuple[AuditReport, dict[int, Event]]:
    """As `check`, for the events from seq `first` on (`blobs` holds them and nothing older: event
    `first` is taken as it is, checked by the caller against what it remembers of it); with the
    events of the chain by seq."""
    if keys and sealed >= first:
        checking = _Check(keys, threshold, first=first, sealed=sealed)
        report = checking.run(blobs, head)
        if report.ok:
            return report, checking.chain
    checking = _Check(keys, threshold, first=first)  # every signature, so each problem is named as it is
    return checking.run(blobs, head), checking.chain


@dataclass
class _Check:
    keys: Sequence[PublicKey]
    threshold: int
    first: int = 1  # the oldest seq looked at: the ones before it were checked before
    sealed: int = 0  # signatures of the events up to this seq are vouched for by the head's seal
    chain: dict[int, Event] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unsigned: set[int] = field(default_factory=set)  # seqs whose signature did not verify
    unreadable: set[int] = field(default_factory=set)  # places whose object is no readable event

    def note(self, seq: int, what: str) -> None:
        self.problems.append(Problem(seq, what))

    def run(self, blobs: Mapping[str, Blob], head: Blob | None) -> AuditReport:
        placed = {seq: blobs[key] for key in blobs if (seq := seq_of(key)) is not None}
        events = self._events(placed)
        chain = self._chain(events)
        self.chain = chain
        newest = max(chain, default=0)
        self.unreadable = set(placed) - set(events)
        self._gaps(chain)
        self._links(chain)
        self._head(head, chain, newest)
        problems = tuple(sorted(self.problems, key=lambda p: p.seq))  # stable: a seq's problems keep their order
        why = "" if self.keys else "no trusted keys are configured (trust.keys in images.yaml)"
        return AuditReport(
            len(placed), newest, problems, signatures_checked=bool(self.keys), unchecked_why=why, sealed=self.sealed
        )

    def _events(self, placed: Mapping[int, Blob]) -> dict[int, Event]:
        """The readable events by the seq their object name says; signatures checked."""
        order = sorted(placed)
        opened: dict[int, tuple[dict[str, Any], bytes]] = {}
        for seq in order:
            try:
                opened[seq] = open_envelope(placed[seq].data, AUDIT_PAYLOAD_TYPE)
            except ValueError as exc:
                self.note(seq, f"event {seq} ({event_key(seq)}) is not a readable audit event: {exc}")
        verified: dict[int, Verified | TrustError] = {}
        if self.keys:
            seqs = [seq for seq in opened if seq > self.sealed]
            results = verify_many([opened[s][0] for s in seqs], self.keys, self.threshold, AUDIT_PAYLOAD_TYPE)
            verified = dict(zip(seqs, results, strict=True))
        events: dict[int, Event] = {}
        for seq, (envelope, payload) in opened.items():
            result = verified.get(seq)
            try:
                if isinstance(result, Verified):
                    events[seq] = decode_event(result.payload, result.document)
                else:
                    events[seq] = decode_event(payload)
            except ValueError as exc:
                self.note(seq, f"event {seq} ({event_key(seq)}) is not a readable audit event: {exc}")
                continue
            if isinstance(result, TrustError):
                self.unsigned.add(events[seq].seq)
                self.note(seq, self._signature(seq, events[seq], envelope))
        return events

    def _signature(self, seq: int, event: Event, envelope: Mapping[str, Any]) -> str:
        """Why the event's signatures do not count, in words (the label is what it claims)."""
        said = f"event {seq} ({event.label})"
        keyids = {sig.get("keyid") for sig in envelope["signatures"] if isinstance(sig, dict)}
        trusted = {key.keyid: key.name for key in self.keys}
        names = sorted(trusted[k] for k in keyids if isinstance(k, str) and k in trusted)
        if not keyids:
            return f"{said} is not signed"
        if not names:
            others = ", ".join(short(str(k)) for k in sorted(map(str, keyids)))
            listed = ", ".join(sorted(trusted.values()))
            return f"{said} is signed by a key that is not trusted ({others}); trusted: {listed}"
        if len(names) < self.threshold:
            return f"{said} is signed by {len(names)} trusted key(s) ({', '.join(names)}); {self.threshold} needed"
        return f"{said} was changed: its signature by {', '.join(names)} does not match"

    def _chain(self, events: Mapping[int, Event]) -> dict[int, Event]:
        """The events by the seq they were signed with. An event stored under another seq's name
        (objects renamed or swapped) is out of order; where a seq is stored twice, the copy in
        its own place is the one the chain checks."""
        chain: dict[int, Event] = {}
        for place in sorted(events):
            event = events[place]
            if event.seq != place:
                self.note(
                    event.seq,
                    f"event {event.seq} ({event.label}) is out of order: it is stored as {event_key(place)},"
                    f" the place of event {place}",
                )
            if event.seq not in chain or event.seq == place:
                chain[event.seq] = event
        return chain

    def _gaps(self, chain: Mapping[int, Event]) -> None:
        newest = max(chain, default=0)
        missing = [seq for seq in range(self.first, newest) if seq not in chain and seq not in self.unreadable]
        for first, last in _runs(missing):
            if first == last:
                self.note(first, f"event {first} is missing (removed?)")
            else:
                self.note(first, f"events {first}..{last} are missing (removed?)")

    def _links(self, chain: Mapping[int, Event]) -> None:
        """Each event's prev against its predecessor's digest: a prev naming another event is a
        reordering or a fork; a prev naming no event means the predecessor changed."""
        owner = {event.digest: seq for seq, event in chain.items()}
        for seq in sorted(chain):
            event = chain[seq]
            if seq == 1:
                if event.prev:
                    self.note(1, "event 1 names a predecessor: the events before it were removed")
                continue
            if seq == self.first:
                continue  # its predecessor was checked before
            before = chain.get(seq - 1)
            if before is None or event.prev == before.digest:
                continue  # a missing predecessor is named as missing
            named = owner.get(event.prev)
            if named is not None:
                self.note(
                    seq, f"event {seq} is out of order: its prev names event {named}'s digest, not event {seq - 1}'s"
                )
            elif seq in self.unsigned and seq - 1 not in self.unsigned and self.keys:
                continue  # this event's own signature failed: it is the changed one, named already
            else:
                self.note(
                    seq - 1,
                    f"event {seq - 1} ({before.label}) was changed after it was written:"
                    f" its digest no longer matches event {seq}'s prev",
                )

    def _head(self, head: Blob | None, chain: Mapping[int, Event], newest: int) -> None:
        if head is None:
            if newest:
                self.note(
                    newest,
                    f"the head ({HEAD}) is missing: it records the newest event, so removed newest events"
                    " cannot be ruled out (nothing more is appended until it is restored)",
                )
            return
        try:
            envelope, payload = open_envelope(head.data, HEAD_PAYLOAD_TYPE)
            if self.keys:
                payload = verify(envelope, self.keys, self.threshold, payload_type=HEAD_PAYLOAD_TYPE).payload
            seq, digest = read_head(payload)
        except TrustError as exc:
            self.note(newest, f"the head ({HEAD}) was changed or not signed by a trusted key: {exc.message}")
            return
        except ValueError as exc:
            self.note(newest, f"the head ({HEAD}) is not readable: {exc}")
            return
        if seq > newest:
            removed = [n for n in range(newest + 1, seq + 1) if n not in self.unreadable]  # unreadable: named
            for first, last in _runs(removed):
                which = f"event {first} was" if first == last else f"events {first}..{last} were"
                self.note(first, f"{which} removed (the head records {seq})")
        elif seq in chain and chain[seq].digest != digest:
            self.note(
                seq,
                f"event {seq} ({chain[seq].label}) was changed after it was written:"
                " its digest no longer matches the one the head records",
            )


def read_head(payload: bytes) -> tuple[int, str]:
    """The (seq, digest) a head payload records. Raises ValueError."""
    document = _json_object(payload)
    seq, digest = document.get("seq"), document.get("digest")
    if type(seq) is not int or seq < 1 or not isinstance(digest, str):
        raise ValueError("its payload has no seq and digest")
    return seq, digest


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        return documents.parse_object(payload)
    except ValueError as exc:
        raise ValueError(f"its payload is {exc}") from None


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as (first, last) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs
