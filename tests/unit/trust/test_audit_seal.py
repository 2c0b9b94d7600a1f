"""The seal a signed audit head carries (bakery/trust/audit_seal.py): a writer seals only what it has
itself verified, a verifier relies on it only under keys it trusts and only while the chain holds,
and logs written before seals verify as they did."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner

from bakery.core.jcs import jcs_bytes
from bakery.registry.local import LocalStore
from bakery.trust.audit import AuditLog
from bakery.trust.audit_chain import HEAD, HEAD_PAYLOAD_TYPE
from bakery.trust.audit_seal import MAX_SEAL_KEYS, Seal, head_payload, read_seal
from bakery.trust.signing import sign
from bakery.trust.witness import Witness
from tests.unit.trust.conftest import build, edit_payload, event_file, problems, ticking, trusted


def head_document(registry: Path) -> dict[str, object]:
    envelope = json.loads((registry / HEAD).read_bytes())
    return dict(json.loads(base64.b64decode(envelope["payload"])))


def write_head(registry: Path, signer: CryptoSigner, payload: bytes) -> None:
    (registry / HEAD).write_text(json.dumps(sign(payload, HEAD_PAYLOAD_TYPE, [signer])))


def test_each_append_seals_the_head_up_to_its_own_event(registry: Path, log: AuditLog, ops: CryptoSigner) -> None:
    events = [build(log, f"1.0.{n}") for n in (1, 2, 3)]

    assert head_document(registry) == {
        "seq": 3,
        "digest": events[2].digest,
        "sealed": {"seq": 3, "keys": [ops.public_key.keyid], "threshold": 1},
    }
    report = log.verify()
    assert (report.ok, report.events, report.sealed) == (True, 3, 3)


def test_a_seal_vouches_for_the_signatures_of_the_events_it_covers(registry: Path, log: AuditLog) -> None:
    for n in (1, 2, 3):
        build(log, f"1.0.{n}")
    path = event_file(registry, 2)
    envelope = json.loads(path.read_bytes())
    envelope["signatures"] = []  # the payload unchanged: the chain and the sealed head still fix it
    path.write_text(json.dumps(envelope))

    assert log.verify().ok
    assert problems(AuditLog(log.store, signer=None, keys=log.keys)) == []
    # Once anything else is wrong, every signature is checked, and the stripped one is named.
    (registry / "audit" / "events" / f"{3:012d}.json").unlink()
    assert problems(log)[0] == (2, "event 2 (build web@1.0.2 on local by alice@host) is not signed")


def test_an_event_written_without_a_trusted_key_is_not_sealed_by_the_next_honest_append(
    registry: Path, log: AuditLog, ops: CryptoSigner
) -> None:
    build(log, "1.0.1")
    mallory = CryptoSigner.generate_ed25519()
    AuditLog(LocalStore(registry), signer=lambda: mallory, keys=[], clock=ticking()).append(
        action="revoke", subject="web@1.0.1 on local", result="ok", who="alice@host"
    )
    build(log, "1.0.3")  # chains onto mallory's event: its head is signed by a trusted key

    assert head_document(registry)["sealed"] == {"seq": 1, "keys": [ops.public_key.keyid], "threshold": 1}
    report = log.verify()
    assert report.sealed == 0  # something is wrong: every signature was checked
    assert [(p.seq, p.what) for p in report.problems] == [
        (
            2,
            f"event 2 (revoke web@1.0.1 on local by alice@host) is signed by a key that is not trusted"
            f" ({mallory.public_key.keyid[:8]}…); trusted: ops-2026",
        )
    ]


def test_rewritten_events_under_a_sealed_head_are_named_as_before(registry: Path, log: AuditLog) -> None:
    events = [build(log, f"1.0.{n}") for n in (1, 2, 3)]
    # No key: event 2 rewritten, and event 3 re-linked to it, so the chain holds up to the head.
    second = edit_payload(event_file(registry, 2).read_bytes(), who="mallory@host")
    event_file(registry, 2).write_bytes(second)
    digest = AuditLog(log.store, signer=None, keys=[]).events()[1].digest
    event_file(registry, 3).write_bytes(edit_payload(event_file(registry, 3).read_bytes(), prev=digest))

    found = problems(log)
    assert found[0] == (
        2,
        "event 2 (build web@1.0.2 on local by mallory@host) was changed: its signature by ops-2026 does not match",
    )
    assert found[-1] == (
        3,
        f"event 3 ({events[2].label}) was changed after it was written: its digest no longer matches the one the"
        " head records",
    )


def test_a_seal_naming_a_key_the_verifier_does_not_trust_is_not_relied_on(
    registry: Path, log: AuditLog, ops: CryptoSigner
) -> None:
    events = [build(log, f"1.0.{n}") for n in (1, 2)]
    other = CryptoSigner.generate_ed25519()
    seal = Seal(2, (ops.public_key.keyid, other.public_key.keyid), 1)
    write_head(registry, ops, head_payload(2, events[1].digest, seal))

    report = log.verify()
    assert (report.ok, report.sealed) == (True, 0)  # checked signature by signature
    both = AuditLog(log.store, signer=None, keys=[trusted(ops), trusted(other, "ops-2027")])
    assert both.verify().sealed == 2


def test_a_seal_in_a_head_not_signed_by_a_trusted_key_is_not_relied_on(registry: Path, log: AuditLog) -> None:
    events = [build(log, f"1.0.{n}") for n in (1, 2)]
    mallory = CryptoSigner.generate_ed25519()
    seal = Seal(2, (log.keys[0].keyid,), 1)
    write_head(registry, mallory, head_payload(2, events[1].digest, seal))

    report = log.verify()
    assert report.sealed == 0
    assert report.problems[0].what.startswith("the head (audit/head.json) was changed or not signed by a trusted key")


def test_a_log_written_before_seals_verifies_and_is_sealed_by_its_next_append(
    registry: Path, ops: CryptoSigner, tmp_path: Path
) -> None:
    log = AuditLog(LocalStore(registry), signer=lambda: ops, keys=[trusted(ops)], clock=ticking())
    events = [build(log, f"1.0.{n}") for n in (1, 2, 3)]
    write_head(registry, ops, jcs_bytes({"seq": 3, "digest": events[2].digest}))  # as bakery wrote it before

    assert (log.verify().ok, log.verify().sealed) == (True, 0)
    # A writer that has verified nothing of it yet checks all of it before it seals.
    fresh = AuditLog(
        LocalStore(registry),
        signer=lambda: ops,
        keys=[trusted(ops)],
        clock=ticking(),
        witness=Witness(tmp_path / "witness.json", "registry"),
    )
    build(fresh, "1.0.4")
    assert head_document(registry)["sealed"] == {"seq": 4, "keys": [ops.public_key.keyid], "threshold": 1}
    assert (fresh.verify().ok, fresh.verify().sealed) == (True, 4)


def test_a_writer_without_trusted_keys_seals_nothing(registry: Path, ops: CryptoSigner) -> None:
    log = AuditLog(LocalStore(registry), signer=lambda: ops, keys=[], clock=ticking())
    build(log, "1.0.1")

    assert "sealed" not in head_document(registry)


@pytest.mark.parametrize(
    ("sealed", "why"),
    [
        ({"seq": 2, "keys": ["k"]}, "its seal is not an object of seq, keys and threshold"),
        ({"seq": 5, "keys": ["k"], "threshold": 1}, "its seal's seq is not a seq from 1 to the head's 4"),
        ({"seq": True, "keys": ["k"], "threshold": 1}, "its seal's seq is not a seq from 1"),
        ({"seq": 2, "keys": ["k"], "threshold": 0}, "its seal's threshold is not a positive integer"),
        ({"seq": 2, "keys": [], "threshold": 1}, f"its seal's keys are not a list of 1 to {MAX_SEAL_KEYS} keyids"),
        ({"seq": 2, "keys": [7], "threshold": 1}, "its seal's keys are not a list"),
        ({"seq": 2, "keys": ["k"] * (MAX_SEAL_KEYS + 1), "threshold": 1}, "its seal's keys are not a list"),
    ],
)
def test_a_malformed_seal_says_why(sealed: dict[str, object], why: str) -> None:
    with pytest.raises(ValueError) as refused:
        read_seal({"seq": 4, "digest": "sha256:ab", "sealed": sealed}, 4)
    assert why in str(refused.value)
    assert read_seal({"seq": 4, "digest": "sha256:ab"}, 4) is None


def test_what_a_machine_verified_under_a_key_since_removed_vouches_for_nothing(
    registry: Path, ops: CryptoSigner, tmp_path: Path
) -> None:
    """A key trusted once (and since removed, found compromised) signed an event; this machine
    verified the log while it trusted that key. Neither its incremental checks nor the seal of
    its next append may carry that verification over to the new key set."""
    removed = CryptoSigner.generate_ed25519()
    witness = Witness(tmp_path / "witness.json", "registry")
    both = [trusted(ops), trusted(removed, "old")]
    before = AuditLog(LocalStore(registry), signer=lambda: ops, keys=both, clock=ticking(), witness=witness)
    for n in (1, 2, 3):
        build(before, f"1.0.{n}")
    forger = AuditLog(LocalStore(registry), signer=lambda: removed, keys=both, clock=ticking())
    build(forger, "1.0.4", who="alice@host")  # signed by the key later removed
    assert before.follow(full=True).report.ok
    assert witness.load().verified.seq == 4

    after = AuditLog(LocalStore(registry), signer=lambda: ops, keys=[trusted(ops)], clock=ticking(), witness=witness)
    followed = after.follow()  # incremental: from what this machine verified, had the keys not changed
    assert followed.checked_from == 1
    assert {p.seq for p in followed.report.problems} == {4}
    build(after, "1.0.5")
    sealed = head_document(registry)["sealed"]
    assert isinstance(sealed, dict) and sealed["seq"] == 3  # it stops before event 4, which does not verify now

    fresh = AuditLog(LocalStore(registry), signer=None, keys=[trusted(ops)])
    report = fresh.follow(full=True).report
    assert not report.ok and {p.seq for p in report.problems} == {4}
