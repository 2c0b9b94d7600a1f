"""One audit log shared by several machines: two OS processes append at the same moment to the log
in an S3 bucket (moto's server) and in a GCS bucket (tests/fakes/gcs.py, which enforces generation
preconditions), through boto3 and google-cloud-storage. No entry is lost or forked, the chain
verifies, and an event edited in the bucket afterwards is named."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from securesystemslib.signer import CryptoSigner

from bakery.registry.base import Store
from bakery.trust.audit import AuditLog
from bakery.trust.audit_chain import event_key
from bakery.trust.signing import PublicKey
from tests.integration.shared_buckets import in_gcs, in_s3  # noqa: F401 (fixtures)
from tests.unit.trust.conftest import edit_payload, problems
from tests.unit.trust.test_audit import append_at_once


@pytest.mark.parametrize("where", ["in_s3", "in_gcs"])
def test_two_machines_append_to_one_chain(where: str, request: pytest.FixtureRequest) -> None:
    opener: Callable[[], Store] = request.getfixturevalue(where)
    ops = CryptoSigner.generate_ed25519()

    written = append_at_once(opener, ops, writers=2, each=40)

    store = opener()
    log = AuditLog(store, signer=None, keys=[PublicKey("ops-2026", ops.public_key.keyid, ops.public_key)])
    events = log.events()
    assert [e.seq for e in events] == list(range(1, 81))
    assert sorted(e.subject for e in events) == written
    report = log.verify()
    assert (report.problems, report.events, report.head) == ((), 80, 80)

    stored = store.get(event_key(17))
    assert stored is not None
    store.replace(event_key(17), edit_payload(stored.data, who="mallory@host"), version=stored.version)
    label = f"event 17 (build {events[16].subject} by mallory@host)"
    assert problems(log) == [
        (17, f"{label} was changed: its signature by ops-2026 does not match"),
        (17, f"{label} was changed after it was written: its digest no longer matches event 18's prev"),
    ]
