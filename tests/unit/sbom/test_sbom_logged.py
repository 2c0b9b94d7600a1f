"""A stored SBOM is the one the signed audit log records: the bake's `build` event names the digest
of the SBOM statement it stored, and `bakery sbom` (the report and a scan too) holds the registry
to it. A deleted SBOM, another one put in its place, or any while the audit log does not verify is
untrusted (exit 1, saying why), never "no SBOM recorded"."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from bakery.progress import Recording
from bakery.sbom import attest
from bakery.trust.audit import AuditLog
from bakery.trust.context import TrustContext
from bakery.trust.testresults import Subject
from bakery.workspace import Workspace
from tests.unit.trust.conftest import World

KEY = "sbom/aws/web/1.0.0.json"


def trust_of(world: World) -> TrustContext:
    return TrustContext(world.project_dir.load(), Workspace(world.project_dir.home), Recording())


def build_event(world: World) -> dict[str, Any]:
    [event] = [e for e in world.audit() if e["action"] == "build"]
    return event


def break_the_log(world: World) -> None:
    """Append an event no key signed, as anyone who can write to the registry could."""
    AuditLog(trust_of(world).store, signer=None, keys=[]).append(
        action="sbom", subject="web@1.0.0 on aws", result="skipped", who="someone@else"
    )


def test_the_build_event_names_the_sbom_stored_and_a_deleted_one_is_untrusted_not_none(world: World) -> None:
    ref = world.bake()
    event = build_event(world)
    blob = trust_of(world).store.get(KEY)
    assert blob is not None
    payload = base64.b64decode(json.loads(blob.data)["payload"])
    assert event["details"]["sbom"] == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert world.run("sbom", ref, "--target", "aws").exit_code == 0

    trust_of(world).store.delete(KEY)
    shown = world.run("sbom", ref, "--target", "aws")
    assert shown.exit_code == 1
    assert (
        f"error: web@1.0.0 on aws: {KEY} in {trust_of(world).store.where}: the signed audit log records an SBOM "
        f"(event {event['seq']}), but the registry holds none (deleted?)"
    ) in shown.stderr
    assert "no SBOM at" not in shown.stderr and "restore the registry from a backup" in shown.stderr
    scanned = world.run("scan", ref, "--target", "aws")
    assert scanned.exit_code == 1 and "nothing to scan: " in scanned.stderr and "(deleted?)" in scanned.stderr


def test_another_signed_sbom_in_its_place_is_not_the_one_the_log_records(world: World) -> None:
    ref = world.bake()
    seq = build_event(world)["seq"]
    blob = trust_of(world).store.get(KEY)
    assert blob is not None
    statement = json.loads(base64.b64decode(json.loads(blob.data)["payload"]))
    first, bom = statement["subject"][0], statement["predicate"]
    subject = Subject(first["name"], first["digest"]["sha256"], **first["annotations"])
    attest.store(trust_of(world), subject, bom | {"components": bom["components"][:1]})  # signed by a trusted key
    shown = world.run("sbom", ref, "--target", "aws")
    assert shown.exit_code == 1
    assert (
        f"error: web@1.0.0 on aws: {KEY}: not the SBOM the signed audit log records last (event {seq}): "
        "an older one put back?"
    ) in shown.stderr


def test_while_the_audit_log_does_not_verify_a_deleted_sbom_is_untrusted_saying_so(world: World) -> None:
    ref = world.bake()
    trust_of(world).store.delete(KEY)
    break_the_log(world)
    shown = world.run("sbom", ref, "--target", "aws")
    assert shown.exit_code == 1
    where = trust_of(world).store.where
    assert f"{KEY} in {where}: cannot be held to the signed audit log: the audit log in {where} does not verify" in (
        shown.stderr
    )
    assert "no SBOM at" not in shown.stderr
