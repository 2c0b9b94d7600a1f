"""Test results in the registry, as the `tests: passed` gate of a channel reads them.

The format (what `bakery test` and `bakery build` write, and nothing else need be agreed):

  key       tests/TARGET/IMAGE/VERSION.json
  content   a DSSE envelope (JSON), payloadType "application/vnd.in-toto+json", signed by keys in
            trust.keys (trust.threshold of them, as for an image's provenance)
  payload   an in-toto Statement v1:
              {"_type": "https://in-toto.io/Statement/v1",
               "subject": [{"name": "IMAGE@VERSION on TARGET",
                            "digest": {"sha256": "<hex of the image's provenance statement digest>"}}],
               "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
               "predicate": {"result": "PASSED" | "WARNED" | "FAILED",
                             "configuration": [...], "passedTests": [...], "failedTests": [...], ...}}

Only PASSED passes the gate. The subject's digest binds the result to the bake: a result for
another bake of the same version (an attestation replaced since) does not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bakery.core import documents
from bakery.errors import TrustError
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, verify

PREFIX = "tests/"
TEST_RESULT_PREDICATE = "https://in-toto.io/attestation/test-result/v0.1"
RESULTS = ("PASSED", "WARNED", "FAILED")


def key_of(target: str, image: str, version: str) -> str:
    return f"{PREFIX}{target}/{image}/{version}.json"


@dataclass(frozen=True)
class TestResult:
    """What the registry says of an image's tests: `result` PASSED, WARNED or FAILED; MISSING
    when there is none; UNTRUSTED when there is one that does not verify (`detail` says why)."""

    __test__ = False  # not a pytest class

    result: str
    detail: str
    signed_by: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # the failed tests it names


class TestResults(Protocol):
    """Where the `tests: passed` gate reads an image's result."""

    def result(self, target: str, image: str, version: str, provenance: str) -> TestResult: ...


class RegistryTestResults:
    """TestResults read from the registry in the format above."""

    __test__ = False

    def __init__(self, trust: TrustContext) -> None:
        self.trust = trust

    def result(self, target: str, image: str, version: str, provenance: str) -> TestResult:
        key = key_of(target, image, version)
        blob = self.trust.store.get(key)
        if blob is None:
            return TestResult("MISSING", f"no test result at {key} in {self.trust.store.where}")
        try:
            envelope = documents.parse_object(blob.data)
            verified = verify(envelope, self.trust.keys, self.trust.threshold, payload_type=PAYLOAD_TYPE)
        except ValueError as exc:
            return TestResult("UNTRUSTED", f"{key} is not a DSSE envelope: {exc}")
        except TrustError as exc:
            return TestResult("UNTRUSTED", f"{key} does not verify: {exc.message}")
        statement = verified.document
        predicate = statement.get("predicate")
        if statement.get("predicateType") != TEST_RESULT_PREDICATE or not isinstance(predicate, dict):
            return TestResult("UNTRUSTED", f"{key} is not a test result ({TEST_RESULT_PREDICATE})")
        subjects = statement.get("subject")
        digests = [
            s["digest"].get("sha256")
            for s in (subjects if isinstance(subjects, list) else [])
            if isinstance(s, dict) and isinstance(s.get("digest"), dict)
        ]
        if provenance.removeprefix("sha256:") not in digests:
            return TestResult("UNTRUSTED", f"{key} is about another bake (its subject is not {provenance})")
        result = predicate.get("result")
        if result not in RESULTS:
            return TestResult("UNTRUSTED", f"{key} has no result PASSED, WARNED or FAILED")
        failed = predicate.get("failedTests")
        names = (
            tuple(str(f.get("name", f)) if isinstance(f, dict) else str(f) for f in failed)
            if isinstance(failed, list)
            else ()
        )
        signed = ", ".join(verified.signed_by)
        return TestResult(str(result), f"{result} (signed by {signed})", verified.signed_by, names[:10])
