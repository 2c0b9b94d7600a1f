"""Signed test results: what `bakery test` (and `bakery build` after each bake) found when it booted
an image, kept in the registry and checked by `bakery verify` and by promotion's `tests: passed`.

Where: `tests/<target>/<image>/<version>.json` in the registry (issue 8's store: a directory, S3 or
GCS). A later run of the tests of that version replaces it (conditional write): it is always the
newest result.

What: a DSSE envelope (JSON: payloadType, payload, signatures), payloadType
`application/vnd.in-toto+json`, signed with this machine's signer (trust.signing, a KMS key or the
workspace key). It counts when one key of trust.keys signed it. Its payload, in canonical JSON
(RFC 8785), is an in-toto Statement v1 with the test-result predicate v0.1:

    {
      "_type": "https://in-toto.io/Statement/v1",
      "subject": [{
        "name": "<the subject name of the image's provenance>",
        "digest": {"sha256": "<the subject digest of the image's provenance>"},
        "annotations": {"image": "web", "version": "1.0.3", "target": "local",
                        "provenance": "sha256:<digest of the image's signed provenance statement>"}
      }],
      "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
      "predicate": {
        "result": "PASSED" | "WARNED" | "FAILED",
        "configuration": [
          {"name": "images.yaml#images.web.tests@local", "digest": {"sha256": "<of the tests as run>"},
           "annotations": {"tests": {"boot_deadline": 300, "playbooks": [...], "http": [...]},
                           "instance": "i-0abc in eu-west-1", "run": "<run id>",
                           "startedOn": "<RFC 3339>", "finishedOn": "<RFC 3339>"}},
          {"name": "playbooks/tests/web.yml", "digest": {"sha256": "<the file's sha256>"}}
        ],
        "passedTests": ["playbooks/tests/web.yml: The page names its version [bakery-test-web-1a2b]",
                        "GET /healthz on port 80 answers 200 matching ^ok"],
        "warnedTests": [],
        "failedTests": ["GET / on port 80 answers 200: answered 500 (expected 200): '...'"]
      }
    }

A reader (verify, promotion) trusts it only when: it is signed by trust.threshold keys of
trust.keys, the predicateType is the one above, and subject[0].annotations names the same image, version and
target and the digest of the provenance statement the image carries now. `result` is PASSED only
when every test passed and at least one ran; `failedTests` names each failed task (with its host
and message) and each failed check. bakery writes PASSED or FAILED; WARNED (written by another
tool: the tests ran and raised warnings, `warnedTests`) is read as such: it does not fail `bakery
verify` ("tests: warned") and does not pass a channel's `tests: passed` gate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bakery.core import documents
from bakery.core.catalog import ImageRecord
from bakery.core.jcs import jcs_bytes, sha256
from bakery.core.provenance import STATEMENT_TYPE
from bakery.errors import TrustError
from bakery.registry.base import update
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, sign, signer_public_key, verify

PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
RESULTS = ("PASSED", "WARNED", "FAILED")
NAMES_SHOWN = 5

State = Literal["passed", "warned", "failed", "none", "invalid"]


def key_of(target: str, name: str, version: str) -> str:
    return f"tests/{target}/{name}/{version}.json"


@dataclass(frozen=True)
class Subject:
    """The image a result is about, as its signed provenance names it."""

    name: str
    sha256: str
    image: str
    version: str
    target: str
    provenance: str  # "sha256:..." of the provenance statement

    def as_dict(self) -> dict[str, Any]:
        annotations = {"image": self.image, "version": self.version, "target": self.target}
        return {
            "name": self.name,
            "digest": {"sha256": self.sha256.removeprefix("sha256:")},
            "annotations": {**annotations, "provenance": self.provenance},
        }


def statement(
    subject: Subject,
    *,
    passed: list[str],
    failed: list[str],
    configuration: list[dict[str, Any]],
) -> dict[str, Any]:
    """The in-toto Statement of one test run (pure). PASSED only when tests ran and none failed."""
    result = "PASSED" if passed and not failed else "FAILED"
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject.as_dict()],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "result": result,
            "configuration": configuration,
            "passedTests": list(passed),
            "warnedTests": [],
            "failedTests": list(failed),
        },
    }


@dataclass(frozen=True)
class Stored:
    key: str
    where: str
    digest: str  # sha256 of the payload
    keyid: str


def store(trust: TrustContext, document: Mapping[str, Any]) -> Stored:
    """Sign `document` (a statement()) and keep it at its key, replacing an earlier result."""
    signer = trust.signer()
    payload = jcs_bytes(dict(document))
    envelope = sign(payload, PAYLOAD_TYPE, [signer])
    annotations = document["subject"][0]["annotations"]
    key = key_of(annotations["target"], annotations["image"], annotations["version"])
    data = json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n"
    update(trust.store, key, lambda _there: data)
    return Stored(key, trust.store.where, sha256(payload), signer_public_key(signer).keyid)


@dataclass(frozen=True)
class TestStatus:
    """What the registry says of an image's tests, checked."""

    __test__ = False  # not a pytest test class

    state: State
    detail: str
    passed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    signed_by: tuple[str, ...] = ()

    @property
    def line(self) -> str:
        """'passed (3 tests, signed by ...)', 'failed: ...', 'none ...': verify's check line."""
        return (
            f"{self.state}: {self.detail}" if self.state in ("failed", "invalid") else f"{self.state} ({self.detail})"
        )


def read(trust: TrustContext, record: ImageRecord, provenance_digest: str | None) -> TestStatus:
    """The image's test result as the registry holds it, verified: `invalid` when it is not a
    result signed by trust.threshold trusted keys about exactly this image (its provenance statement's digest
    `provenance_digest`). Raises what the store raises (ProviderError)."""
    return read_of(trust, record.target, record.name, record.version, provenance_digest)


def read_of(trust: TrustContext, target: str, name: str, version: str, provenance_digest: str | None) -> TestStatus:
    """read() for the image `name`@`version` on `target`."""
    key = key_of(target, name, version)
    blob = trust.store.get(key)
    if blob is None:
        return TestStatus("none", f"no test result in {trust.store.where}")
    try:
        envelope = documents.parse_object(blob.data)
        verified = verify(envelope, trust.keys, trust.threshold, payload_type=PAYLOAD_TYPE)
    except (ValueError, TrustError) as exc:
        return TestStatus("invalid", f"{key} does not verify: {getattr(exc, 'message', exc)}")
    problems = _problems(verified.document, (name, version, target), provenance_digest)
    if problems:
        return TestStatus("invalid", f"{key}: " + "; ".join(problems))
    predicate = verified.document["predicate"]
    passed = tuple(str(t) for t in predicate.get("passedTests") or [])
    failed = tuple(str(t) for t in predicate.get("failedTests") or [])
    signers = ", ".join(verified.signed_by)
    if predicate["result"] == "PASSED":
        return TestStatus("passed", f"{len(passed)} tests, signed by {signers}", passed, failed, verified.signed_by)
    if predicate["result"] == "WARNED":
        warned = [str(t) for t in predicate.get("warnedTests") or []]
        said = f"; warned: {'; '.join(warned[:NAMES_SHOWN])}" if warned else ""
        detail = f"{len(passed)} passed, {len(warned)} warned, signed by {signers}{said}"
        return TestStatus("warned", detail, passed, failed, verified.signed_by)
    shown = "; ".join(failed[:NAMES_SHOWN]) + (
        f" (and {len(failed) - NAMES_SHOWN} more)" if len(failed) > NAMES_SHOWN else ""
    )
    return TestStatus("failed", shown or "no test ran", passed, failed, verified.signed_by)


def _problems(document: Mapping[str, Any], image: tuple[str, str, str], provenance_digest: str | None) -> list[str]:
    if document.get("predicateType") != PREDICATE_TYPE:
        return [f"predicateType is {document.get('predicateType')!r}, not {PREDICATE_TYPE}"]
    predicate = document.get("predicate")
    subjects = document.get("subject")
    if not isinstance(predicate, dict) or not isinstance(subjects, list) or not subjects:
        return ["not a test-result statement (no predicate or subject)"]
    annotations = subjects[0].get("annotations") if isinstance(subjects[0], dict) else None
    if not isinstance(annotations, dict):
        return ["its subject names no image"]
    problems = []
    for field, wanted in zip(("image", "version", "target"), image, strict=True):
        if annotations.get(field) != wanted:
            problems.append(f"it is about {field} {annotations.get(field)!r}, not {wanted!r}")
    if provenance_digest is not None and annotations.get("provenance") != provenance_digest:
        problems.append("it is about another provenance statement than the one this image carries")
    if predicate.get("result") not in RESULTS:
        problems.append(f"result is {predicate.get('result')!r}, not one of {', '.join(RESULTS)}")
    for field in ("passedTests", "warnedTests", "failedTests"):
        value = predicate.get(field, [])
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            problems.append(f"{field} is not a list of names")
    return problems


# --- what the `tests: passed` gate of a channel reads (bakery/promote/gates.py) ---------------


@dataclass(frozen=True)
class TestResult:
    """An image's tests as a gate sees them: `result` PASSED, WARNED or FAILED; MISSING when there is
    none; UNTRUSTED when there is one that does not verify (`detail` says why)."""

    __test__ = False  # not a pytest class

    result: str
    detail: str
    signed_by: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # the failed tests it names


class TestResults(Protocol):
    """Where the `tests: passed` gate reads an image's result."""

    def result(self, target: str, image: str, version: str, provenance: str) -> TestResult: ...


class RegistryTestResults:
    """TestResults as read() finds them in the registry."""

    __test__ = False

    def __init__(self, trust: TrustContext) -> None:
        self.trust = trust

    def result(self, target: str, image: str, version: str, provenance: str) -> TestResult:
        status = read_of(self.trust, target, image, version, provenance or None)
        result = {
            "passed": "PASSED",
            "warned": "WARNED",
            "failed": "FAILED",
            "none": "MISSING",
            "invalid": "UNTRUSTED",
        }[status.state]
        if status.state in ("passed", "warned"):
            detail = f"{result} ({status.detail})"
        elif status.state == "failed":  # the gate names the failed tests itself
            detail = f"{result} (signed by {', '.join(status.signed_by)})"
        elif status.state == "none":
            detail = f"no test result at {key_of(target, image, version)} in {self.trust.store.where}"
        else:
            detail = f"{result}: {status.detail}"
        return TestResult(result, detail, status.signed_by, status.failed[:10])
