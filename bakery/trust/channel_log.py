"""A channel's history held to the signed audit log: a history is trusted only when the log
records it. Every move (promote, rollback, fall-back) of the history needs an audit event of
`bakery promote`, `bakery promote --rollback` or `bakery revoke` naming the same channel, target,
image, seq and version, and (in events of bakery since it names them) the move's statement digest
and provenance. Moves are written ahead: the event (result "intended", naming the finished move's
digest) is appended before the move is written, and a small "ok" event after; so a move whose
process died between the two writes still has its intent, and a move with no event at all was
written past bakery: the channel is not trusted (TrustError) at once, as for a history that went
back (the log records more moves, by their "ok" events, than it holds). An intent naming no move of
the history (its write lost a race and was made again, or its process died before writing) is
ignored; events are matched to moves by the move's digest, so an intent for seq N with another
digest never stands for the move N there is.

A promotion into a channel with `approvals: N` carries the approvals' signed envelopes; each is
verified again here: N distinct trusted keys approving that version with that provenance, none the
key that signed the move nor the person who made it. A promotion whose `--override-gate approvals`
is in its statement and in the audit log (its override-gate event, appended before the move) needs
none."""

from __future__ import annotations

from bakery.core.identity import person
from bakery.errors import TrustError
from bakery.trust.approvals import Approvals
from bakery.trust.audit_facts import LoggedMove, channel_key
from bakery.trust.channel_model import Channel, Move, key_of
from bakery.trust.context import TrustContext


def held_to_the_log(trust: TrustContext, key: str, found: Channel) -> Channel:
    """`found`, once every move of it is in the verified audit log and every promotion's
    approvals hold. Raises TrustError naming the first move that is not, or when the log records
    more moves than `found` holds."""
    not_behind(trust, key, found)
    ours = channel_key(found.channel, found.target, found.image)
    events = trust.logged().moves.get(ours, {})
    if any(not _events_of(events, move) for move in found.moves):
        # The log as this command read it may predate a move just written: its intent was
        # appended before the move, so the log read now has it if bakery wrote it.
        trust.forget_log()
        events = trust.logged().moves.get(ours, {})
    for move in found.moves:
        # Approvals first: a move forged with too few says so, more precisely than its missing event.
        short = _approvals_short(trust, found, move, trust.logged().overrides)
        if short:
            raise _untrusted(trust, key, found, f"move {move.seq} ({_what(move)}) {short}")
        mine = _events_of(events, move)
        if not mine:
            raise _untrusted(trust, key, found, f"move {move.seq} ({_what(move)}) has no event in the audit log")
        for event in mine:
            if differs := _differs(event, move):
                raise _untrusted(trust, key, found, f"move {move.seq} ({_what(move)}) {differs}")
    return found


def confirmed(trust: TrustContext, channel: Channel, move: Move) -> bool:
    """Whether the audit log has the "ok" event of `move` (appended after it was written), not
    only its intent."""
    events = trust.logged().moves.get(channel_key(channel.channel, channel.target, channel.image), {})
    return any(e.move == move.digest and not e.intended for e in events.get(move.seq, []))


def _events_of(events: dict[int, list[LoggedMove]], move: Move) -> list[LoggedMove]:
    """The events that stand for `move`: the ones naming its digest; else (events of bakery from
    before they named it) the newest "ok" event of its seq naming none. An "ok" event naming another
    digest stands for it too, to be refused: the move was replaced after it was recorded."""
    at = events.get(move.seq, [])
    named = [e for e in at if e.move == move.digest]
    replaced = [e for e in at if e.move and e.move != move.digest and not e.intended]
    if replaced:
        return [*named, *replaced]
    if named:
        return named
    legacy = [e for e in at if not e.move and not e.intended]
    return legacy[-1:]


def not_behind(trust: TrustContext, key: str, found: Channel) -> None:
    """Raise TrustError when the verified audit log records more moves of the channel than `found`
    holds: a history cut short (or deleted) would move the channel back to an older head."""
    logged = trust.log().channels.get(channel_key(found.channel, found.target, found.image), 0)
    holds = found.moves[-1].seq if found.moves else 0
    if logged > holds:
        now = f"ends at move {holds}" if holds else "is gone"
        raise TrustError(
            f"the history of channel {found.channel} for {found.image} on {found.target} went back: the signed "
            f"audit log records its move {logged}, but {key} in {trust.store.where} {now}",
            hint="restore the channel's document from a backup of the registry; until then nothing follows it",
        )


def behind_gone(trust: TrustContext, held: set[str]) -> None:
    """Raise TrustError for a channel history the audit log records that is gone whole (`held`:
    the channel_keys of the histories there are)."""
    for gone in sorted(set(trust.log().channels) - held):
        channel, target, image = gone.split(" ", 2)
        not_behind(trust, key_of(channel, target, image), Channel(channel, target, image))


def _what(move: Move) -> str:
    return f"{move.action} to {move.version or 'none'}"


def _differs(event: LoggedMove, move: Move) -> str:
    """What the audit event of a move says that the move does not ('' when they agree)."""
    if event.action != move.action or event.version != move.version:
        return f"is not the move its audit event records ({event.action} to {event.version or 'none'})"
    if event.move and event.move != move.digest:
        return "is not the signed move its audit event names (another statement with the same seq)"
    if event.provenance and event.provenance != move.provenance:
        return f"names provenance {move.provenance[:19]}…, its audit event {event.provenance[:19]}…"
    return ""


def _approvals_short(trust: TrustContext, channel: Channel, move: Move, overrides: frozenset[tuple[str, str]]) -> str:
    """Why the approvals a promotion carries fall short of the channel's `approvals: N` ('' when
    they hold, the channel asks none, or the gate's override is in the move and in the log)."""
    config = trust.project.config.channels.get(channel.channel)
    needed = config.approvals if config is not None else 0
    if move.action != "promote" or not needed or move.version is None:
        return ""
    subject = f"{channel.image}@{move.version} on {channel.target} to channel {channel.channel}"
    if any(o.get("gate") == "approvals" for o in move.overrides) and (subject, "approvals") in overrides:
        return ""
    signers = {k.keyid for k in trust.keys if k.name in move.signed_by}
    mover = person(move.by) if move.by else ""
    wanted = (channel.channel, channel.image, move.version, channel.target)
    approvals = Approvals(trust)
    counted: set[str] = set()
    for each in move.approvals:
        envelope = each.get("envelope")
        if not isinstance(envelope, dict):
            continue
        found = approvals.check(envelope, wanted, named=str(each.get("keyid", "")), where=f"move {move.seq}")
        if found.problem or found.provenance != move.provenance or found.keyid in signers:
            continue
        if mover and found.by and person(found.by) == mover:
            continue
        counted.add(found.keyid)
    if len(counted) >= needed:
        return ""
    return (
        f"carries {len(counted)} valid approval{'s' if len(counted) != 1 else ''} of the {needed} channel "
        f"{channel.channel} needs (signed approvals of this version and provenance by distinct trusted keys, none "
        "by the key that signed the move or the person who made it)"
    )


def _untrusted(trust: TrustContext, key: str, found: Channel, why: str) -> TrustError:
    return TrustError(
        f"channel {found.channel} for {found.image} on {found.target} cannot be trusted: {why} ({key} in "
        f"{trust.store.where}); nothing follows it until it can",
        hint="a move bakery did not record was written into the channel's history (or its process died before "
        "recording it): restore the document from a backup of the registry, and promote again",
    )
