"""Each gate of a channel, through the CLI: `stable` takes a version only after it was the head of
`testing` for 24h and web-eu (which follows testing) ran it that long, its test result says PASSED,
and two trusted keys other than the builder's and the promoter's approved it. Each refusal names
its gate with what it saw (exit 1) and is an audit event; an override is loud and recorded."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from bakery.trust.approvals import Approvals
from bakery.trust.keys import _file_signer
from bakery.trust.signing import Signer
from tests.unit.promote.conftest import Clock, as_key, json_of
from tests.unit.promote.test_promote import approve, passed_tests, promote, refused_gates, trust_of
from tests.unit.trust.conftest import World


def soaked(world: World, clock: Clock, *, days_ago: float = 3, ran_for: dict[str, float] | None = None) -> str:
    """A bake, promoted to testing `days_ago` days ago, rolled onto web-eu (now), and the clock
    moved on by `ran_for` (default: two days)."""
    ref = world.bake()
    clock.set(days=-days_ago)
    assert promote(world, ref, "testing").exit_code == 0
    clock.at = None
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    clock.set(**(ran_for or {"days": 2}))
    return ref


def ready(world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> str:
    ref = soaked(world, clock)
    passed_tests(world, ref)
    for name in ("alice", "bob"):
        assert approve(world, monkeypatch, ref, name).exit_code == 0
    return ref


def audit_of(world: World, action: str) -> list[dict[str, Any]]:
    return [e for e in world.audit() if e["action"] == action]


def test_a_version_that_passed_every_gate_becomes_the_head_of_stable_with_its_record(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = ready(world, clock, monkeypatch)
    result = promote(world, ref, "stable")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"promoted: {ref} is the head of stable on aws (was none; move 1)"
    assert "  ok   approvals: 2 of 2 approvals (alice, bob)" in result.stdout
    assert "  ok   soak: head of testing for 5d 0h; group web-eu ran it for 2d 0h (needs 24h)" in result.stdout
    assert "  ok   tests: PASSED (1 tests, signed by ops)" in result.stdout

    [view] = json_of(world.run("channels", "stable", "--json"))["channels"]
    [move] = view["moves"]
    assert [a["key"] for a in move["approvals"]] == ["alice", "bob"]
    assert [a["comment"] for a in move["approvals"]] == ["checked by alice", "checked by bob"]
    assert {g["name"] for g in move["gates"] if g["ok"]} == {
        "verified", "revocation", "promote_from", "soak", "tests", "approvals"
    }  # fmt: skip
    assert "channel stable gates: promote_from testing, soak 24h, tests passed, approvals 2" in move["policy"]
    checked = world.run("verify", ref, "--target", "aws", "--channel", "stable")
    assert checked.exit_code == 0, checked.output
    assert "  ok   channel: head of stable (since " in checked.stdout


def test_soak_too_short_names_the_group_that_ran_it_too_briefly(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = soaked(world, clock, ran_for={"hours": 1})
    passed_tests(world, ref)
    for name in ("alice", "bob"):
        approve(world, monkeypatch, ref, name)
    gates = refused_gates(promote(world, ref, "stable"))
    assert gates == {"soak": "head of testing for 3d 1h; group web-eu ran it for 1h 0m (needs 24h)"}
    assert audit_of(world, "promote")[-1]["result"] == "refused"


def test_soak_too_short_as_the_head_of_the_previous_channel_is_refused_where_no_group_follows_it(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No group follows testing here: its head time alone decides the soak."""
    from tests.unit.promote.conftest import CHANNELS, TRUST
    from tests.unit.trust.conftest import project_yaml

    world.project_dir.write(project_yaml(TRUST) + CHANNELS)
    ref = world.bake()
    clock.set(hours=-23)
    assert promote(world, ref, "testing").exit_code == 0
    clock.at = None
    passed_tests(world, ref)
    for name in ("alice", "bob"):
        approve(world, monkeypatch, ref, name)
    gates = refused_gates(promote(world, ref, "stable"))
    assert gates == {"soak": "head of testing for 23h 0m (needs 24h)"}
    clock.set(hours=1, minutes=1)
    assert promote(world, ref, "stable").exit_code == 0


def test_the_builder_cannot_approve_and_the_promoters_own_approval_does_not_count(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = soaked(world, clock)
    passed_tests(world, ref)
    own = approve(world, monkeypatch, ref, "ops")  # ops signed the bake
    assert own.exit_code == 1, own.output
    assert f"error: refusing the approval of {ref} by ops: ops built it (signed its provenance)" in own.stderr
    assert audit_of(world, "approve")[-1]["result"] == "refused"

    assert approve(world, monkeypatch, ref, "alice").exit_code == 0
    as_key(monkeypatch, world, "alice")  # alice promotes what she approved
    gates = refused_gates(promote(world, ref, "stable"))
    assert gates == {
        "approvals": "0 of 2 approvals (none); not counted: alice approved it, but alice is promoting it",
    }


def test_an_approval_signed_by_an_untrusted_key_counts_for_nothing_and_is_named(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = soaked(world, clock)
    passed_tests(world, ref)
    approve(world, monkeypatch, ref, "bob")
    mallory = _file_signer(world.project_dir.root / "keys" / "mallory.key", name="mallory", where="", error=ValueError)
    _approve_as(world, mallory, ref)
    gates = refused_gates(promote(world, ref, "stable"))
    assert gates["approvals"].startswith(f"1 of 2 approvals (bob); not counted: key {mallory.public_key.keyid[:8]}")
    assert f"signed by key {mallory.public_key.keyid[:8]}… which is not in trust.keys" in gates["approvals"]


def _approve_as(
    world: World, signer: Signer, ref: str, *, provenance: str = "sha256:00", by: str = "mallory@evil"
) -> None:
    """An approval written straight to the registry with `signer` (a key this project may not
    trust), naming `provenance`, by `by`: no `bakery approve` refused it first."""

    class Elsewhere:
        def __init__(self) -> None:
            self.trust = trust_of(world)
            self.store, self.keys = self.trust.store, self.trust.keys

        def signer(self) -> Signer:
            return signer

    name, version = ref.split("@")
    Approvals(Elsewhere()).approve(  # type: ignore[arg-type]
        "aws",
        name,
        version,
        "stable",
        provenance=provenance,
        by=by,
        time="2026-12-01T00:00:00Z",
        comment="",
    )


def test_a_revoked_version_is_never_promoted_not_even_with_an_override(world: World) -> None:
    ref = world.bake()
    assert world.run("revoke", ref, "--reason", "CVE-2026-9", "--target", "aws").exit_code == 0
    result = promote(world, ref, "testing")
    gates = refused_gates(result)
    assert list(gates) == ["revocation"] and gates["revocation"].startswith(f"{ref} is revoked since")
    assert audit_of(world, "promote")[-1]["result"] == "refused"
    overridden = promote(world, ref, "testing", "--override-gate", "revocation", "--reason", "hotfix")
    assert overridden.exit_code == 2
    assert "--override-gate takes promote_from, soak, tests, approvals, scan, not 'revocation'" in overridden.stderr


def test_failed_tests_refuse_the_promotion_naming_what_failed(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = soaked(world, clock)
    passed_tests(world, ref, "FAILED")
    for name in ("alice", "bob"):
        approve(world, monkeypatch, ref, name)
    gates = refused_gates(promote(world, ref, "stable"))
    failed = "GET /healthz on port 80 answers 200: answered 500"
    # A failed test result is part of what verify checks: the version no longer verifies, so it is
    # neither approved nor promoted, and no override lets it through (verified is never overridable).
    assert gates == {
        "verified": f"tests: failed: {failed}",
        "tests": f"FAILED (signed by ops); failed: {failed}",
        "approvals": "0 of 2 approvals (none)",
    }


def test_an_overridden_gate_lets_the_version_through_loudly_and_on_the_record(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = soaked(world, clock)
    passed_tests(world, ref)
    no_reason = promote(world, ref, "stable", "--override-gate", "approvals")
    assert no_reason.exit_code == 2 and "--override-gate needs --reason TEXT" in no_reason.stderr
    result = promote(world, ref, "stable", "--override-gate", "approvals", "--reason", "INC-7: approvers away")
    assert result.exit_code == 0, result.output
    assert (
        "WARNING: gate approvals of stable FAILED (0 of 2 approvals (none)) and --override-gate lets" in result.stderr
    )
    assert "  OVERRIDDEN approvals: 0 of 2 approvals (none) (override: INC-7: approvers away)" in result.stdout
    [event] = audit_of(world, "override-gate")
    assert (event["result"], event["details"]["gate"], event["details"]["reason"]) == (
        "allowed",
        "approvals",
        "INC-7: approvers away",
    )
    [move] = json_of(world.run("channels", "stable", "--json"))["channels"][0]["moves"]
    assert move["overrides"] == [
        {"gate": "approvals", "saw": "0 of 2 approvals (none)", "reason": "INC-7: approvers away"}
    ]
    # The override's event, then the move's intent, land before the move is written; "ok" after it.
    events = [
        (e["action"], e["result"]) for e in world.audit() if e["subject"].startswith(f"{ref} on aws to channel st")
    ]
    assert events[-3:] == [("override-gate", "allowed"), ("promote", "intended"), ("promote", "ok")]


def test_rollback_moves_the_head_back_to_the_previous_good_head_and_no_further(world: World) -> None:
    first, second, third = world.bake(), world.bake(force=True), world.bake(force=True)
    for ref in (first, second, third):
        assert promote(world, ref, "testing").exit_code == 0
    assert world.run("revoke", second, "--reason", "CVE-3", "--target", "aws").exit_code == 0  # third stays head
    back = world.run("promote", "--rollback", "testing", "web", "--target", "aws", "--reason", "bad page")
    assert back.exit_code == 0, back.output
    assert back.stdout.startswith(f"rolled back: {first} is the head of testing on aws (was {third}; move 4)")
    assert f"note: skipped {second} (revoked since " in back.stderr
    again = world.run("promote", "--rollback", "testing", "web", "--target", "aws")
    assert again.exit_code == 2
    assert "testing has no earlier head of web on aws that is not revoked and verifies to go back to" in again.stderr
    event, done = audit_of(world, "promote-rollback")  # its intent (with the reason), then "ok"
    assert [event["result"], done["result"], done["details"]["move"]] == ["intended", "ok", event["details"]["move"]]
    assert (event["details"]["from"], event["details"]["to"], event["details"]["reason"]) == (
        third[4:],
        first[4:],
        "bad page",
    )
    verified = world.run("verify", third, "--target", "aws", "--channel", "testing")
    assert verified.exit_code == 0 and "no longer" in verified.stdout
    never = world.run("verify", third, "--target", "aws", "--channel", "stable")
    assert never.exit_code == 1
    assert f"  FAIL channel: {third} was never the head of stable on aws" in never.stdout


def test_a_channel_history_changed_in_the_registry_is_named_and_trusted_for_nothing(world: World) -> None:
    ref = world.bake()
    assert promote(world, ref, "testing").exit_code == 0
    path = Path(world.project_dir.home) / "registry" / "channels" / "testing" / "aws" / "web.json"
    doc = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(doc["entries"][0]["payload"]))
    statement["predicate"]["version"] = "9.9.9"
    doc["entries"][0]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(doc))
    shown = world.run("channels")
    assert shown.exit_code == 1
    assert "channels/testing/aws/web.json in " in shown.stderr
    assert "is not a channel history bakery can trust: entry 1 does not verify" in shown.stderr
    rolled = world.run("rollout", "web-eu", "--yes")
    assert rolled.exit_code == 1 and "entry 1 does not verify" in rolled.stderr


def test_a_channel_history_cut_short_in_the_registry_is_refused_against_the_signed_log(world: World) -> None:
    """An attacker with write access to the registry, no key: the newest signed moves deleted,
    which would move the channel back to an older head (and the nightly rollout --behind with it)."""
    refs = [world.bake(force=True) for _ in range(3)]
    for ref in refs:
        assert promote(world, ref, "testing").exit_code == 0, ref
    path = Path(world.project_dir.home) / "registry" / "channels" / "testing" / "aws" / "web.json"
    doc = json.loads(path.read_text())
    doc["entries"] = doc["entries"][:1]  # every entry still signed: a valid, shorter history
    path.write_text(json.dumps(doc))

    says = "the history of channel testing for web on aws went back: the signed audit log records its move 3"
    shown = world.run("channels")
    assert shown.exit_code == 1 and says in shown.stderr, shown.output
    assert "ends at move 1" in shown.stderr
    rolled = world.run("rollout", "web-eu", "--yes")
    assert rolled.exit_code == 1 and says in rolled.stderr, rolled.output
    assert world.driver.runs("web-eu") == {}
    assert promote(world, refs[0], "testing").exit_code == 1  # nothing is written on top of it either
    path.unlink()
    assert says in world.run("channels").stderr  # deleted: "is gone"
