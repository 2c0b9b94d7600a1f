"""Revocations in the registry: revocations/TARGET/IMAGE/VERSION.json, one document per image
version with its whole history (revoked, unrevoked, revoked again), written with conditional
replaces so two machines revoking at once never lose either write.

A revocation is inherited: an image built `from:` a revoked image (at any depth) is revoked too,
from the moment its ancestor's revocation takes effect. That is worked out when asked, from the
records' parent references, so a child baked after the revocation inherits it as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bakery.core import documents
from bakery.core.catalog import ImageRecord
from bakery.core.text import shown
from bakery.errors import TrustError, UsageError
from bakery.registry.base import Blob, update
from bakery.trust.context import TrustContext
from bakery.trust.signing import cosign, sign, signer_public_key, verify
from bakery.trust.witness import key as witness_key

PREFIX = "revocations/"
REVOCATION_PAYLOAD_TYPE = "application/vnd.bakery.revocation+json"
_FIELDS = ("target", "ref", "at", "reason", "by", "time")


@dataclass(frozen=True)
class Revocation:
    target: str
    ref: str  # the image@version revoked by name
    at: str  # when it takes (or took) effect, UTC ISO 8601
    reason: str
    by: str
    time: str  # when it was decided
    via: str | None = None  # the revoked ancestor this image inherits it from, if not itself

    def effective(self, now: datetime | None = None) -> bool:
        return parse_time(self.at) <= (now or datetime.now(UTC))

    def inherited(self, ref: str) -> Revocation:
        return Revocation(self.target, ref, self.at, self.reason, self.by, self.time, via=self.ref)

    def describe(self) -> str:
        when = f"since {self.at}" if self.effective() else f"from {self.at} (scheduled)"
        own = f" (inherited from {self.via})" if self.via else ""
        return f"revoked {when}{own}: {shown(self.reason)} (by {shown(self.by)})"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time ('2026-12-01T00:00:00Z', '2026-12-01'); naive times are UTC. Raises
    UsageError naming the value."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is not a time; give ISO 8601 such as 2026-12-01T09:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def key_of(target: str, ref: str) -> str:
    name, _, version = ref.partition("@")
    return f"{PREFIX}{target}/{name}/{version}.json"


class Revocations:
    """The revocation documents in the registry, each a DSSE envelope signed by trusted keys,
    read against the signed audit log: where the two disagree (a document deleted or rolled back,
    a revoke with no event), nothing is decided from either: TrustError names the disagreement."""

    def __init__(self, trust: TrustContext) -> None:
        self.trust = trust

    def table(self) -> dict[tuple[str, str], Revocation]:
        """Every image revoked by name (scheduled ones included): (target, ref) -> revocation.
        Raises TrustError naming a document that is not a signed revocation, or a disagreement
        with the audit log."""
        store = self.trust.store
        out: dict[tuple[str, str], Revocation] = {}
        states: dict[str, tuple[str, str, str]] = {}  # witness key -> (state, key of the document, at)
        for key, blob in sorted(store.get_many(store.keys(PREFIX)).items()):
            doc, complete = self._document(key, blob.data)
            state = doc.get("state", "active")
            if state not in ("revoked", "active"):
                raise self._unreadable(key, f"its state ({shown(state)}) is neither revoked nor active")
            if state == "active" and not complete:  # an unrevoke not yet signed enough lifts nothing
                state, doc = "revoked", {**doc, **_last_revocation(doc, key, self)}
            if state == "revoked":
                found = self._revocation(key, doc)
                out[(found.target, found.ref)] = found
                states[witness_key(found.target, found.ref)] = ("revoked", key, found.at)
            else:
                states[witness_key(str(doc.get("target")), str(doc.get("ref")))] = ("active", key, "")
        self._agree(states)
        return out

    def _agree(self, states: Mapping[str, tuple[str, str, str]], *, again: bool = True) -> None:
        """TrustError where the registry's documents and the verified audit log disagree: on the
        state, and on when a revocation takes effect (an older signed document put back, one
        scheduled later than the log's newest revoke, must not hide it). The log is read again
        first, once: another machine may have revoked since it was read."""
        logged = self.trust.log().revocations
        if again and any(
            (logged.get(name) is None and state == "revoked")
            or (logged.get(name) is not None and logged[name].state != state)
            or (state == "revoked" and not _same_time(logged[name].at, at))
            for name, (state, _, at) in states.items()
        ):
            self.trust.forget_log()
            return self._agree(states, again=False)
        where = self.trust.store.where
        for name in sorted(set(logged) | {k for k, (state, _, _) in states.items() if state == "revoked"}):
            target, _, ref = name.partition(" ")
            event = logged.get(name)
            registry, doc_key, at = states.get(name, ("missing", key_of(target, ref), ""))
            if event is not None and event.state == registry == "revoked" and not _same_time(event.at, at):
                raise TrustError(
                    f"revocations disagree: the signed audit log revokes {ref} on {target} from {shown(event.at)} "
                    f"(event {event.seq} by {shown(event.by)}), but its revocation document {doc_key} in {where} "
                    f"says from {shown(at)}",
                    hint=f"run `bakery revoke {ref} --target {target} --at {shown(event.at)}` again: it rewrites the "
                    "document as the log records it",
                )
            if event is not None and (event.state == registry or (event.state == "active" and registry == "missing")):
                continue
            if event is None:
                said = (
                    f"the registry revokes {ref} on {target} ({doc_key}), but the signed audit log has no revoke event"
                )
                fix = f"run the same `bakery revoke {ref} --target {target}` again: it records the event"
            elif event.state == "revoked":
                now = "is gone" if registry == "missing" else "says it is not revoked"
                said = (
                    f"the signed audit log revokes {ref} on {target} (event {event.seq} by {shown(event.by)}: "
                    f"{shown(event.reason)}), but its revocation document {doc_key} in {where} {now}"
                )
                fix = f"restore {doc_key} (or run `bakery revoke {ref} --target {target}` again)"
            else:
                said = (
                    f"the signed audit log lifts the revocation of {ref} on {target} (event {event.seq} by "
                    f"{shown(event.by)}), but {doc_key} in {where} still revokes it"
                )
                fix = f"run the same `bakery unrevoke {ref} --target {target}` again to finish it"
            raise TrustError(f"revocations disagree: {said}", hint=fix)

    def _revocation(self, key: str, doc: Mapping[str, Any]) -> Revocation:
        fields = [doc.get(name) for name in _FIELDS]
        wrong = [name for name, value in zip(_FIELDS, fields, strict=True) if not isinstance(value, str)]
        if wrong:
            raise self._unreadable(key, f"its {', '.join(wrong)} must be text")
        found = Revocation(*(str(value) for value in fields))
        try:
            parse_time(found.at)
        except UsageError:
            raise self._unreadable(key, f"its at ({shown(found.at)}) is not an ISO 8601 time") from None
        if key_of(found.target, found.ref) != key:
            named = f"{shown(found.ref)} on {shown(found.target)}"
            raise self._unreadable(key, f"it names {named}, not its own key")
        return found

    def _document(self, key: str, data: bytes) -> tuple[dict[str, Any], bool]:
        """The signed document at `key`, and whether trust.threshold keys signed it (a document
        signed by fewer trusted keys still revokes, but does not lift a revocation)."""
        try:
            envelope = documents.parse_object(data)
        except ValueError as exc:
            raise self._unreadable(key, str(exc)) from None
        if "payloadType" not in envelope:
            raise self._unreadable(key, "it is not signed", hint=_RESIGN)
        try:
            verified = verify(envelope, self.trust.keys, 1, payload_type=REVOCATION_PAYLOAD_TYPE)
        except TrustError as exc:
            raise self._unreadable(key, f"its signature does not count: {exc.message}", hint=_RESIGN) from None
        return verified.document, len(verified.signed_by) >= self.trust.threshold

    def _legacy(self, key: str, data: bytes) -> dict[str, Any]:
        """An unsigned document of an earlier bakery, when it is well-formed and its own key's."""
        try:
            doc = documents.parse_object(data)
        except ValueError as exc:
            raise self._unreadable(key, str(exc)) from None
        if doc.get("state") not in ("revoked", "active") or not isinstance(doc.get("history", []), list):
            raise self._unreadable(key, "it has no state revoked or active, or no history list")
        if key_of(str(doc.get("target")), str(doc.get("ref"))) != key:
            raise self._unreadable(key, "it does not name its own image and target")
        return doc

    def _unreadable(self, key: str, why: str, *, hint: str | None = None) -> TrustError:
        return TrustError(
            f"{key} in {self.trust.store.where} is not a revocation document: {why}",
            hint=hint
            or "fix or remove it (`bakery revoke`/`unrevoke` write them); every verify and rollout reads them",
        )

    def decide(
        self, target: str, ref: str, *, revoked: bool, reason: str, at: str | None, by: str, details: dict[str, Any]
    ) -> tuple[bool, str]:
        """Revoke or unrevoke `ref` on `target` in the registry and the signed audit log, in the
        order that never leaves an image less revoked than the log says: a revoke writes its
        document, then its event; an unrevoke writes its event first and changes nothing if it
        cannot. Returns what `set` does."""
        operation, subject = ("revoke" if revoked else "unrevoke"), f"{ref} on {target}"
        if revoked:
            changed, when = self.set(target, ref, revoked=True, reason=reason, at=at, by=by)
            self.trust.record(operation, subject, "ok", details={**details, "reason": reason, "at": when}, strict=True)
            return changed, when
        self.trust.record(operation, subject, "ok", details={**details, "reason": reason, "at": ""}, strict=True)
        return self.set(target, ref, revoked=False, reason=reason, at=None, by=by)

    def set(self, target: str, ref: str, *, revoked: bool, reason: str, at: str | None, by: str) -> tuple[bool, str]:
        """Write the new state of `ref` on `target`, signed by this machine: (whether it changed,
        the time it takes effect). A revocation without `at` takes effect now, or keeps the time it
        has when `ref` is revoked already; an unchanged state is not written again, but signed by
        this machine too when its signature is not there yet (a second key toward trust.threshold)."""
        key = key_of(target, ref)
        state = "revoked" if revoked else "active"
        decided: list[str] = []
        signer = self.trust.signer()

        def change(there: Blob | None) -> bytes | None:
            doc: dict[str, Any] = {"target": target, "ref": ref, "history": []}
            envelope: dict[str, Any] | None = None
            if there is not None and _signed(there.data):
                envelope = documents.parse_object(there.data)
                doc = self._document(key, there.data)[0]
            elif there is not None:  # written unsigned by an earlier bakery: its history kept, signed from now on
                doc = self._legacy(key, there.data)
            same_state = doc.get("state", "active") == state
            when = at or (str(doc.get("at")) if same_state and revoked and doc.get("at") else now_iso())
            decided[:] = [when]
            if same_state and (not revoked or doc.get("at") == when):
                if envelope is None or _signed_by(envelope, signer_public_key(signer).keyid):
                    return None
                return _bytes(cosign(envelope, signer))  # the same document, one more signature
            entry = {"state": state, "at": when, "reason": reason, "by": by, "time": now_iso()}
            doc.update(entry)
            doc["history"] = [*doc.get("history", []), entry]
            payload = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
            return _bytes(sign(payload, REVOCATION_PAYLOAD_TYPE, [signer]))

        changed = update(self.trust.store, key, change)
        return changed, decided[0]


_RESIGN = "run the same `bakery revoke` or `unrevoke` again: it writes the document signed"


def _signed(data: bytes) -> bool:
    try:
        return "payloadType" in documents.parse_object(data)
    except ValueError:
        return False


def _signed_by(envelope: Mapping[str, Any], keyid: str) -> bool:
    signatures = envelope.get("signatures")
    return isinstance(signatures, list) and any(isinstance(s, dict) and s.get("keyid") == keyid for s in signatures)


def _bytes(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n"


def _last_revocation(doc: Mapping[str, Any], key: str, revocations: Revocations) -> dict[str, Any]:
    """The fields of the newest revoked entry in `doc`'s history (what an unrevoke signed by too
    few keys leaves in force)."""
    history = doc.get("history")
    entries = (
        [e for e in history if isinstance(e, dict) and e.get("state") == "revoked"] if isinstance(history, list) else []
    )
    if not entries:
        raise revocations._unreadable(key, "an unrevoke signed by too few keys, with no revocation in its history")
    return {name: entries[-1].get(name) for name in ("at", "reason", "by", "time")}


def revocation_of(
    record: ImageRecord,
    table: Mapping[tuple[str, str], Revocation],
    records: Mapping[str, ImageRecord],
    parents: Callable[[ImageRecord], Iterable[str]] | None = None,
) -> Revocation | None:
    """`record`'s own revocation, else the nearest revoked ancestor's (records: ref -> record on
    the same target, to follow parent references). `parents` names each record's parents (by
    default its `parent` field: the tags); an ancestry that claims more than one (a signed
    statement and tags that disagree) is followed along every claim, never fewer. Scheduled
    revocations are returned too: ask `effective()`."""
    parents_of = parents or (lambda r: [r.parent] if r.parent else [])
    seen: set[str] = set()
    level: list[tuple[str, ImageRecord | None]] = [(record.ref, record)]
    while level:  # breadth first: the nearest revoked ancestor wins
        below: list[tuple[str, ImageRecord | None]] = []
        for ref, current in level:
            if ref in seen:
                continue  # a loop, or two paths to one ancestor
            seen.add(ref)
            found = table.get((record.target, ref))
            if found is not None:
                return found if ref == record.ref else found.inherited(record.ref)
            if current is None:
                continue  # an ancestor no longer in the catalog still passed its revocation on above
            below += [(parent, records.get(parent)) for parent in parents_of(current) if parent]
        level = below
    return None


def _same_time(logged: str, documented: str) -> bool:
    """Whether the log's `at` and a document's name one moment (a log written before events
    recorded `at` says nothing against it)."""
    if not logged:
        return True
    try:
        return parse_time(logged) == parse_time(documented)
    except UsageError:
        return False


def marks_disagree(
    record: ImageRecord,
    found: Revocation | None,
    records: Mapping[str, ImageRecord] | None = None,
    parents: Callable[[ImageRecord], Iterable[str]] | None = None,
) -> str | None:
    """Why `record` cannot be taken as not revoked although the registry says so (`found`: its
    revocation there, own or inherited, None): the image, or an ancestor (`records`: ref ->
    record on the same target, followed along `parents` as revocation_of does), carries a
    revocation mark of its own. A deleted revocation document, or an unrevoke whose clearing of
    the marks did not finish. None when the registry and the images agree."""
    if found is not None:
        return None
    parents_of = parents or (lambda r: [r.parent] if r.parent else [])
    seen: set[str] = set()
    level = [record]
    while level:
        below: list[ImageRecord] = []
        for current in level:
            if current.ref in seen:
                continue
            seen.add(current.ref)
            if current.revoked_marks:
                whose = "the image itself" if current is record else f"its ancestor {current.ref}"
                return (
                    f"the registry holds no revocation for {current.ref} on {current.target}, but {whose} is marked "
                    f"revoked ({'; '.join(current.revoked_marks)}): the registry and the image disagree (a deleted "
                    "revocation document, or an unfinished unrevoke)"
                )
            below += [r for p in parents_of(current) if p and (r := (records or {}).get(p)) is not None]
        level = below
    return None


def descendants(ref: str, records: Iterable[ImageRecord]) -> list[ImageRecord]:
    """Every record built on `ref` at any depth (its children, their children ...)."""
    by_ref = {r.ref: r for r in records}

    def descends(record: ImageRecord) -> bool:
        seen: set[str] = set()
        parent = record.parent
        while parent and parent not in seen:
            if parent == ref:
                return True
            seen.add(parent)
            parent = by_ref[parent].parent if parent in by_ref else None
        return False

    return sorted((r for r in by_ref.values() if descends(r)), key=lambda r: r.ref)
