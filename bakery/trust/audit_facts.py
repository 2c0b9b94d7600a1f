"""What the verified audit log says, kept by the witness as it is followed: the newest revocation
state of each image, how many moves each channel history has had, and what each image's newest
test run found. The registry's own documents (revocations/, channels/, tests/) are held to them:
a document set back, cut short or deleted, while the signed log records more, is a rollback. The
newest `scan` event of an image names the digest of the scan statement it stored (scan/), and its
newest `build` event the digest of the SBOM statement the bake stored (sbom/): another one in the
registry, or none, is a replay or a deletion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bakery.trust.audit_chain import Event
from bakery.trust.witness import Revoked
from bakery.trust.witness import key as revocation_key

INTENDED = "intended"  # the result of a channel move's event appended before the move is written
# The events that move a channel's head, and how their subject names the channel.
_CHANNEL_MOVES = {"promote": " to channel ", "promote-rollback": " in channel ", "channel-fallback": " in channel "}


def channel_key(channel: str, target: str, image: str) -> str:
    return f"{channel} {target} {image}"


def revocation_in(event: Event) -> tuple[str, Revoked] | None:
    """The revocation state a revoke or unrevoke event records for its image and target."""
    if event.action not in ("revoke", "unrevoke") or event.result not in ("ok", "partial"):
        return None
    ref, sep, target = event.subject.partition(" on ")
    if not sep:
        return None
    state = "revoked" if event.action == "revoke" else "active"
    details = event.details
    at, reason = details.get("at", ""), details.get("reason", "")
    return revocation_key(target, ref), Revoked(state, event.seq, str(at), event.who, str(reason))


def channel_move_in(event: Event) -> tuple[str, int] | None:
    """(channel_key, the move's seq in its channel history) of an event that moved a head (its
    result "ok": written after the move): "web@1.0.1 on aws to channel stable" (promote), "web on
    aws in channel stable" (the others)."""
    return _channel_event(event) if event.result == "ok" else None


def _channel_event(event: Event) -> tuple[str, int] | None:
    """(channel_key, seq) of a channel move's event, whatever its result."""
    marker = _CHANNEL_MOVES.get(event.action)
    seq = event.details.get("seq")
    if marker is None or type(seq) is not int or seq < 1:
        return None
    named, sep, channel = event.subject.rpartition(marker)
    image_part, on, target = named.partition(" on ")
    if not sep or not on:
        return None
    return channel_key(channel, target, image_part.split("@", 1)[0]), seq


def test_key(target: str, ref: str) -> str:
    return f"{target} {ref}"


def test_in(event: Event) -> tuple[str, str] | None:
    """(test_key, "passed" or "failed") of a test event ("web@1.0.1 on aws")."""
    if event.action != "test" or event.result not in ("passed", "failed"):
        return None
    ref, sep, target = event.subject.partition(" on ")
    return (test_key(target, ref), event.result) if sep else None


@dataclass(frozen=True)
class LoggedMove:
    """What the audit event of one channel move says it moved."""

    action: str  # promote | rollback | fallback (the move's action in the channel history)
    version: str | None  # the head it left
    move: str  # the digest of the move's signed statement ('' in events of bakery before 0.x named it)
    provenance: str  # the provenance digest it was moved with ('' when the event does not say)
    # An intent (result "intended"), appended before the move was written: it vouches for the move
    # whose digest it names, and means nothing when no move has that digest (its write lost a race,
    # or its process died before writing). The others (result "ok") were appended after the write.
    intended: bool = False


@dataclass(frozen=True)
class Logged:
    """The channel moves and gate overrides the verified audit log records."""

    moves: dict[str, dict[int, list[LoggedMove]]] = field(default_factory=dict)  # channel_key -> seq -> events
    overrides: frozenset[tuple[str, str]] = frozenset()  # (promotion subject, gate)
    scans: dict[str, tuple[int, str]] = field(default_factory=dict)  # test_key -> (seq, statement digest), newest
    sboms: dict[str, tuple[int, str]] = field(default_factory=dict)  # test_key -> (seq, SBOM statement digest)


_ACTION_OF = {"promote": "promote", "promote-rollback": "rollback", "channel-fallback": "fallback"}


def logged(events: Iterable[Event]) -> Logged:
    """The channel moves (by channel, target and image, then seq) and the gate overrides of `events`
    (events of a log that verified)."""
    moves: dict[str, dict[int, list[LoggedMove]]] = {}
    overrides: set[tuple[str, str]] = set()
    scans: dict[str, tuple[int, str]] = {}
    sboms: dict[str, tuple[int, str]] = {}
    for event in events:
        if event.action == "override-gate" and event.result == "allowed":
            overrides.add((event.subject, str(event.details.get("gate", ""))))
        if (scanned := scan_in(event)) is not None:
            scans[scanned[0]] = (event.seq, scanned[1])
        if (built := sbom_in(event)) is not None and built[1] is not None:
            sboms[built[0]] = (event.seq, built[1])
        elif built is not None:  # a rebuild that stored no SBOM: none is recorded since
            sboms.pop(built[0], None)
        found = _channel_event(event) if event.result in ("ok", INTENDED) else None
        if found is None:
            continue
        details = event.details
        if event.action == "promote":
            named = event.subject.rpartition(" to channel ")[0].partition(" on ")[0]
            version: str | None = named.partition("@")[2] or None
        else:
            to = details.get("to")
            version = to if isinstance(to, str) else None
        move, provenance = details.get("move"), details.get("provenance")
        moves.setdefault(found[0], {}).setdefault(found[1], []).append(
            LoggedMove(
                _ACTION_OF[event.action],
                version,
                move if isinstance(move, str) else "",
                provenance if isinstance(provenance, str) else "",
                intended=event.result == INTENDED,
            )
        )
    return Logged(moves, frozenset(overrides), scans, sboms)


def scan_in(event: Event) -> tuple[str, str] | None:
    """(test_key, the digest of the scan statement stored) of a scan event ("web@1.0.1 on aws");
    None for events of bakery before they named it."""
    statement = event.details.get("statement")
    if event.action != "scan" or event.result != "ok" or not isinstance(statement, str) or not statement:
        return None
    ref, sep, target = event.subject.partition(" on ")
    return (test_key(target, ref), statement) if sep else None


def sbom_in(event: Event) -> tuple[str, str | None] | None:
    """(test_key, the digest of the SBOM statement it stored, None when it stored none) of a build
    event ("web@1.0.1 on aws")."""
    if event.action != "build" or event.result != "ok":
        return None
    ref, sep, target = event.subject.partition(" on ")
    statement = event.details.get("sbom")
    return (test_key(target, ref), statement if isinstance(statement, str) and statement else None) if sep else None
