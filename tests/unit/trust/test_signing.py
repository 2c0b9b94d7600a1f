"""DSSE signing and verification: what counts as a valid signature, and what each refusal says."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.signer import CryptoSigner

from bakery.errors import TrustError
from bakery.trust.signing import (
    AUDIT_PAYLOAD_TYPE,
    PAYLOAD_TYPE,
    PublicKey,
    Verified,
    cosign,
    short,
    sign,
    signer_public_key,
    verify,
    verify_many,
)

STATEMENT = {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "web", "digest": {"sha256": "ab" * 32}}]}
PAYLOAD = json.dumps(STATEMENT).encode()


def trusted(name: str, signer: CryptoSigner) -> PublicKey:
    return PublicKey(name, signer.public_key.keyid, signer.public_key)


@pytest.fixture(scope="module")
def ci() -> CryptoSigner:
    return CryptoSigner.generate_ecdsa()  # what an AWS or GCP KMS key looks like: ECDSA P-256


@pytest.fixture(scope="module")
def stranger() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def refusal(envelope: Any, keys: list[PublicKey], threshold: int = 1, payload_type: str = PAYLOAD_TYPE) -> TrustError:
    with pytest.raises(TrustError) as caught:
        verify(envelope, keys, threshold, payload_type=payload_type)
    return caught.value


def test_a_signed_payload_verifies_and_says_who_signed(ops: CryptoSigner) -> None:
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [ops])

    verified = verify(envelope, [trusted("ops-2026", ops)], 1, payload_type=PAYLOAD_TYPE)

    assert set(envelope) == {"payload", "payloadType", "signatures"}
    assert base64.b64decode(envelope["payload"]) == PAYLOAD
    assert envelope["signatures"][0]["keyid"] == ops.public_key.keyid
    assert verified == Verified(PAYLOAD, STATEMENT, ("ops-2026",))


def test_the_signature_is_over_the_exact_pae_bytes_of_the_dsse_spec(ops: CryptoSigner) -> None:
    envelope = sign(b"hello world", "http://example.com/HelloWorld", [ops])

    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(ops.public_key.keyval["public"]))
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    public.verify(signature, b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")  # raises if not


def test_an_ecdsa_key_signs_and_verifies_like_an_ed25519_key(ops: CryptoSigner, ci: CryptoSigner) -> None:
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [ops, ci])

    verified = verify(envelope, [trusted("ops", ops), trusted("ci", ci)], 2, payload_type=PAYLOAD_TYPE)

    assert verified.signed_by == ("ops", "ci")


def test_a_payload_changed_after_signing_names_the_key_whose_signature_broke(ops: CryptoSigner) -> None:
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [ops])
    envelope["payload"] = base64.b64encode(PAYLOAD.replace(b"ab", b"ac", 1)).decode()

    error = refusal(envelope, [trusted("ops-2026", ops)])

    assert error.message == "the signature by ops-2026 does not match the payload (changed after signing?)"
    assert error.problems[-1] == "no valid signature of the 1 trust.threshold needs"


def test_an_untrusted_key_is_named_with_the_keys_that_are_trusted(
    ops: CryptoSigner, ci: CryptoSigner, stranger: CryptoSigner
) -> None:
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [stranger])

    error = refusal(envelope, [trusted("ops-2026", ops), trusted("ci", ci)])

    assert error.message == (
        f"signed by key {stranger.public_key.keyid[:8]}… which is not in trust.keys "
        f"(trusted: ops-2026 {ops.public_key.keyid[:8]}…, ci {ci.public_key.keyid[:8]}…)"
    )
    assert error.hint is not None and "trust.keys" in error.hint


def test_with_no_trusted_key_every_signature_is_refused(ops: CryptoSigner) -> None:
    error = refusal(sign(PAYLOAD, PAYLOAD_TYPE, [ops]), [])

    assert error.message.endswith("which is not in trust.keys (no key is trusted)")


def test_one_good_signature_of_a_threshold_of_two_is_refused_with_the_counts(
    ops: CryptoSigner, ci: CryptoSigner
) -> None:
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [ops])

    error = refusal(envelope, [trusted("ops-2026", ops), trusted("ci", ci)], threshold=2)

    assert error.message == "1 valid signature (ops-2026) of the 2 trust.threshold needs"
    assert error.problems == (error.message,)


def test_two_signatures_by_the_same_key_count_once(ops: CryptoSigner, ci: CryptoSigner) -> None:
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [ops])
    envelope["signatures"].append(copy.deepcopy(envelope["signatures"][0]))

    error = refusal(envelope, [trusted("ops", ops), trusted("ci", ci)], threshold=2)

    assert error.message == "1 valid signature (ops) of the 2 trust.threshold needs"


def test_a_bad_second_signature_by_a_key_that_counted_is_not_a_problem(ops: CryptoSigner) -> None:
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [ops])
    forged = dict(envelope["signatures"][0], sig=base64.b64encode(b"\0" * 64).decode())
    envelope["signatures"].insert(0, forged)

    assert verify(envelope, [trusted("ops", ops)], 1, payload_type=PAYLOAD_TYPE).signed_by == ("ops",)


def test_an_envelope_in_url_safe_base64_verifies(ops: CryptoSigner) -> None:
    payload = b'{"note": "?>?>"}'  # standard base64 of this has '+' and '/'
    envelope = sign(payload, PAYLOAD_TYPE, [ops])
    url_safe = {
        **envelope,
        "payload": base64.urlsafe_b64encode(payload).decode(),
        "signatures": [{**s, "sig": s["sig"].replace("+", "-").replace("/", "_")} for s in envelope["signatures"]],
    }

    assert "+" in envelope["payload"] and url_safe["payload"] != envelope["payload"]
    assert verify(url_safe, [trusted("ops", ops)], 1, payload_type=PAYLOAD_TYPE).payload == payload


def test_cosign_adds_a_signature_over_the_same_payload(ops: CryptoSigner, ci: CryptoSigner) -> None:
    keys = [trusted("ops", ops), trusted("ci", ci)]
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [ops])

    both = cosign(envelope, ci)
    again = cosign(both, ci)  # the same key signing again replaces its signature

    assert both["payload"] == envelope["payload"]
    assert verify(both, keys, 2, payload_type=PAYLOAD_TYPE).signed_by == ("ops", "ci")
    assert [s["keyid"] for s in again["signatures"]] == [ops.public_key.keyid, ci.public_key.keyid]


def test_cosign_refuses_what_is_not_an_envelope(ops: CryptoSigner) -> None:
    with pytest.raises(TrustError, match="not DSSE JSON: no payload"):
        cosign({"payloadType": PAYLOAD_TYPE, "signatures": []}, ops)


def test_a_signature_without_a_keyid_is_tried_against_every_trusted_key(ops: CryptoSigner, ci: CryptoSigner) -> None:
    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [ops])
    del envelope["signatures"][0]["keyid"]

    assert verify(envelope, [trusted("ci", ci), trusted("ops", ops)], 1, payload_type=PAYLOAD_TYPE).signed_by == (
        "ops",
    )
    error = refusal(envelope, [trusted("ci", ci)])
    assert error.message.startswith("a signature names no keyid and matches none of the trusted keys (trusted: ci ")


def test_a_wrong_payload_type_is_refused(ops: CryptoSigner) -> None:
    envelope = sign(PAYLOAD, AUDIT_PAYLOAD_TYPE, [ops])

    error = refusal(envelope, [trusted("ops", ops)])

    assert error.message == "payloadType is 'application/vnd.bakery.audit+json', expected application/vnd.in-toto+json"


@pytest.mark.parametrize(
    ("envelope", "why"),
    [
        ([], "it is a JSON list, not an object"),
        ({"payloadType": PAYLOAD_TYPE, "signatures": []}, "no payload"),
        ({"payload": "e30=", "payloadType": PAYLOAD_TYPE, "signatures": {}}, "signatures is not a list"),
        ({"payload": "not base64!", "payloadType": PAYLOAD_TYPE, "signatures": []}, "payload is not valid base64"),
        ({"payload": "e30=", "payloadType": 7, "signatures": []}, "payloadType is not a string"),
        ({"payload": "e30=", "payloadType": PAYLOAD_TYPE, "signatures": ["x"]}, "signatures[0] is not an object"),
        (
            {"payload": "e30=", "payloadType": PAYLOAD_TYPE, "signatures": [{"keyid": "k", "sig": 5}]},
            "signatures[0].sig is not a base64 string",
        ),
    ],
)
def test_what_is_not_a_dsse_envelope_is_refused_saying_why(ops: CryptoSigner, envelope: Any, why: str) -> None:
    assert refusal(envelope, [trusted("ops", ops)]).message == f"the envelope is not DSSE JSON: {why}"


def test_an_envelope_without_signatures_is_refused(ops: CryptoSigner) -> None:
    envelope = {"payload": "e30=", "payloadType": PAYLOAD_TYPE, "signatures": []}

    assert refusal(envelope, [trusted("ops", ops)]).message == "the envelope has no signatures"


def test_the_payload_is_not_parsed_before_its_signature_checked(ops: CryptoSigner, stranger: CryptoSigner) -> None:
    untrusted = sign(b"{not json", PAYLOAD_TYPE, [stranger])
    trusted_garbage = sign(b"{not json", PAYLOAD_TYPE, [ops])

    assert "not in trust.keys" in refusal(untrusted, [trusted("ops", ops)]).message
    assert refusal(trusted_garbage, [trusted("ops", ops)]).message.startswith("the signed payload is not JSON")


def test_a_signed_payload_that_is_not_an_object_is_refused(ops: CryptoSigner) -> None:
    envelope = sign(b"[1, 2]", PAYLOAD_TYPE, [ops])

    assert refusal(envelope, [trusted("ops", ops)]).message == "the signed payload is a JSON list, not an object"


def test_verify_many_gives_each_envelope_its_own_result_in_order(ops: CryptoSigner, stranger: CryptoSigner) -> None:
    keys = [trusted("ops", ops)]
    envelopes: list[dict[str, Any]] = []
    for i in range(300):
        signer = stranger if i % 7 == 3 else ops
        envelope = sign(json.dumps({"n": i}).encode(), PAYLOAD_TYPE, [signer])
        if i % 11 == 5:
            envelope["payload"] = base64.b64encode(json.dumps({"n": -i}).encode()).decode()
        envelopes.append(envelope)

    results = verify_many(envelopes, keys, 1, PAYLOAD_TYPE, workers=3)

    assert len(results) == len(envelopes)
    for i, (envelope, result) in enumerate(zip(envelopes, results, strict=True)):
        if i % 7 == 3:
            assert isinstance(result, TrustError) and "not in trust.keys" in result.message
        elif i % 11 == 5:
            assert isinstance(result, TrustError) and "does not match the payload" in result.message
        else:
            assert result == verify(envelope, keys, 1, payload_type=PAYLOAD_TYPE)
            assert isinstance(result, Verified) and result.document == {"n": i}


def test_verify_many_of_nothing_is_nothing(ops: CryptoSigner) -> None:
    assert verify_many([], [trusted("ops", ops)], 1, PAYLOAD_TYPE) == []


def test_signer_public_key_names_the_signer(ops: CryptoSigner) -> None:
    key = signer_public_key(ops)

    assert key == PublicKey(f"key {short(ops.public_key.keyid)}", ops.public_key.keyid, ops.public_key)
