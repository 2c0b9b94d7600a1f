"""Signed provenance in the registry (bakery/trust/attestation.py): one DSSE envelope per image
version, created once (an orphan of a killed bake aside), read with its damage named, co-signed
without changing the digest the image carries."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bakery.core.catalog import ImageRecord
from bakery.core.jcs import jcs_bytes, sha256
from bakery.errors import BakeryError, TrustError
from bakery.progress import Recording
from bakery.trust.attestation import Attestations, key_of, payload_digest, record_key
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE
from bakery.workspace import Workspace
from tests.unit.trust.conftest import World

STATEMENT = {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "web"}], "predicate": {"n": 1}}
WEB = ImageRecord("web", "1.0.0", "aws", "aws", "sha256:" + "ab" * 32, "2026-01-01T00:00:00Z", "base")


@pytest.fixture()
def attestations(world: World) -> Attestations:
    return Attestations(TrustContext(world.project_dir.load(), Workspace(world.project_dir.home), Recording()))


def stored(world: World) -> dict[str, Any]:
    path = world.project_dir.home / "registry" / "attestations" / "aws" / "web" / "1.0.0.dsse.json"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def test_keys_name_the_target_image_and_version() -> None:
    assert key_of("aws", "web", "1.0.0") == "attestations/aws/web/1.0.0.dsse.json"
    assert record_key(WEB) == "attestations/aws/web/1.0.0.dsse.json"


def test_a_statement_is_signed_in_canonical_json_by_this_machines_key(attestations: Attestations) -> None:
    signed = attestations.sign(STATEMENT)
    assert signed.key_name == "keys/ops.key"  # the signer is named by its key file
    assert signed.digest == sha256(jcs_bytes(STATEMENT))
    assert signed.envelope["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(signed.envelope["payload"]) == jcs_bytes(STATEMENT)
    assert [s["keyid"] for s in signed.envelope["signatures"]] == [signed.keyid]
    assert payload_digest(signed.envelope) == signed.digest


@pytest.mark.parametrize("envelope", [{}, {"payload": "not base64!"}, {"payload": None}])
def test_the_digest_of_what_is_not_an_envelope_is_refused(envelope: dict[str, Any]) -> None:
    with pytest.raises(TrustError) as refused:
        payload_digest(envelope)
    assert refused.value.message == "the attestation is not a DSSE envelope (no base64 payload)"


def test_an_attestation_is_created_once_and_never_replaced_by_another_statement(
    world: World, attestations: Attestations
) -> None:
    first = attestations.sign(STATEMENT).envelope
    attestations.put("aws", "web", "1.0.0", first, recorded=lambda: True)
    assert stored(world) == first
    other = attestations.sign({**STATEMENT, "predicate": {"n": 2}}).envelope
    with pytest.raises(BakeryError) as refused:
        attestations.put("aws", "web", "1.0.0", other, recorded=lambda: True)
    assert refused.value.message.startswith("web@1.0.0 on aws already has an attestation in ")
    assert refused.value.hint == "a version is never reused; another bake recorded it meanwhile: bake again"
    assert stored(world) == first


def test_the_orphan_of_a_killed_bake_is_replaced(world: World, attestations: Attestations) -> None:
    orphan = attestations.sign(STATEMENT).envelope
    attestations.put("aws", "web", "1.0.0", orphan, recorded=lambda: True)
    again = attestations.sign({**STATEMENT, "predicate": {"n": 2}}).envelope
    attestations.put("aws", "web", "1.0.0", again, recorded=lambda: False)  # no image carries 1.0.0
    assert stored(world) == again
    attestations.remove("aws", "web", "1.0.0")
    assert attestations.get(WEB) is None


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "not JSON ("),
        (b"[]", "a JSON list, not an object"),
        (b"[" * 100_000 + b"]" * 100_000, "it is nested deeper than 64 levels"),
        (b'{"a":' * 70 + b"1" + b"}" * 70, "it is nested deeper than 64 levels"),
    ],
)
def test_a_damaged_attestation_is_named(attestations: Attestations, content: bytes, says: str) -> None:
    attestations.trust.store.create(record_key(WEB), content)
    with pytest.raises(TrustError) as failed:
        attestations.get(WEB)
    where = attestations.trust.store.where
    assert failed.value.message.startswith(
        f"the attestation of web@1.0.0 ({record_key(WEB)} in {where}) is not a DSSE envelope: {says}"
    )


def test_a_cosignature_keeps_the_payload_and_its_digest(world: World, attestations: Attestations) -> None:
    signed = attestations.sign(STATEMENT)
    attestations.put("aws", "web", "1.0.0", signed.envelope, recorded=lambda: True)
    again = attestations.cosign(WEB)
    assert again.digest == signed.digest
    assert stored(world)["payload"] == signed.envelope["payload"]
    assert [s["keyid"] for s in stored(world)["signatures"]] == [signed.keyid]  # the same key signs once


def test_there_is_nothing_to_cosign_without_an_attestation(attestations: Attestations) -> None:
    with pytest.raises(TrustError) as refused:
        attestations.cosign(WEB)
    assert refused.value.message == "web@1.0.0 on aws has no attestation to co-sign"
