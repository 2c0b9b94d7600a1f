"""Verification (bakery/trust/verify.py), called directly: which checks run and what each says when it
fails, the parent chain, revocations inherited along it, and the audit event of a failure."""

from __future__ import annotations

from typing import Any

import pytest

from bakery.core.catalog import ImageRecord
from bakery.core.jcs import digest
from bakery.core.provenance import PREDICATE_TYPE
from bakery.errors import UsageError
from bakery.progress import Recording
from bakery.trust.attestation import Attestations, payload_digest
from bakery.trust.context import TrustContext
from bakery.trust.revocations import Revocations
from bakery.trust.verify import NOT_OURS, Verifier, _statement_problems, subject_digest
from bakery.workspace import Workspace
from tests.unit.trust.conftest import World

RECORD = ImageRecord("web", "1.0.0", "aws", "aws", "sha256:" + "ab" * 32, "2026-01-01T00:00:00Z", "base")


def verifier(world: World) -> Verifier:
    project = world.project_dir.load()
    return Verifier(
        project, TrustContext(project, Workspace(world.project_dir.home), Recording()), lambda _: world.fake
    )


def test_a_fresh_bake_passes_every_check_signed_by_its_key(world: World) -> None:
    ref = world.bake()
    checker = verifier(world)
    result = checker.verify(ref, target="aws")
    assert result.ok and result.problems == []
    assert [c.name for c in result.checks] == [
        "attestation",
        "signature",
        "statement",
        "subject",
        "tags",
        "tests",
        "revocation",
    ]
    assert result.checks[5].detail.startswith("none (no test result in ")
    assert result.signed_by == ("ops",)
    envelope = Attestations(checker.trust).get(checker.record(ref, "aws")[0])
    assert envelope is not None and result.digest == payload_digest(envelope)
    assert next(c.detail for c in result.checks if c.name == "signature") == "signed by ops (1 of 1 needed)"
    assert [e["action"] for e in world.audit()] == ["build", "sign"]  # a success is not an event


def test_the_target_must_be_named_when_the_image_has_several(world: World) -> None:
    with pytest.raises(UsageError) as refused:
        verifier(world).verify("web")
    assert refused.value.message == "web is baked for local, aws, gcp; say which with --target"
    with pytest.raises(UsageError) as unknown:
        verifier(world).verify("web", target="azure")
    assert unknown.value.message == "no target 'azure'; targets: aws, gcp, local"


def test_an_unsigned_image_fails_naming_where_its_attestation_was_looked_for_and_is_audited(world: World) -> None:
    ref = world.bake()
    checker = verifier(world)
    Attestations(checker.trust).remove("aws", "web", "1.0.0")
    result = checker.verify(ref, target="aws")
    assert result.problems == [f"attestation: unsigned: no attestation for {ref} on aws in {checker.trust.store.where}"]
    assert result.signed_by == () and result.digest is None
    assert world.audit()[-1]["action"] == "verify-failed"
    assert world.audit()[-1]["details"]["problems"] == result.problems


def test_without_audit_a_failure_writes_nothing(world: World) -> None:
    ref = world.bake()
    checker = verifier(world)
    Attestations(checker.trust).remove("aws", "web", "1.0.0")
    assert not checker.verify(ref, target="aws", audit=False).ok
    assert [e["action"] for e in world.audit()] == ["build", "sign"]


def test_a_changed_image_fails_the_subject_check(world: World) -> None:
    ref = world.bake()
    world.fake.change(world.image_id(ref), b"something else")
    result = verifier(world).verify(ref, target="aws", audit=False)
    (problem,) = result.problems
    assert problem.startswith("subject: ") and "changed since it was signed" in problem


def test_a_child_verifies_with_its_parent_and_inherits_its_revocation(world: World) -> None:
    web = world.bake()
    app = world.bake("app")
    checker = verifier(world)
    fine = checker.verify(app, target="aws", audit=False)
    assert fine.ok and fine.parent is not None and fine.parent.ref == web
    assert next(c.detail for c in fine.checks if c.name == "parent") == f"{web} verifies"

    Revocations(checker.trust).decide(
        "aws", web, revoked=True, reason="CVE-1", at="2026-01-01T00:00:00Z", by="a@h", details={}
    )
    revoked = checker.verify(app, target="aws", audit=False)
    assert revoked.revoked
    assert revoked.problems == [
        f"revocation: {app} is revoked since 2026-01-01T00:00:00Z (inherited from {web}): CVE-1 (by a@h)",
        f"parent: its parent {web} does not verify: revocation: {web} is revoked since 2026-01-01T00:00:00Z: "
        "CVE-1 (by a@h)",
    ]


def test_a_parent_missing_from_the_catalog_is_named(world: World) -> None:
    world.bake()
    app = world.bake("app")
    checker = verifier(world)
    record, records = checker.record(app, "aws")
    result = checker.verify_record(record, [r for r in records if r.name != "web"])
    assert result.problems == [f"parent: its parent {record.parent} is not in the aws catalog"]


def statement(**external: Any) -> dict[str, Any]:
    return {
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "externalParameters": {"image": "web", "version": "1.0.0", "target": "aws", **external},
                "internalParameters": {"inputsDigest": RECORD.inputs_digest},
            }
        },
    }


def test_a_statement_must_name_this_image_and_its_inputs() -> None:
    assert _statement_problems(RECORD, statement()) == []
    assert _statement_problems(RECORD, {"predicate": {}}) == [NOT_OURS]
    assert _statement_problems(RECORD, statement(version="1.0.1", target="gcp")) == [
        "the signed statement is for version '1.0.1', this image's is '1.0.0'",
        "the signed statement is for target 'gcp', this image's is 'aws'",
    ]
    other = statement()
    other["predicate"]["buildDefinition"]["internalParameters"]["inputsDigest"] = "sha256:00"
    other["predicateType"] = "https://example.com/other"
    assert _statement_problems(RECORD, other) == [
        f"predicateType is 'https://example.com/other', not {PREDICATE_TYPE}",
        f"the signed inputs digest 'sha256:00' is not the image's {RECORD.inputs_digest!r}",
    ]


def test_the_subject_is_the_disks_own_digest_else_the_descriptors() -> None:
    assert subject_digest({"sha256": "sha256:" + "cd" * 32, "id": "x"}) == "sha256:" + "cd" * 32
    described = {"id": "ami-0abc", "snapshots": ["snap-1"]}
    assert subject_digest(described) == digest(described)
