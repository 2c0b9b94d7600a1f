"""Revocations in the registry: revocations/TARGET/IMAGE/VERSION.json, one document per image
version with its whole history (revoked, unrevoked, revoked again), written with conditional
replaces so two machines revoking at once never lose either write.

A revocation is inherited: an image built `from:` a revoked image (at any depth) is revoked too,
from the moment its ancestor's revocation takes effect. That is worked out when asked, from the
records' parent references, so a child baked after the revocation inherits it as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bakery.core import documents
from bakery.core.catalog import ImageRecord
from bakery.core.text import shown
from bakery.errors import TrustError, UsageError
from bakery.registry.base import Blob, update
from bakery.trust.context import TrustContext

PREFIX = "revocations/"
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
    def __init__(self, trust: TrustContext) -> None:
        self.trust = trust

    def table(self) -> dict[tuple[str, str], Revocation]:
        """Every image revoked by name (scheduled ones included): (target, ref) -> revocation.
        Raises TrustError naming an object that is not a revocation document."""
        store = self.trust.store
        out: dict[tuple[str, str], Revocation] = {}
        for key, blob in sorted(store.get_many(store.keys(PREFIX)).items()):
            doc = self._document(key, blob.data)
            if doc.get("state") == "revoked":
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
                out[(found.target, found.ref)] = found
        return out

    def _document(self, key: str, data: bytes) -> dict[str, Any]:
        try:
            return documents.parse_object(data)
        except ValueError as exc:
            raise self._unreadable(key, str(exc)) from None

    def _unreadable(self, key: str, why: str) -> TrustError:
        return TrustError(
            f"{key} in {self.trust.store.where} is not a revocation document: {why}",
            hint="fix or remove it (`bakery revoke`/`unrevoke` write them); every verify and rollout reads them",
        )

    def set(self, target: str, ref: str, *, revoked: bool, reason: str, at: str | None, by: str) -> tuple[bool, str]:
        """Write the new state of `ref` on `target`: (whether it changed, the time it takes
        effect). A revocation without `at` takes effect now, or keeps the time it has when `ref`
        is revoked already; an unchanged state is not written again."""
        key = key_of(target, ref)
        state = "revoked" if revoked else "active"
        decided: list[str] = []

        def change(there: Blob | None) -> bytes | None:
            doc: dict[str, Any] = (
                self._document(key, there.data) if there else {"target": target, "ref": ref, "history": []}
            )
            same_state = doc.get("state", "active") == state
            when = at or (str(doc.get("at")) if same_state and revoked and doc.get("at") else now_iso())
            decided[:] = [when]
            if same_state and (not revoked or doc.get("at") == when):
                return None
            entry = {"state": state, "at": when, "reason": reason, "by": by, "time": now_iso()}
            doc.update(entry)
            doc["history"] = [*doc.get("history", []), entry]
            return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"

        changed = update(self.trust.store, key, change)
        return changed, decided[0]


def revocation_of(
    record: ImageRecord,
    table: Mapping[tuple[str, str], Revocation],
    records: Mapping[str, ImageRecord],
) -> Revocation | None:
    """`record`'s own revocation, else the nearest revoked ancestor's (records: ref -> record on
    the same target, to follow parent references). Scheduled revocations are returned too: ask
    `effective()`."""
    seen: set[str] = set()
    ref: str | None = record.ref
    while ref is not None and ref not in seen:  # also past an ancestor no longer in the catalog
        seen.add(ref)
        found = table.get((record.target, ref))
        if found is not None:
            return found if ref == record.ref else found.inherited(record.ref)
        current = records.get(ref) if ref != record.ref else record
        ref = current.parent if current is not None else None
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
