"""Signed checkpoints of the audit log in write-once storage: an S3 bucket with Object Lock (moto's
server, through boto3) and a GCS bucket with a retention policy (tests/fakes/gcs.py, through
google-cloud-storage). What the storage enforces, and `audit verify --checkpoints` holding a log
rolled back or forked to them, where a machine that never saw the log would trust it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from pydantic import TypeAdapter
from securesystemslib.signer import CryptoSigner

from bakery.config.trust_models import Registry
from bakery.core.jcs import jcs_bytes, sha256
from bakery.errors import ProviderError
from bakery.registry import open_checkpoints, open_store
from bakery.registry.base import Store
from bakery.trust.audit import AuditLog, Event
from bakery.trust.audit_chain import HEAD, event_key
from bakery.trust.checkpoints import Checkpoints, log_id
from bakery.trust.signing import AUDIT_PAYLOAD_TYPE, PublicKey, sign
from bakery.workspace import Workspace
from tests.conftest import VALID_YAML
from tests.fakes.gcs import FakeGcs

DAY = 86400


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[FakeGcs]:
    with FakeGcs() as fake:
        yield fake


def s3(endpoint: str) -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)


@pytest.fixture(params=["s3", "gcs"])
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A registry block whose checkpoints go to a write-once bucket of this test."""
    name = uuid.uuid4().hex[:10]
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        s3(endpoint).create_bucket(Bucket=f"reg-{name}")
        s3(endpoint).create_bucket(Bucket=f"lock-{name}", ObjectLockEnabledForBucket=True)
        vault = {"bucket": f"lock-{name}", "retain_days": 1}
        return {"kind": "s3", "bucket": f"reg-{name}", "endpoint": endpoint, "checkpoints": vault}
    fake: FakeGcs = request.getfixturevalue("fake_gcs")
    fake.add_bucket(f"reg-{name}")
    fake.add_bucket(f"lock-{name}", retention_seconds=DAY)
    return {
        "kind": "gcs",
        "bucket": f"reg-{name}",
        "endpoint": fake.endpoint,
        "checkpoints": {"bucket": f"lock-{name}"},
    }


@pytest.fixture(scope="module")
def ops() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def opened(spec: dict[str, Any], tmp_path: Path) -> tuple[Store, Checkpoints, Any]:
    registry = TypeAdapter(Registry).validate_python(spec)
    store = open_store(registry, root=tmp_path, workspace=Workspace(tmp_path / ".bakery"))
    vault = open_checkpoints(registry)
    assert vault is not None
    return store, Checkpoints(vault, store, keys=[], threshold=1), vault


def written_log(
    spec: dict[str, Any], tmp_path: Path, ops: CryptoSigner, count: int
) -> tuple[Store, Checkpoints, list[Event], list[bytes]]:
    """`count` events, each checkpointed after its append as TrustContext.record does; the
    checkpoints as a verifier trusting `ops` reads them; the head after each append."""
    store, checkpoints, _vault = opened(spec, tmp_path)
    key = PublicKey("ops-2026", ops.public_key.keyid, ops.public_key)
    log = AuditLog(store, signer=lambda: ops, keys=[key])
    events, heads = [], []
    for n in range(1, count + 1):
        events.append(log.append(action="build", subject=f"web@1.0.{n} on aws", result="ok", who="alice@host"))
        checkpoints.write(events[-1].seq, events[-1].digest, ops)
        head = store.get(HEAD)
        assert head is not None
        heads.append(head.data)
    return store, Checkpoints(checkpoints.vault, store, keys=[key], threshold=1), events, heads


def roll_back(store: Store, to: int, newest: int, heads: list[bytes]) -> None:
    """The registry's log as it was at event `to`: a self-consistent older copy."""
    for seq in range(to + 1, newest + 1):
        store.delete(event_key(seq))
    head = store.get(HEAD)
    assert head is not None
    store.replace(HEAD, heads[to - 1], version=head.version)


def test_checkpoints_hold_a_sound_log_and_name_a_rolled_back_one(
    spec: dict[str, Any], tmp_path: Path, ops: CryptoSigner
) -> None:
    store, checkpoints, events, heads = written_log(spec, tmp_path, ops, 3)
    report = checkpoints.check(3)
    assert (report.ok, report.checked, report.newest and report.newest.seq) == (True, 3, 3)
    assert report.lock in ("S3 Object Lock, compliance mode, 1 days", "GCS retention policy of 1 days (locked)")

    roll_back(store, 2, 3, heads)

    (problem,) = checkpoints.check(2).problems
    assert problem.startswith(f"the audit log in {store.where} went back in time: checkpoint {log_id(store.where)}/")
    assert problem.endswith(
        f"signed by ops-2026) records event 3 ({events[2].digest[:19]}…), but its newest event is 2"
    )


def test_a_checkpoint_counts_on_one_trusted_key_where_the_log_asks_more(
    spec: dict[str, Any], tmp_path: Path, ops: CryptoSigner
) -> None:
    """Each checkpoint is one machine's word on the head it saw: at trust.threshold 2 it still
    counts, and still catches a rollback."""
    store, one_key, _events, heads = written_log(spec, tmp_path, ops, 3)
    other = CryptoSigner.generate_ed25519()
    keys = [*one_key.keys, PublicKey("other", other.public_key.keyid, other.public_key)]
    checkpoints = Checkpoints(one_key.vault, store, keys=keys, threshold=2)
    assert checkpoints.check(3).ok and checkpoints.check(3).checked == 3
    roll_back(store, 2, 3, heads)
    assert not checkpoints.check(2).ok


def test_a_forked_log_is_named_with_the_checkpoint_it_breaks(
    spec: dict[str, Any], tmp_path: Path, ops: CryptoSigner
) -> None:
    store, checkpoints, events, _heads = written_log(spec, tmp_path, ops, 2)
    # Another event 2, signed by a trusted key (a second writer's branch restored over the first).
    other = jcs_bytes({**events[1].document(), "subject": "web@6.6.6 on aws"})
    stored = store.get(event_key(2))
    assert stored is not None
    store.replace(event_key(2), json.dumps(sign(other, AUDIT_PAYLOAD_TYPE, [ops])).encode(), version=stored.version)

    (problem,) = checkpoints.check(2).problems
    assert problem.startswith(f"the audit log in {store.where} forked: checkpoint {log_id(store.where)}/")
    assert problem.endswith(
        f"records event 2 as {events[1].digest[:19]}…, but the log's event 2 is {sha256(other)[:19]}…"
    )


def test_what_the_storage_enforces_and_what_verify_reads_back(
    spec: dict[str, Any], tmp_path: Path, ops: CryptoSigner
) -> None:
    _store, checkpoints, _events, _heads = written_log(spec, tmp_path, ops, 1)
    (stored,) = checkpoints.vault.versions(checkpoints.prefix)
    if spec["kind"] == "s3":
        client, bucket = s3(spec["endpoint"]), spec["checkpoints"]["bucket"]
        name = "bakery-checkpoints/" + stored.key
        with pytest.raises(ClientError) as refused:
            client.delete_object(Bucket=bucket, Key=name, VersionId=stored.version)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        # What someone without the key can do: hide it, behind a newer version and a delete marker.
        client.put_object(Bucket=bucket, Key=name, Body=b'{"payload": "e30=", "payloadType": "x", "signatures": []}')
        client.delete_object(Bucket=bucket, Key=name)
        report = checkpoints.check(1)
        assert report.checked == 1  # the locked original, read behind both
        # The junk carries no authority: named and passed over, so a junk object kept for the
        # whole retention cannot stop every check.
        assert report.ok and report.ignored == (
            f"checkpoint {stored.key} in {checkpoints.vault.where} is not readable: payloadType is 'x', not "
            "application/vnd.bakery.audit-checkpoint+json",
        )
    else:
        with pytest.raises(ProviderError, match=r"access denied to delete .*subject to bucket's retention policy"):
            checkpoints.vault.delete(stored.key)  # type: ignore[attr-defined]
        with pytest.raises(ProviderError, match=r"access denied to write .* is subject to bucket's rete"):
            checkpoints.vault.replace(stored.key, b"{}", version=stored.version)  # type: ignore[attr-defined]
        assert checkpoints.check(1).checked == 1


def test_a_bucket_that_is_not_write_once_gets_no_checkpoint(
    spec: dict[str, Any], tmp_path: Path, ops: CryptoSigner, request: pytest.FixtureRequest
) -> None:
    plain = f"plain-{uuid.uuid4().hex[:10]}"
    if spec["kind"] == "s3":
        s3(spec["endpoint"]).create_bucket(Bucket=plain)
        says = f"the bucket {plain} has no S3 Object Lock, so a checkpoint written there could be deleted"
    else:
        request.getfixturevalue("fake_gcs").add_bucket(plain)
        says = f"the bucket {plain} has no retention policy, so a checkpoint written there could be deleted"
    _store, checkpoints, vault = opened({**spec, "checkpoints": {"bucket": plain}}, tmp_path)

    with pytest.raises(ProviderError, match=says):
        checkpoints.write(1, "sha256:" + "0" * 64, ops)
    assert vault.versions() == []


# ------------------------------------------------------------------------------------ the CLI


def test_audit_verify_checkpoints_catches_a_rollback_a_first_time_reader_would_trust(
    spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bakery_cli: Any
) -> None:
    from bakery.config.load import load
    from bakery.progress import Recording
    from bakery.trust.context import TrustContext
    from bakery.trust.keys import generate

    generate(tmp_path / "keys" / "ops.key")
    config = yaml.safe_load(VALID_YAML)
    config["registry"] = spec
    config["trust"] = {
        "keys": [{"name": "ops", "public_key": "keys/ops.key.pub"}],
        "signing": {"key_file": "keys/ops.key"},
    }
    (tmp_path / "images.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "playbooks").mkdir()
    for book in ("base.yml", "web.yml"):
        (tmp_path / "playbooks" / book).write_text("- hosts: all\n  tasks: []\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BAKERY_HOME", str(tmp_path / "alice"))
    trust = TrustContext(load(tmp_path / "images.yaml"), Workspace(tmp_path / "alice"), Recording())
    heads = []
    for n in (1, 2, 3):
        assert trust.record("build", f"web@1.0.{n} on aws", "ok", strict=True) is not None  # each checkpointed
        head = trust.store.get(HEAD)
        assert head is not None
        heads.append(head.data)

    held = bakery_cli("audit", "verify", "--checkpoints")
    assert held.exit_code == 0, held.output
    assert f"checkpoints hold: 3 in {trust.checkpoints.vault.where}" in held.output  # type: ignore[union-attr]
    again = bakery_cli("audit", "checkpoint")
    assert (again.exit_code, "event 3" in again.output, "was there already" in again.output) == (0, True, True)

    roll_back(trust.store, 1, 3, heads)
    monkeypatch.setenv("BAKERY_HOME", str(tmp_path / "newcomer"))  # a machine that never saw the log
    trusting = bakery_cli("audit", "verify")
    assert trusting.exit_code == 0, trusting.output  # the first look is trusted: nothing to hold it to
    refused = bakery_cli("audit", "verify", "--checkpoints")
    assert refused.exit_code == 1
    assert "checkpoints do NOT hold: 2 problem(s)" in refused.output
    assert "records event 3 (" in refused.output and "but its newest event is 1" in refused.output
