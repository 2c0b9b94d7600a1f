"""The audit log: who did what, when, under which policy, with which result. Events are
hash-chained (each carries its predecessor's digest), signed, and shared through the registry.

Appending never takes a lock: an event is written with the store's create-only write at the next
seq, so of two writers racing for one seq exactly one wins; the other reads the tail again and
takes the next seq. No entry is lost, none is forked. The tail is found from a head hint
(audit/head.json, moved forward after each append) probed forward with `get` until a seq is free,
not by listing every event.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bakery.core.identity import who as whoami
from bakery.core.jcs import jcs_bytes, sha256
from bakery.errors import BakeryError, Conflict, TrustError, UsageError
from bakery.registry.base import Blob, Store
from bakery.trust.audit_chain import (
    EVENTS,
    HEAD,
    HEAD_PAYLOAD_TYPE,
    AuditReport,
    Event,
    Problem,
    check,
    check_from,
    decode_event,
    event_key,
    open_envelope,
    read_head,
    seq_of,
)
from bakery.trust.audit_facts import channel_move_in, revocation_in, test_in
from bakery.trust.audit_seal import Seal, extend, head_payload, trusted_seal
from bakery.trust.signing import AUDIT_PAYLOAD_TYPE, PublicKey, Signer, sign
from bakery.trust.witness import Mark, Remembered, Revoked, Witness

__all__ = ["AuditLog", "AuditReport", "Event", "Followed", "Problem", "parse_since"]

T = TypeVar("T")

# Writers racing for one seq: each lost race costs one read of the tail and one create. Many
# writers appending at once all get through well within this many rounds.
APPEND_ATTEMPTS = 40
HEAD_ATTEMPTS = 5  # the head is a hint: a writer that keeps losing leaves it to the winners
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DURATION = re.compile(r"([0-9]+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Followed:
    """The log as far as it verified: its check, the revocations its events record, its newest event."""

    report: AuditReport
    revocations: dict[str, Revoked]  # witness.key(target, ref) ->
    newest: Mark
    checked_from: int  # the first seq looked at (1: all of it)
    channels: dict[str, int] = field(default_factory=dict)  # audit_facts.channel_key -> newest move seq
    tests: dict[str, str] = field(default_factory=dict)  # audit_facts.test_key -> passed | failed (newest run)


@dataclass(frozen=True)
class _Tail:
    seq: int  # 0: the log is empty
    digest: str  # "" when empty


class AuditLog:
    """The audit log in `store`. `signer` makes this machine's signer on first use (None: events
    are written unsigned); `keys` and `threshold` are what verify() trusts."""

    def __init__(
        self,
        store: Store,
        *,
        signer: Callable[[], Signer] | None,
        keys: Sequence[PublicKey],
        threshold: int = 1,
        clock: Callable[[], datetime] = _now,
        witness: Witness | None = None,
    ) -> None:
        self.store = store
        self.keys = tuple(keys)
        self.threshold = threshold
        self.witness = witness
        self._make_signer = signer
        self._signer: Signer | None = None
        self._clock = clock

    def append(
        self,
        *,
        action: str,
        subject: str,
        result: str,
        policy: str = "",
        details: dict[str, Any] | None = None,
        who: str | None = None,
    ) -> Event:
        """Write one event after the newest and return it. Raises BakeryError when other writers
        win the race for the next seq too many times in a row, or the store fails."""
        fields = {
            "who": who or whoami(),
            "action": action,
            "subject": subject,
            "policy": policy,
            "result": result,
            "details": dict(details or {}),
        }
        if self.witness is not None:
            self._refuse_rollback(self.witness.load().seen)
        try:
            event = _retrying(self._append_once, attempts=APPEND_ATTEMPTS, fields=fields)
        except _GaveUp:
            self._hinted(final=True)  # a head that stayed missing is named as such
            raise BakeryError(
                f"could not append to the audit log in {self.store.where}: other writers took the next"
                f" entry {APPEND_ATTEMPTS} times in a row",
                hint="try again; if it persists, look for a process appending in a loop",
            ) from None
        with contextlib.suppress(_GaveUp):  # the head is only a hint: the writers that won moved it on
            _retrying(self._advance_head, attempts=HEAD_ATTEMPTS, event=event)
        if self.witness is not None:
            self.witness.saw(event.seq, event.digest, event.time)
        return event

    def events(self, *, since: str | None = None) -> list[Event]:
        """The events in seq order (signatures not checked: that is verify()'s job), only those
        at or after `since` (an ISO time or a duration back from now: "2h", "7d"). Raises
        UsageError for a `since` that is neither, BakeryError for an object that is no event."""
        cutoff = parse_since(since, now=self._clock()) if since else ""
        names = self._names()
        blobs = self.store.get_many(names)
        found = []
        for name in names:
            if name not in blobs:
                continue  # removed since it was listed
            try:
                event = decode_event(open_envelope(blobs[name].data, AUDIT_PAYLOAD_TYPE)[1])
            except ValueError as exc:
                raise BakeryError(
                    f"{name} in {self.store.where} is not a readable audit event: {exc}",
                    hint="run `bakery audit verify` to see what else changed",
                ) from None
            if event.time >= cutoff:
                found.append(event)
        return found

    def verify(self) -> AuditReport:
        """Every event changed, removed or reordered, and every signature that does not count."""
        names = self._names()
        blobs = self.store.get_many(names)
        head = self.store.get(HEAD)
        return check(blobs, head, keys=self.keys, threshold=self.threshold, sealed=self._sealed(head))

    def follow(self, *, full: bool = False, seals: bool = True) -> Followed:
        """The log checked against what this machine remembers (its witness), then verified from
        where it was verified last (`full`: from event 1), and the witness moved on; `seals` False
        checks every event's own signature, even where a trusted seal vouches for it. Raises
        TrustError when the log went back in time (older, forked or wiped) or is broken."""
        remembered = self.witness.load() if self.witness is not None else Remembered.nothing()
        names = self._names()
        self._refuse_rollback(remembered.seen, names=names)
        # What this machine verified counts only under keys still all trusted: a key removed
        # since may have signed an event that check accepted, so the whole log is checked again.
        still = remembered.verified.covered_by(self._keyids(), self.threshold)
        start = 0 if full or not still else remembered.verified.seq
        first = max(start, 1)
        wanted = [name for name in names if (seq_of(name) or 0) >= first]
        blobs = self.store.get_many(wanted)
        head = self.store.get(HEAD)
        sealed = self._sealed(head) if seals else 0
        report, chain = check_from(first, blobs, head, keys=self.keys, threshold=self.threshold, sealed=sealed)
        if start and start in chain and chain[start].digest != remembered.verified.digest:
            raise self._went_back(f"event {start} is not the one this machine verified", remembered.verified)
        revocations = dict(remembered.revocations) if start else {}
        channels = dict(remembered.channels) if start else {}
        tests = dict(remembered.tests) if start else {}
        for seq in sorted(chain):
            if seq > start and (found := revocation_in(chain[seq])) is not None:
                revocations[found[0]] = found[1]
            if seq > start and (moved := channel_move_in(chain[seq])) is not None:
                channels[moved[0]] = max(moved[1], channels.get(moved[0], 0))
            if seq > start and (tested := test_in(chain[seq])) is not None:
                tests[tested[0]] = tested[1]
        newest = max(chain, default=0)
        mark = Mark(newest, chain[newest].digest, chain[newest].time) if newest else Mark(0, "")
        mark = Mark(mark.seq, mark.digest, mark.time, keys=self._keyids(), threshold=self.threshold)
        if not report.problems and report.signatures_checked and self.witness is not None and newest >= start:
            self.witness.verified(mark, revocations, channels, tests)
        return Followed(report, revocations, mark, first, channels, tests)

    def _refuse_rollback(self, seen: Mark, *, names: list[str] | None = None) -> None:
        """TrustError unless the log still holds the event this machine saw last, unchanged."""
        if not seen.seq:
            return
        blob = self.store.get(event_key(seen.seq))
        if blob is None:
            listed = self._names() if names is None else names
            newest = max((seq_of(name) or 0 for name in listed), default=0)
            if not newest:
                raise self._went_back("it has no events (wiped?)", seen)
            if newest < seen.seq:
                raise self._went_back(f"its newest event is {newest} (rolled back?)", seen)
            raise self._went_back(f"event {seen.seq} is gone", seen)
        try:
            digest = sha256(open_envelope(blob.data, AUDIT_PAYLOAD_TYPE)[1])
        except ValueError as exc:
            raise self._went_back(f"event {seen.seq} is not readable ({exc})", seen) from None
        if digest != seen.digest:
            raise self._went_back(f"event {seen.seq} is another event now ({digest[:19]}…: forked?)", seen)

    def _went_back(self, found: str, seen: Mark) -> TrustError:
        where = self.witness.path if self.witness is not None else "this machine"
        return TrustError(
            f"the audit log in {self.store.where} went back in time: this machine saw event {seen.seq} "
            f"({seen.digest[:19]}…) at {seen.time or 'an earlier run'}, but {found}",
            hint=f"restore the registry's audit/ from a backup (or the write-once checkpoint); only if the log was "
            f"replaced on purpose, remove {where} to trust what the registry shows now",
        )

    # --------------------------------------------------------------------------------- internals

    def _names(self) -> list[str]:
        return [key for key in self.store.keys(EVENTS) if seq_of(key) is not None]

    def _append_once(self, fields: dict[str, Any]) -> Event:
        tail = self._tail()
        document = {"seq": tail.seq + 1, "prev": tail.digest, "time": self._clock().strftime(TIME_FORMAT), **fields}
        try:
            payload = jcs_bytes(document)
        except ValueError as exc:
            raise BakeryError(f"the audit event's details cannot be written as canonical JSON: {exc}") from None
        event = Event(digest=sha256(payload), **document)
        sealed = self._wrap(payload, AUDIT_PAYLOAD_TYPE)
        try:
            self.store.create(event_key(event.seq), sealed)
        except Conflict:
            # The SDK may retry a create whose first attempt landed (a 5xx after the write): then
            # the object there is this very event, and taking another seq would write it twice.
            there = self.store.get(event_key(event.seq))
            if there is None or there.data != sealed:
                raise  # another writer's event: retried with the next seq
        return event

    def _tail(self) -> _Tail:
        """The newest event: from the head hint, then forward while the next seq exists. A head
        that is missing, unreadable or ahead of the events falls back to one listing."""
        seq = self._hinted()
        blob = self.store.get(event_key(seq)) if seq else None
        if seq and blob is None:
            # The head records an event that is not there: events were removed. Appending on would
            # bury that; the log stays as it is for `bakery audit verify` to name it.
            newest = max((seq_of(key) or 0 for key in self._names()), default=0)
            raise BakeryError(
                f"the audit log in {self.store.where} records event {seq} in its head, but its newest event is "
                f"{newest}: events were removed; nothing more is appended",
                hint="`bakery audit verify` names what is missing; restore the events before going on",
            )
        while (after := self.store.get(event_key(seq + 1))) is not None:
            seq, blob = seq + 1, after
        if blob is None:
            return _Tail(0, "")
        try:
            payload = open_envelope(blob.data, AUDIT_PAYLOAD_TYPE)[1]
        except ValueError as exc:
            raise BakeryError(
                f"the newest audit event ({event_key(seq)} in {self.store.where}) is not readable: {exc}",
                hint="run `bakery audit verify` to see what changed",
            ) from None
        return _Tail(seq, sha256(payload))

    def _hinted(self, *, final: bool = False) -> int:
        """The seq the head records; with no usable head, the newest one a listing finds. Events
        without a head are normal only while the log's first writers race (each writes its event,
        then the head): that is retried as a lost race, and named once it outlasts the retries."""
        head = self.store.get(HEAD)
        hint = _head_of(head) if head else None
        if hint is not None:
            return hint[0]
        newest = max((seq_of(key) or 0 for key in self._names()), default=0)
        if newest > 1:
            message = (
                f"the audit log in {self.store.where} has {newest} events but its head "
                f"({HEAD}) is {'unreadable' if head else 'gone'}: nothing more is appended"
            )
            if final or head is not None:
                raise BakeryError(message, hint="`bakery audit verify` says what else changed")
            raise _HeadPending(message)
        return newest

    def _advance_head(self, event: Event) -> None:
        """Move the head to `event` unless it records that one or a newer one already."""
        head = self.store.get(HEAD)
        hint = _head_of(head) if head else None
        if hint is not None and hint[0] >= event.seq:
            return
        data = self._wrap(head_payload(event.seq, event.digest, self._sealing(head, event)), HEAD_PAYLOAD_TYPE)
        if head is None:
            self.store.create(HEAD, data)
        else:
            self.store.replace(HEAD, data, version=head.version)

    def _keyids(self) -> tuple[str, ...]:
        return tuple(sorted(key.keyid for key in self.keys))

    def _sealed(self, head: Blob | None) -> int:
        found = trusted_seal(head, self.keys, self.threshold)
        return found[2].seq if found else 0

    def _sealing(self, head: Blob | None, event: Event) -> Seal | None:
        """The seal this writer may sign into the head it moves to `event` (audit_seal.py)."""
        if self._signer is None:
            return None
        remembered = self.witness.load().verified if self.witness is not None else Mark(0, "")
        own = self._signer.public_key.keyid
        return extend(
            self.store, head, event, keys=self.keys, threshold=self.threshold, own_keyid=own, remembered=remembered
        )

    def _wrap(self, payload: bytes, payload_type: str) -> bytes:
        if self._make_signer is None:
            from securesystemslib.dsse import Envelope  # imported when used: it loads boto3 and Cloud KMS

            envelope = Envelope(payload, payload_type, {}).to_dict()
        else:
            if self._signer is None:
                self._signer = self._make_signer()
            envelope = sign(payload, payload_type, [self._signer])
        return json.dumps(envelope, separators=(",", ":")).encode()


def parse_since(text: str, *, now: datetime) -> str:
    """The UTC time `text` names, as events write it: an ISO 8601 time ("2026-11-27T05:00:00Z";
    without a zone, UTC) or a duration back from `now` ("30m", "2h", "7d", "1w"). Raises UsageError."""
    text = text.strip()
    if found := _DURATION.fullmatch(text):
        when = now - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    else:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(
                f"--since must be an ISO time (2026-11-27T05:00:00Z) or a duration (30m, 2h, 7d), not {text!r}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def _head_of(blob: Blob) -> tuple[int, str] | None:
    """The (seq, digest) a head records, or None when it is unreadable (it is only a hint here:
    verify() is what judges it)."""
    try:
        return read_head(open_envelope(blob.data, HEAD_PAYLOAD_TYPE)[1])
    except ValueError:
        return None


class _HeadPending(Conflict):
    """Events and no head yet: another writer of the log's first events has not written it."""


class _GaveUp(Exception):
    """Every attempt lost its race."""


def _retrying(attempt: Callable[..., T], *, attempts: int, **kwargs: Any) -> T:
    """`attempt(**kwargs)` again after each Conflict (a lost race), with jittered backoff, at most
    `attempts` times. Raises _GaveUp when every attempt lost."""
    import tenacity

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_random_exponential(multiplier=0.005, max=0.25),
        retry=tenacity.retry_if_exception_type(Conflict),
    )
    try:
        result: T = retrying(attempt, **kwargs)
    except tenacity.RetryError:
        raise _GaveUp from None
    return result
