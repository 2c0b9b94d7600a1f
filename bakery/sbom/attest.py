"""Signed SBOMs in the registry, bound to the image's provenance (the same machinery as signed
test results: bakery.trust.testresults).

Where: `sbom/<target>/<image>/<version>.json` in the registry. What: a DSSE envelope
(payloadType `application/vnd.in-toto+json`) signed with this machine's signer, whose payload
(canonical JSON) is an in-toto Statement v1:

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "<the provenance subject's name>", "digest": {"sha256": "<its digest>"},
                  "annotations": {"image": "web", "version": "1.0.3", "target": "local",
                                  "provenance": "sha256:<digest of the image's signed provenance statement>"}}],
     "predicateType": "https://cyclonedx.org/bom",
     "predicate": {<the CycloneDX 1.6 document>}}

A reader trusts it only when a key of trust.keys signed it, the predicateType is CycloneDX's, and
its subject names the same image, version, target and provenance statement digest as the image
carries now (the digest its verified attestation has). The image's newest `build` audit event names
the digest of the SBOM statement the bake stored (as a `scan` event names its scan's: scan/attest.py):
another one in the registry (an older one put back), or none (deleted), reads as `invalid`; so does
any, or none, while the audit log does not verify.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bakery.core import documents
from bakery.core.jcs import jcs_bytes, sha256
from bakery.core.provenance import STATEMENT_TYPE
from bakery.errors import TrustError
from bakery.registry.base import update
from bakery.sbom.bom import packages_of
from bakery.sbom.dpkg import Package, PackageDbError
from bakery.trust.audit_facts import test_key
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, sign, signer_public_key, verify
from bakery.trust.testresults import Subject

PREDICATE_TYPE = "https://cyclonedx.org/bom"

State = Literal["present", "none", "invalid"]


def key_of(target: str, name: str, version: str) -> str:
    return f"sbom/{target}/{name}/{version}.json"


def statement(subject: Subject, bom: Mapping[str, Any]) -> dict[str, Any]:
    """The in-toto Statement of an image's SBOM (pure)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject.as_dict()],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(bom),
    }


@dataclass(frozen=True)
class Stored:
    key: str
    digest: str  # sha256 of the payload
    keyid: str


def store(trust: TrustContext, subject: Subject, bom: Mapping[str, Any]) -> Stored:
    """Sign the SBOM statement and keep it at its key (a rebake of a version replaces it)."""
    signer = trust.signer()
    payload = jcs_bytes(statement(subject, bom))
    envelope = sign(payload, PAYLOAD_TYPE, [signer])
    key = key_of(subject.target, subject.image, subject.version)
    data = json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n"
    update(trust.store, key, lambda _there: data)
    return Stored(key, sha256(payload), signer_public_key(signer).keyid)


def remove(trust: TrustContext, target: str, name: str, version: str) -> None:
    trust.store.delete(key_of(target, name, version))


@dataclass(frozen=True)
class SbomStatus:
    """What the registry holds of an image's SBOM, checked: `present` only when trusted."""

    state: State
    detail: str
    key: str
    document: dict[str, Any] | None = None  # the CycloneDX document
    packages: tuple[Package, ...] = ()
    system: str = ""  # the operating system it names ("Debian GNU/Linux 12 (bookworm)")
    signed_by: tuple[str, ...] = ()


def read(trust: TrustContext, target: str, name: str, version: str, provenance_digest: str) -> SbomStatus:
    """The SBOM of `name`@`version` on `target` as the registry holds it: `invalid` unless it
    verifies against trust.keys and is about exactly this image and its provenance statement
    (`provenance_digest`). Raises what the store raises (ProviderError)."""
    key = key_of(target, name, version)
    blob = trust.store.get(key)
    try:
        logged = trust.logged().sboms.get(test_key(target, f"{name}@{version}"))
    except TrustError as exc:  # what it records cannot be known: neither "none" nor "present"
        why = f"cannot be held to the signed audit log: {exc.message}"
        return SbomStatus("invalid", f"{key} in {trust.store.where}: {why}", key)
    if blob is None and logged is not None:
        problem = f"the signed audit log records an SBOM (event {logged[0]}), but the registry holds none (deleted?)"
        return SbomStatus("invalid", f"{key} in {trust.store.where}: {problem}", key)
    if blob is None:
        return SbomStatus("none", f"no SBOM at {key} in {trust.store.where}", key)
    try:
        envelope = documents.parse_object(blob.data)
        verified = verify(envelope, trust.keys, 1, payload_type=PAYLOAD_TYPE)
    except (ValueError, TrustError) as exc:
        return SbomStatus("invalid", f"{key} does not verify: {getattr(exc, 'message', exc)}", key)
    document = verified.document
    problems = _problems(document, (name, version, target), provenance_digest)
    if not problems and logged is not None and sha256(jcs_bytes(document)) != logged[1]:
        problems = [f"not the SBOM the signed audit log records last (event {logged[0]}): an older one put back?"]
    if problems:
        return SbomStatus("invalid", f"{key}: " + "; ".join(problems), key)
    try:
        packages, system = packages_of(document["predicate"])
    except PackageDbError as exc:
        return SbomStatus("invalid", f"{key}: its CycloneDX document: {exc.message}", key)
    signers = ", ".join(verified.signed_by)
    detail = f"{len(packages)} packages, signed by {signers}"
    return SbomStatus("present", detail, key, dict(document["predicate"]), packages, system, verified.signed_by)


def _problems(document: Mapping[str, Any], image: tuple[str, str, str], provenance_digest: str) -> list[str]:
    if document.get("predicateType") != PREDICATE_TYPE:
        return [f"predicateType is {document.get('predicateType')!r}, not {PREDICATE_TYPE}"]
    subjects = document.get("subject")
    if not isinstance(document.get("predicate"), dict) or not isinstance(subjects, list) or not subjects:
        return ["not an SBOM statement (no predicate or subject)"]
    annotations = subjects[0].get("annotations") if isinstance(subjects[0], dict) else None
    if not isinstance(annotations, dict):
        return ["its subject names no image"]
    problems = [
        f"it is about {field} {annotations.get(field)!r}, not {wanted!r}"
        for field, wanted in zip(("image", "version", "target"), image, strict=True)
        if annotations.get(field) != wanted
    ]
    if annotations.get("provenance") != provenance_digest:
        problems.append("its subject is not this image's provenance (another provenance statement)")
    return problems
