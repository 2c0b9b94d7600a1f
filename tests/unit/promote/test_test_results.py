"""Signed test results are read as README says: signed by trust.threshold trusted keys, and
`result: PASSED | WARNED | FAILED`. WARNED is recognised: `bakery verify` says "tests: warned" and
does not fail; a channel's `tests: passed` gate does not let it through."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bakery.core.jcs import jcs_bytes
from bakery.registry.base import update
from bakery.trust import testresults
from bakery.trust.keys import _file_signer
from bakery.trust.signing import PAYLOAD_TYPE, sign
from tests.unit.promote.conftest import as_key, as_myself, json_of
from tests.unit.promote.test_promote import digest_of, promote, refused_gates, trust_of
from tests.unit.trust.conftest import World


def _signer(world: World, name: str) -> Any:
    return _file_signer(world.project_dir.root / "keys" / f"{name}.key", name=name, where="", error=ValueError)


def _result(world: World, ref: str, result: str, signers: list[Any], digest: str = "") -> None:
    """A test result for `ref` (its provenance `digest`), in the format bakery/trust/testresults.py
    documents, signed by `signers`, in place of any there."""
    name, version = ref.split("@")
    digest = digest or digest_of(world, ref)
    subject = testresults.Subject(f"{ref} on aws", digest, name, version, "aws", digest)
    document = testresults.statement(subject, passed=["GET / on port 80 answers 200"], failed=[], configuration=[])
    document["predicate"]["result"] = result
    document["predicate"]["warnedTests"] = ["GET /slow on port 80 answered in 4s"] if result == "WARNED" else []
    envelope = sign(jcs_bytes(document), PAYLOAD_TYPE, signers)
    data = json.dumps(envelope).encode()
    update(trust_of(world).store, testresults.key_of("aws", name, version), lambda _there: data)


def _checks(world: World, ref: str) -> tuple[int, dict[str, str]]:
    result = world.run("verify", ref, "--target", "aws", "--json")
    return result.exit_code, {c["name"]: c["detail"] for c in json_of(result)["checks"]}


def test_a_warned_result_does_not_fail_verify_and_does_not_pass_a_tests_gate(world: World) -> None:
    text = world.project_dir.config.read_text()
    world.project_dir.write(text.replace("  testing: {}\n", "  testing: {tests: passed}\n"))
    ref = world.bake()
    _result(world, ref, "WARNED", [_signer(world, "ops")])
    code, checks = _checks(world, ref)
    assert code == 0
    assert checks["tests"] == (
        "warned (1 passed, 1 warned, signed by ops; warned: GET /slow on port 80 answered in 4s)"
    )
    gates = refused_gates(promote(world, ref, "testing"))
    assert gates == {"tests": "WARNED (1 passed, 1 warned, signed by ops; warned: GET /slow on port 80 answered in 4s)"}


def test_a_test_result_needs_trust_threshold_signatures(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    text = world.project_dir.config.read_text()
    world.project_dir.write(
        text.replace("  signing: {key_file: keys/ops.key}\n", "  signing: {key_file: keys/ops.key}\n  threshold: 2\n")
    )
    ref = world.bake()
    as_key(monkeypatch, world, "alice")
    assert world.run("sign", ref, "--target", "aws").exit_code == 0  # the image itself at the threshold
    as_myself(monkeypatch)
    digest = digest_of(world, ref)
    _result(world, ref, "PASSED", [_signer(world, "ops")], digest)
    code, checks = _checks(world, ref)
    assert code == 1
    assert checks["tests"] == (
        "invalid: tests/aws/web/1.0.0.json does not verify: 1 valid signature (ops) of the 2 trust.threshold needs"
    )

    _result(world, ref, "PASSED", [_signer(world, "ops"), _signer(world, "alice")], digest)
    code, checks = _checks(world, ref)
    assert (code, checks["tests"]) == (0, "passed (1 tests, signed by ops, alice)")
