"""`bakery promote`, `approve`, `channels` and `promote --rollback` through the CLI, against the fake
cloud: the head moves only once every gate passes, a refusal names every failed gate with what it
saw and is on the record, and the channel's history is signed and chained."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bakery.core.jcs import jcs_bytes
from bakery.progress import Recording
from bakery.trust import testresults
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, sign
from bakery.workspace import Workspace
from tests.unit.promote.conftest import Clock, as_key, as_myself, json_of
from tests.unit.trust.conftest import World


def trust_of(world: World) -> TrustContext:
    return TrustContext(world.project_dir.load(), Workspace(world.project_dir.home), Recording())


def digest_of(world: World, ref: str) -> str:
    result = world.run("verify", ref, "--target", "aws", "--json")
    assert result.exit_code == 0, result.output
    return str(json_of(result)["digest"])


def passed_tests(world: World, ref: str, result: str = "PASSED", *, signer: Any = None) -> None:
    """A test result for `ref` in the registry, in the format bakery/trust/testresults.py documents."""
    trust = trust_of(world)
    name, version = ref.split("@")
    digest = digest_of(world, ref)
    subject = testresults.Subject(f"{ref} on aws", digest, name, version, "aws", digest)
    failed = [] if result == "PASSED" else ["GET /healthz on port 80 answers 200: answered 500"]
    document = testresults.statement(subject, passed=["GET / on port 80 answers 200"], failed=failed, configuration=[])
    envelope = sign(jcs_bytes(document), PAYLOAD_TYPE, [signer or trust.signer()])
    trust.store.create(testresults.key_of("aws", name, version), json.dumps(envelope).encode())


def promote(world: World, ref: str, channel: str, *more: str) -> Any:
    return world.run("promote", ref, "--to", channel, "--target", "aws", *more)


def refused_gates(result: Any) -> dict[str, str]:
    assert result.exit_code == 1, result.output
    lines = [line.removeprefix("  - ") for line in result.stderr.splitlines() if line.startswith("  - ")]
    return dict(line.split(": ", 1) for line in lines)


def approve(world: World, monkeypatch: pytest.MonkeyPatch, ref: str, name: str) -> Any:
    as_key(monkeypatch, world, name)
    try:
        return world.run("approve", ref, "--for", "stable", "--target", "aws", "--comment", f"checked by {name}")
    finally:
        as_myself(monkeypatch)


def test_a_version_promoted_to_a_channel_without_gates_is_its_head_signed_and_on_the_record(world: World) -> None:
    ref = world.bake()
    result = promote(world, ref, "testing")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"promoted: {ref} is the head of testing on aws (was none; move 1)\n")

    shown = world.run("channels", "testing", "--json")
    assert shown.exit_code == 0, shown.output
    [view] = json_of(shown)["channels"]
    assert (view["channel"], view["image"], view["target"], view["head"]) == ("testing", "web", "aws", ref[4:])
    [move] = view["moves"]
    assert (move["action"], move["signed_by"], move["provenance"]) == ("promote", ["ops"], digest_of(world, ref))
    assert "channel testing gates: none" in move["policy"]
    assert ("promote", f"{ref} on aws to channel testing", "ok") in [
        (e["action"], e["subject"], e["result"]) for e in world.audit()
    ]


def test_a_refused_promotion_names_every_failed_gate_with_what_it_saw_and_is_an_audit_event(
    world: World, clock: Clock
) -> None:
    ref = world.bake()
    result = promote(world, ref, "stable")
    gates = refused_gates(result)
    assert f"refusing to promote {ref} on aws to stable: promote_from, soak, tests, approvals failed" in result.stderr
    assert gates == {
        "promote_from": f"{ref} was never the head of testing on aws (its head: none)",
        "soak": "never the head of testing; group web-eu never ran it (needs 24h)",
        "tests": f"no test result at tests/aws/web/{ref[4:]}.json in {world.project_dir.home}/registry/",
        "approvals": "0 of 2 approvals (none)",
    }
    refusal = [e for e in world.audit() if e["action"] == "promote"][-1]
    assert refusal["result"] == "refused"
    assert {g["name"]: g["ok"] for g in refusal["details"]["gates"]} == {
        "verified": True,
        "revocation": True,
        "promote_from": False,
        "soak": False,
        "tests": False,
        "approvals": False,
    }
    assert json_of(world.run("channels", "--json"))["channels"] == []  # a refusal moves nothing


def test_a_channel_with_auto_needs_tests_passed_and_an_untested_bake_is_not_promoted(world: World) -> None:
    alone = world.project_dir.config.read_text().replace("  testing: {}\n", "  testing: {auto: true}\n")
    world.project_dir.write(alone)
    refused = world.run("validate")
    assert refused.exit_code == 2 and "'auto: true' promotes every tested bake: add 'tests: passed'" in refused.output
    world.project_dir.write(alone.replace("  testing: {auto: true}\n", "  testing: {auto: true, tests: passed}\n"))
    gated = world.run("build", "web", "--target", "aws")  # this project's web declares no tests
    assert gated.exit_code == 0, gated.output
    assert "note: not promoted to testing (auto): refusing to promote web@1.0.0 on aws to testing: tests failed" in (
        gated.stderr
    )
    assert json_of(world.run("channels", "testing", "--json"))["channels"] == []


def test_what_promote_and_rollout_cannot_do_is_a_usage_error(world: World) -> None:
    ref = world.bake()
    cases = [
        (("promote", ref), "say either --to CHANNEL (promote) or --rollback CHANNEL"),
        (("promote", ref, "--to", "prod", "--target", "aws"), "no channel 'prod'"),
        (("promote", "web", "--to", "testing", "--target", "aws"), "say which version: web@MAJOR.MINOR.PATCH"),
        (("approve", ref, "--for", "qa"), "no channel 'qa'"),
        (("channels", "qa"), "no channel 'qa'"),
        (("verify", ref, "--target", "aws", "--channel", "qa"), "no channel 'qa'; channels: stable, testing"),
        (("rollout",), "say which group to roll out (or --behind: every group behind its channel)"),
        (("rollout", "web-eu", "--behind"), "--behind takes no GROUP"),
    ]
    for args, said in cases:
        result = world.run(*args)
        assert (result.exit_code, said in result.stderr) == (2, True), (args, result.output)
    assert json_of(world.run("channels", "--json"))["channels"] == []
