"""The audit chain's reading (bakery/trust/audit_chain.py), on stored objects made here: object names,
envelopes and events refused with the reason, and `check()` naming gaps, forks and the head's
disagreements. The log as written by AuditLog is in tests/unit/trust/test_audit.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from securesystemslib.signer import CryptoSigner

from bakery.core.jcs import jcs_bytes, sha256
from bakery.registry.base import Blob
from bakery.trust.audit_chain import (
    HEAD,
    HEAD_PAYLOAD_TYPE,
    _runs,
    check,
    decode_event,
    event_key,
    open_envelope,
    read_head,
    seq_of,
)
from bakery.trust.signing import AUDIT_PAYLOAD_TYPE, PublicKey, sign


def document(seq: int, prev: str, action: str = "build") -> dict[str, Any]:
    return {
        "seq": seq,
        "prev": prev,
        "time": f"2026-11-27T05:0{seq % 10}:00Z",
        "who": "alice@host",
        "action": action,
        "subject": f"web@1.0.{seq} on local",
        "policy": "",
        "result": "ok",
        "details": {},
    }


def chain(count: int, signer: CryptoSigner) -> tuple[dict[str, Blob], Blob]:
    """`count` events linked by digest, signed by `signer`, and the head naming the newest."""
    blobs: dict[str, Blob] = {}
    prev = ""
    for seq in range(1, count + 1):
        payload = jcs_bytes(document(seq, prev))
        blobs[event_key(seq)] = Blob(json.dumps(sign(payload, AUDIT_PAYLOAD_TYPE, [signer])).encode(), str(seq))
        prev = sha256(payload)
    head = jcs_bytes({"seq": count, "digest": prev})
    return blobs, Blob(json.dumps(sign(head, HEAD_PAYLOAD_TYPE, [signer])).encode(), "head")


def keys(signer: CryptoSigner) -> list[PublicKey]:
    return [PublicKey("ops", signer.public_key.keyid, signer.public_key)]


def said(blobs: dict[str, Blob], head: Blob | None, signer: CryptoSigner) -> list[tuple[int, str]]:
    report = check(blobs, head, keys=keys(signer), threshold=1)
    return [(p.seq, p.what) for p in report.problems]


def test_event_objects_are_named_by_their_seq_in_twelve_digits() -> None:
    assert event_key(7) == "audit/events/000000000007.json"
    assert seq_of("audit/events/000000000007.json") == 7
    assert seq_of("audit/events/7.json") is None
    assert seq_of("audit/head.json") is None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{not json", "not JSON ("),
        (b'{"payload": "e30="}', "not a DSSE envelope"),
        (b'{"signatures": [], "payloadType": "text/plain", "payload": "e30="}', "payloadType is 'text/plain', not "),
        (b'{"signatures": [], "payloadType": "%s", "payload": "**"}' % AUDIT_PAYLOAD_TYPE.encode(), "not base64"),
    ],
)
def test_an_envelope_that_is_not_one_says_why(data: bytes, why: str) -> None:
    with pytest.raises(ValueError) as refused:
        open_envelope(data, AUDIT_PAYLOAD_TYPE)
    assert why in str(refused.value)


def test_an_envelope_gives_back_its_payload_unchecked() -> None:
    payload = jcs_bytes(document(1, ""))
    envelope = {"signatures": [], "payloadType": AUDIT_PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode()}
    assert open_envelope(json.dumps(envelope).encode(), AUDIT_PAYLOAD_TYPE) == (envelope, payload)


def test_an_event_is_its_fields_and_the_digest_of_its_payload() -> None:
    payload = jcs_bytes(document(3, "sha256:ab", action="rollout"))
    event = decode_event(payload)
    assert (event.seq, event.prev, event.action, event.digest) == (3, "sha256:ab", "rollout", sha256(payload))
    assert event.document() == document(3, "sha256:ab", action="rollout")
    assert event.label == "rollout web@1.0.3 on local by alice@host"


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"extra": 1}, "its payload is not an audit event (fields: seq, prev, time, who, action"),
        ({"seq": 0}, "its seq is not a positive integer or its details not an object"),
        ({"seq": True}, "its seq is not a positive integer"),
        ({"details": []}, "its details not an object"),
        ({"who": 7}, "one of prev, time, who, action, subject, policy, result is not a string"),
    ],
)
def test_a_payload_that_is_no_event_says_why(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError) as refused:
        decode_event(jcs_bytes({**document(1, ""), **changes}))
    assert why in str(refused.value)
    with pytest.raises(ValueError, match="its payload is not JSON"):
        decode_event(b"{not json")


def test_a_head_records_a_seq_and_a_digest() -> None:
    assert read_head(b'{"seq": 4, "digest": "sha256:ab"}') == (4, "sha256:ab")
    for bad in (b'{"seq": 0, "digest": "x"}', b'{"seq": 4}', b'{"seq": "4", "digest": "x"}'):
        with pytest.raises(ValueError, match="its payload has no seq and digest"):
            read_head(bad)
    with pytest.raises(ValueError, match="its payload is a JSON list, not an object"):
        read_head(b"[4]")


def test_runs_of_consecutive_numbers() -> None:
    assert _runs([1, 2, 3, 5, 7, 8]) == [(1, 3), (5, 5), (7, 8)]
    assert _runs([]) == []


def test_a_sound_chain_has_no_problem(ops: CryptoSigner) -> None:
    blobs, head = chain(3, ops)
    report = check(blobs, head, keys=keys(ops), threshold=1)
    assert (report.ok, report.events, report.head, report.signatures_checked) == (True, 3, 3, True)
    assert check({}, None, keys=keys(ops), threshold=1).ok


def test_removed_events_in_the_middle_are_named_as_one_run(ops: CryptoSigner) -> None:
    blobs, head = chain(5, ops)
    del blobs[event_key(2)], blobs[event_key(3)]
    assert said(blobs, head, ops) == [(2, "events 2..3 are missing (removed?)")]


def test_removed_newest_events_are_named_by_the_head(ops: CryptoSigner) -> None:
    blobs, head = chain(4, ops)
    del blobs[event_key(4)]
    assert said(blobs, head, ops) == [(4, "event 4 was removed (the head records 4)")]
    assert said(blobs, None, ops) == [
        (
            3,
            f"the head ({HEAD}) is missing: it records the newest event, so removed newest events cannot be ruled"
            " out (nothing more is appended until it is restored)",
        )
    ]


def test_an_unreadable_object_is_named_at_its_place(ops: CryptoSigner) -> None:
    blobs, head = chain(3, ops)
    blobs[event_key(2)] = Blob(b"junk", "x")
    problems = said(blobs, head, ops)
    assert problems[0][0] == 2
    assert problems[0][1].startswith(f"event 2 ({event_key(2)}) is not a readable audit event: not JSON")
    assert not any("missing" in what for _, what in problems)  # unreadable is not also missing


def test_an_event_stored_in_the_place_of_another_is_out_of_order(ops: CryptoSigner) -> None:
    blobs, head = chain(3, ops)
    blobs[event_key(2)], blobs[event_key(3)] = blobs[event_key(3)], blobs[event_key(2)]
    problems = said(blobs, head, ops)
    assert (2, "event 2 (build web@1.0.2 on local by alice@host) is out of order: it is stored as "
            f"{event_key(3)}, the place of event 3") in problems  # fmt: skip


def test_an_event_signed_by_a_key_that_is_not_trusted_is_named(ops: CryptoSigner) -> None:
    stranger = CryptoSigner.generate_ed25519()
    blobs, head = chain(2, ops)
    forged, _ = chain(2, stranger)
    blobs[event_key(2)] = forged[event_key(2)]
    problems = said(blobs, head, ops)
    assert problems[0][0] == 2
    assert problems[0][1].startswith(
        "event 2 (build web@1.0.2 on local by alice@host) is signed by a key that is not trusted ("
    )
    assert problems[0][1].endswith("); trusted: ops")


def test_without_keys_signatures_are_not_checked_and_the_report_says_why(ops: CryptoSigner) -> None:
    blobs, head = chain(2, ops)
    report = check(blobs, head, keys=[], threshold=1)
    assert report.ok and not report.signatures_checked
    assert report.unchecked_why == "no trusted keys are configured (trust.keys in images.yaml)"
