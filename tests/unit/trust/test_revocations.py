"""Revocations (bakery/trust/revocations.py): one document per image version in the registry, its
history kept; inherited along `from:` at any depth; scheduled ones take effect at their time."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bakery.core.catalog import ImageRecord
from bakery.errors import TrustError, UsageError
from bakery.progress import Recording
from bakery.trust.context import TrustContext
from bakery.trust.revocations import (
    REVOCATION_PAYLOAD_TYPE,
    Revocation,
    Revocations,
    descendants,
    key_of,
    parse_time,
    revocation_of,
)
from bakery.trust.signing import sign
from bakery.workspace import Workspace
from tests.unit.trust.conftest import World


def payload(data: bytes) -> dict[str, Any]:
    """The document a signed revocation envelope holds."""
    document: dict[str, Any] = json.loads(base64.b64decode(json.loads(data)["payload"]))
    return document


def sealed(revocations: Revocations, content: bytes) -> bytes:
    """`content` signed as a revocation document by this project's signer."""
    envelope = sign(content, REVOCATION_PAYLOAD_TYPE, [revocations.trust.signer()])
    return json.dumps(envelope).encode()


def keyid_of_ops(world: World) -> str:
    from bakery.trust.keys import load_trusted

    project = world.project_dir.load()
    (ops,) = load_trusted(project.config.trust, root=project.root, workspace=Workspace(world.project_dir.home))
    return ops.keyid


def record(ref: str, parent: str | None = None, target: str = "aws") -> ImageRecord:
    name, version = ref.split("@")
    return ImageRecord(name, version, target, "aws", "sha256:" + "ab" * 32, "2026-01-01T00:00:00Z", "b", parent=parent)


def revocation(ref: str, at: str = "2026-01-01T00:00:00Z", target: str = "aws") -> Revocation:
    return Revocation(target, ref, at, "CVE-2026-1", "alice@laptop", "2026-01-01T00:00:00Z")


BASE, WEB, APP = record("base@1.0.0"), record("web@1.0.0", parent="base@1.0.0"), record("app@2.0.0", parent="web@1.0.0")
RECORDS = {r.ref: r for r in (BASE, WEB, APP)}


def test_a_revocation_is_inherited_from_the_nearest_revoked_ancestor() -> None:
    table = {("aws", "base@1.0.0"): revocation("base@1.0.0")}
    found = revocation_of(APP, table, RECORDS)
    assert found == Revocation("aws", "app@2.0.0", "2026-01-01T00:00:00Z", "CVE-2026-1", "alice@laptop",
                               "2026-01-01T00:00:00Z", via="base@1.0.0")  # fmt: skip
    assert found is not None
    assert found.describe() == (
        "revoked since 2026-01-01T00:00:00Z (inherited from base@1.0.0): CVE-2026-1 (by alice@laptop)"
    )
    table[("aws", "web@1.0.0")] = revocation("web@1.0.0", at="2026-02-01T00:00:00Z")
    nearer = revocation_of(APP, table, RECORDS)
    assert nearer is not None and (nearer.via, nearer.at) == ("web@1.0.0", "2026-02-01T00:00:00Z")


def test_an_images_own_revocation_is_its_own_and_other_targets_do_not_count() -> None:
    table = {
        ("aws", "web@1.0.0"): revocation("web@1.0.0"),
        ("gcp", "base@1.0.0"): revocation("base@1.0.0", target="gcp"),
    }
    own = revocation_of(WEB, table, RECORDS)
    assert own is not None and own.via is None and own.ref == "web@1.0.0"
    assert revocation_of(BASE, table, RECORDS) is None  # revoked on gcp, not on aws


def test_an_ancestor_gone_from_the_catalog_still_passes_its_revocation_on_and_a_loop_ends() -> None:
    orphan = record("app@2.0.1", parent="web@0.9.0")  # web@0.9.0 was deleted, its revocation was not
    found = revocation_of(orphan, {("aws", "web@0.9.0"): revocation("web@0.9.0")}, {})
    assert found is not None and found.via == "web@0.9.0"
    looped = {"a@1.0.0": record("a@1.0.0", parent="b@1.0.0"), "b@1.0.0": record("b@1.0.0", parent="a@1.0.0")}
    assert revocation_of(looped["a@1.0.0"], {}, looped) is None


def test_a_scheduled_revocation_is_returned_but_not_in_effect_until_its_time() -> None:
    later = revocation("web@1.0.0", at="2999-01-01T00:00:00Z")
    assert not later.effective()
    assert later.effective(datetime(2999, 1, 1, tzinfo=UTC))
    assert later.describe() == "revoked from 2999-01-01T00:00:00Z (scheduled): CVE-2026-1 (by alice@laptop)"


def test_descendants_are_every_image_built_on_it_at_any_depth_by_ref() -> None:
    other = record("db@1.0.0")
    assert [r.ref for r in descendants("base@1.0.0", [other, APP, WEB, BASE])] == ["app@2.0.0", "web@1.0.0"]
    assert descendants("app@2.0.0", RECORDS.values()) == []


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("2026-12-01T09:00:00Z", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),  # a naive time is UTC
        ("2026-12-01T10:00:00+01:00", datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_in_utc(text: str, when: datetime) -> None:
    assert parse_time(text) == when


def test_a_time_that_is_not_one_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError) as refused:
        parse_time("next tuesday")
    assert refused.value.message == "'next tuesday' is not a time; give ISO 8601 such as 2026-12-01T09:00:00Z"


def test_each_version_has_its_own_document() -> None:
    assert key_of("aws", "web@1.0.2") == "revocations/aws/web/1.0.2.json"


# --- in the registry -----------------------------------------------------------------------------


@pytest.fixture()
def revocations(world: World) -> Revocations:
    project = world.project_dir.load()
    return Revocations(TrustContext(project, Workspace(world.project_dir.home), Recording()))


def test_revoking_writes_a_document_with_its_history_and_the_table_reads_it(
    world: World, revocations: Revocations
) -> None:
    assert revocations.decide(
        "aws", "web@1.0.0", revoked=True, reason="CVE-1", at="2026-01-01T00:00:00Z", by="a@h", details={}
    ) == (
        True,
        "2026-01-01T00:00:00Z",
    )
    table = revocations.table()
    assert list(table) == [("aws", "web@1.0.0")]
    assert (table[("aws", "web@1.0.0")].reason, table[("aws", "web@1.0.0")].by) == ("CVE-1", "a@h")
    path = world.project_dir.home / "registry" / "revocations" / "aws" / "web" / "1.0.0.json"
    envelope = json.loads(path.read_text())
    assert envelope["payloadType"] == "application/vnd.bakery.revocation+json"
    assert [s["keyid"] for s in envelope["signatures"]] == [keyid_of_ops(world)]
    doc = payload(path.read_bytes())
    assert (doc["state"], doc["ref"], doc["target"]) == ("revoked", "web@1.0.0", "aws")
    assert [e["state"] for e in doc["history"]] == ["revoked"]


def test_revoking_again_keeps_its_time_and_writes_nothing_and_unrevoking_keeps_the_history(
    revocations: Revocations,
) -> None:
    revocations.decide(
        "aws", "web@1.0.0", revoked=True, reason="CVE-1", at="2026-01-01T00:00:00Z", by="a@h", details={}
    )
    assert revocations.decide("aws", "web@1.0.0", revoked=True, reason="again", at=None, by="b@h", details={}) == (
        False,
        "2026-01-01T00:00:00Z",
    )
    changed, _ = revocations.decide("aws", "web@1.0.0", revoked=False, reason="fixed", at=None, by="b@h", details={})
    assert changed is True
    assert revocations.table() == {}
    assert (
        revocations.decide("aws", "web@1.0.0", revoked=False, reason="fixed", at=None, by="b@h", details={})[0] is False
    )
    blob = revocations.trust.store.get(key_of("aws", "web@1.0.0"))
    assert blob is not None
    assert [(e["state"], e["reason"]) for e in payload(blob.data)["history"]] == [
        ("revoked", "CVE-1"),
        ("active", "fixed"),
    ]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"state": "revoked", "target": "aws"}', "its ref, at, reason, by, time must be text"),
        (b"[" * 50_000 + b"]" * 50_000, "it is nested deeper than 64 levels"),
        (
            b'{"state": "revoked", "target": "aws", "ref": "web@1.0.0", "at": 5, "reason": "r", "by": "b", '
            b'"time": "t"}',
            "its at must be text",
        ),
        (
            b'{"state": "revoked", "target": "aws", "ref": ["web@1.0.0"], "at": "2026-01-01", "reason": "r", '
            b'"by": "b", "time": "t"}',
            "its ref must be text",
        ),
        (
            b'{"state": "revoked", "target": "aws", "ref": "web@1.0.0", "at": "soon", "reason": "r", "by": "b", '
            b'"time": "t"}',
            "its at (soon) is not an ISO 8601 time",
        ),
        (
            b'{"state": "revoked", "target": "aws", "ref": "web@9.9.9", "at": "2026-01-01", "reason": "r", '
            b'"by": "b", "time": "t"}',
            "it names web@9.9.9 on aws, not its own key",
        ),
    ],
)
def test_a_document_that_is_not_a_revocation_is_named(revocations: Revocations, content: bytes, why: str) -> None:
    signed = content.startswith(b"{") and b'"state"' in content  # well-formed JSON, signed: its fields are checked
    revocations.trust.store.create(
        "revocations/aws/web/1.0.0.json", sealed(revocations, content) if signed else content
    )
    with pytest.raises(TrustError) as failed:
        revocations.table()
    assert failed.value.message.startswith("revocations/aws/web/1.0.0.json in ")
    assert f"is not a revocation document: {why}" in failed.value.message
    assert failed.value.hint is not None and "bakery revoke" in failed.value.hint
