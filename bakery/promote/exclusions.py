"""Who may not approve a version for a channel: the person who built or promoted it cannot approve
it. Excluded are keys (trust.keys ids) and people (bakery.core.identity.person of a `who()`):

  the builder   the keys that signed its provenance, and the person its signed provenance names
                as having baked it (internalParameters.builtBy; a bake by an older bakery names
                no one, and only its keys are excluded then)
  the movers    the people and keys who moved it into the channel it is promoted from: the `by`
                and the signers of each move of that channel's signed history that made it the head
  the promoter  the key and the person promoting it now (only when it is being promoted)

A person is compared as `who()` names them: a CI actor's jobs are one person, but nothing links
an identity at a workstation ('alice@laptop') to one in CI ('github:alice@org/repo')."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bakery.core.identity import person
from bakery.trust.channels import Channel
from bakery.trust.context import TrustContext
from bakery.trust.verify import Verification

BUILT_IT = "built it (signed its provenance)"
BUILT_IT_PERSON = "built it (its signed provenance names them)"
PROMOTING = "is promoting it"


@dataclass(frozen=True)
class Excluded:
    """Why each excluded key and person may not approve (the text follows their name)."""

    keys: Mapping[str, str]  # keyid -> why
    people: Mapping[str, str]  # person -> why

    def key(self, keyid: str) -> str | None:
        return self.keys.get(keyid)

    def by(self, identity: str) -> str | None:
        return self.people.get(person(identity)) if identity else None


def keyids(trust: TrustContext, names: tuple[str, ...]) -> tuple[str, ...]:
    """The keyids of the trusted keys `names` names (a verification names the keys that signed)."""
    return tuple(k.keyid for k in trust.keys if k.name in names)


def excluded(
    trust: TrustContext,
    verification: Verification,
    version: str,
    source: Channel | None,
    *,
    promoter_key: str = "",
    promoter: str = "",
) -> Excluded:
    """Who may not approve `version` (verified as `verification`) when it comes from the channel
    history `source` (None: the channel names no promote_from), promoted by `promoter_key` and
    `promoter` ('': no one is promoting it yet)."""
    keys: dict[str, str] = {}
    people: dict[str, str] = {}
    for keyid in keyids(trust, verification.signed_by):
        keys.setdefault(keyid, BUILT_IT)
    if verification.built_by:
        people.setdefault(person(verification.built_by), BUILT_IT_PERSON)
    moves = source.was_head(version) if source is not None else []
    into = source.channel if source is not None else ""
    for move in moves:
        if move.by:
            people.setdefault(person(move.by), f"moved it into {into} (move {move.seq})")
        for keyid in keyids(trust, move.signed_by):
            keys.setdefault(keyid, f"signed its move into {into} (move {move.seq})")
    if promoter_key:
        keys.setdefault(promoter_key, PROMOTING)
    if promoter:
        people.setdefault(person(promoter), PROMOTING)
    return Excluded(keys, people)
