"""The seal a signed audit head carries: "every event up to seq V verified, under these keys".

Checking 10,000 ed25519 signatures one by one costs about 1.4 s on a small machine, so a full
`audit verify` could not stay under a second. Every event is still signed by its writer and
hash-chained to the one before it; in addition, the writer that moves audit/head.json to its own
event N signs there the seal {"seq": N, "keys": [...], "threshold": t} once it has itself checked,
under its trusted keys, every event between the newest seal it trusts and N: their signatures
and their links. As in a transparency log's signed tree head, the head's digest fixes every
event before it through the chain, so a verifier that trusts the head's signer and every key
the seal names needs to check only the head's signature, the chain's hashes, and the
signatures of the events after the seal.

A seal is only as good as the checks behind it, so it is extended, never taken on faith: its
writer starts from the newest seal whose head verifies under its own keys (or from where its
witness says this machine verified the log), reads the events after it, and seals only as far as
their signatures and links hold. A head without a seal (logs written before seals, or by a
writer with no trusted keys) seals nothing: every event's own signature is checked, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bakery.core import documents
from bakery.core.jcs import jcs_bytes, sha256
from bakery.errors import BakeryError, TrustError
from bakery.registry.base import Blob, Store
from bakery.trust.audit_chain import (
    HEAD_PAYLOAD_TYPE,
    Event,
    decode_event,
    event_key,
    open_envelope,
    read_head,
)
from bakery.trust.signing import AUDIT_PAYLOAD_TYPE, PublicKey, Verified, verify, verify_many
from bakery.trust.witness import Mark

MAX_SEAL_KEYS = 64  # a seal read back is untrusted: no project lists more trusted keys than this


@dataclass(frozen=True)
class Seal:
    seq: int  # events 1..seq were verified by the head's signer
    keys: tuple[str, ...]  # the keyids whose signatures it accepted
    threshold: int  # distinct trusted signatures it required of each event


def head_payload(seq: int, digest: str, seal: Seal | None) -> bytes:
    """The head's canonical payload: the newest event's seq and digest, and the seal if any."""
    document: dict[str, Any] = {"seq": seq, "digest": digest}
    if seal is not None:
        document["sealed"] = {"seq": seal.seq, "keys": list(seal.keys), "threshold": seal.threshold}
    return jcs_bytes(document)


def read_seal(document: dict[str, Any], head_seq: int) -> Seal | None:
    """The seal a verified head's payload carries, or None when it carries none. Raises
    ValueError for one that is malformed (read back, so untrusted even when signed)."""
    sealed = document.get("sealed")
    if sealed is None:
        return None
    if not isinstance(sealed, dict) or sealed.keys() != {"seq", "keys", "threshold"}:
        raise ValueError("its seal is not an object of seq, keys and threshold")
    seq, keys, threshold = sealed["seq"], sealed["keys"], sealed["threshold"]
    if type(seq) is not int or not 1 <= seq <= head_seq:
        raise ValueError(f"its seal's seq is not a seq from 1 to the head's {head_seq}")
    if type(threshold) is not int or threshold < 1:
        raise ValueError("its seal's threshold is not a positive integer")
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_SEAL_KEYS or any(type(k) is not str for k in keys):
        raise ValueError(f"its seal's keys are not a list of 1 to {MAX_SEAL_KEYS} keyids")
    return Seal(seq, tuple(keys), threshold)


def covers(seal: Seal, keys: Sequence[PublicKey], threshold: int) -> bool:
    """Whether a verifier trusting `keys` at `threshold` may rely on `seal`: it accepted no key
    the verifier does not trust, and asked at least as many signatures of each event."""
    return set(seal.keys) <= {key.keyid for key in keys} and seal.threshold >= threshold


def trusted_seal(head: Blob | None, keys: Sequence[PublicKey], threshold: int) -> tuple[int, str, Seal] | None:
    """(head seq, head digest, seal) of a head whose signatures verify under `keys` and whose
    seal a verifier trusting `keys` may rely on; None otherwise (no head, no seal, not trusted)."""
    if head is None or not keys:
        return None
    try:
        envelope, _ = open_envelope(head.data, HEAD_PAYLOAD_TYPE)
        payload = verify(envelope, keys, threshold, payload_type=HEAD_PAYLOAD_TYPE).payload
        seq, digest = read_head(payload)
        seal = read_seal(documents.parse_object(payload), seq)
    except (TrustError, ValueError):
        return None
    if seal is None or not covers(seal, keys, threshold):
        return None
    return seq, digest, seal


def extend(
    store: Store,
    head: Blob | None,
    event: Event,
    *,
    keys: Sequence[PublicKey],
    threshold: int,
    own_keyid: str | None,
    remembered: Mark,
) -> Seal | None:
    """The seal the head moved to `event` (just appended by this writer, signed by `own_keyid`)
    may carry: as far as this writer has itself verified the log under `keys`, from the newest
    trusted seal in `head` or the mark this machine `remembered` verifying, through `event`.
    None when it cannot vouch for `event` (no trusted keys, its own key not among them, a
    threshold above one, a link that does not hold); never raises for what it reads."""
    keyids = tuple(sorted(key.keyid for key in keys))
    if not keys or own_keyid not in keyids or threshold != 1:
        return None
    if remembered.seq >= event.seq:
        remembered = Mark(0, "")  # another process of this machine verified past this event: not ours to use
    base, anchor, anchor_digest = _start(head, keys, threshold, remembered)
    if base == event.seq - 1 == anchor and anchor_digest == event.prev:
        return Seal(event.seq, keyids, threshold)  # the common case: nothing between the seal and this event
    try:
        upto = _checked(store, base, anchor, anchor_digest, event, keys, threshold)
    except (BakeryError, ValueError):
        return None  # unreadable here is unverified: the next writer or `audit verify` sees it
    return Seal(upto, keyids, threshold) if upto else None


def _start(head: Blob | None, keys: Sequence[PublicKey], threshold: int, remembered: Mark) -> tuple[int, int, str]:
    """(seq verified up to, anchor seq, anchor digest): the anchor's digest fixes every event up
    to it. From the head's trusted seal or this machine's witness (when what it verified was
    checked under keys all still trusted), whichever reaches further; (0, 0, "") for neither."""
    found = trusted_seal(head, keys, threshold)
    from_head = (found[2].seq, found[0], found[1]) if found else (0, 0, "")
    vouches = remembered.seq and remembered.covered_by((key.keyid for key in keys), threshold)
    from_witness = (remembered.seq, remembered.seq, remembered.digest) if vouches else (0, 0, "")
    return max(from_head, from_witness)


def _checked(
    store: Store,
    base: int,
    anchor: int,
    anchor_digest: str,
    event: Event,
    keys: Sequence[PublicKey],
    threshold: int,
) -> int:
    """The newest seq up to which events base+1..event verify: their signatures, their links,
    and the anchor's digest. 0 when a link or the anchor does not hold (nothing can be sealed).
    Raises BakeryError for a store that fails, ValueError for an object that is no event."""
    seqs = list(range(max(base, 1), event.seq))
    blobs = store.get_many([event_key(seq) for seq in seqs])
    opened = {}
    for seq in seqs:
        blob = blobs.get(event_key(seq))
        if blob is None:
            return 0
        opened[seq] = open_envelope(blob.data, AUDIT_PAYLOAD_TYPE)
    digests = {seq: sha256(payload) for seq, (_envelope, payload) in opened.items()}
    if anchor and digests.get(anchor) != anchor_digest:
        return 0
    digests[event.seq] = event.digest
    prev = {seq: decode_event(payload).prev for seq, (_envelope, payload) in opened.items()} | {event.seq: event.prev}
    for seq in range(base + 1, event.seq + 1):
        if prev[seq] != digests.get(seq - 1, ""):
            return 0
    checking = [seq for seq in seqs if seq > base]
    results = verify_many([opened[seq][0] for seq in checking], keys, threshold, AUDIT_PAYLOAD_TYPE)
    for seq, result in zip(checking, results, strict=True):
        if not isinstance(result, Verified):
            return seq - 1 if seq - 1 >= base else 0
    return event.seq
