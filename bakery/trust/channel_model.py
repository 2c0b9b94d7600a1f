"""A channel's history as values: its verified moves (`Move`), the history of one channel, target
and image (`Channel`) with its stack of heads, the head once unfit heads are skipped (`Head`), and
what a new move will record (`Proposal`). Read and written by bakery/trust/channels.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PREFIX = "channels/"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
Unfit = Callable[[str, str], "str | None"]  # (ref, its provenance as recorded) -> why it cannot be a head


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
