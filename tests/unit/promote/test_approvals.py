"""Who approves, and what: an approval counts only for the provenance it names, and never when the
person (not only the key) who built the version, moved it into the channel it comes from, or is
promoting it gave it; `bakery approve` by such a person is refused up front. `--override-gate`
names a gate the channel does not have, and says when it was not needed."""

from __future__ import annotations

import pytest

from bakery.core.identity import who
from bakery.trust.keys import _file_signer
from tests.unit.promote.conftest import Clock, as_key, as_myself, as_person, json_of
from tests.unit.promote.test_gates import _approve_as, audit_of, ready, soaked
from tests.unit.promote.test_promote import approve, digest_of, passed_tests, promote, refused_gates
from tests.unit.trust.conftest import World


def _signer(world: World, name: str) -> object:
    return _file_signer(world.project_dir.root / "keys" / f"{name}.key", name=name, where="", error=ValueError)


def test_an_approval_naming_another_provenance_does_not_count_and_is_named(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = soaked(world, clock)
    passed_tests(world, ref)
    assert approve(world, monkeypatch, ref, "alice").exit_code == 0
    # bob's signed approval of this version, but of another bake of it (or replayed from one)
    _approve_as(world, _signer(world, "bob"), ref, provenance="sha256:" + "ab" * 32, by="github:bob@org/infra#7")
    gates = refused_gates(promote(world, ref, "stable"))
    assert gates == {
        "approvals": f"1 of 2 approvals (alice); not counted: bob approves provenance sha256:abababababab…, "
        f"this version's is {digest_of(world, ref)[:19]}…"
    }


def test_the_person_who_built_it_cannot_approve_it_whatever_key_they_use(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = soaked(world, clock)  # baked here, by this machine's user
    passed_tests(world, ref)
    me = who()
    monkeypatch.setenv("BAKERY_SIGNING_KEY", str(world.project_dir.root / "keys" / "alice.key"))  # alice's key, me
    refused = world.run("approve", ref, "--for", "stable", "--target", "aws")
    assert refused.exit_code == 1, refused.output
    assert f"error: refusing the approval of {ref} by {me}: {me} built it (its signed provenance names them)" in (
        refused.stderr
    )
    event = audit_of(world, "approve")[-1]
    assert (event["result"], event["details"]["key"], event["details"]["by"]) == ("refused", "alice", me)
    as_myself(monkeypatch)

    # written past the refusal (by hand, or by an older bakery): counted for nothing, and named
    _approve_as(world, _signer(world, "alice"), ref, provenance=digest_of(world, ref), by=me)
    assert approve(world, monkeypatch, ref, "bob").exit_code == 0
    gates = refused_gates(promote(world, ref, "stable"))
    assert gates == {
        "approvals": f"1 of 2 approvals (bob); not counted: alice's approval is by {me}, who built it "
        "(its signed provenance names them)"
    }


def test_who_moved_it_into_the_channel_it_comes_from_cannot_approve_it_by_person_or_by_key(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = world.bake()
    monkeypatch.setenv("BAKERY_SIGNING_KEY", str(world.project_dir.root / "keys" / "bob.key"))
    as_person(monkeypatch, "carol")  # carol promotes it to testing; bob's key signs the move
    assert promote(world, ref, "testing").exit_code == 0
    as_key(monkeypatch, world, "alice")
    as_person(monkeypatch, "carol")  # carol again, with alice's key
    by_person = world.run("approve", ref, "--for", "stable", "--target", "aws")
    assert by_person.exit_code == 1, by_person.output
    carol = "github:carol@org/infra#7"
    assert f"refusing the approval of {ref} by {carol}: {carol} moved it into testing (move 1)" in by_person.stderr
    by_key = approve(world, monkeypatch, ref, "bob")  # bob himself, with the key that signed that move
    assert by_key.exit_code == 1, by_key.output
    assert f"refusing the approval of {ref} by bob: bob signed its move into testing (move 1)" in by_key.stderr
    assert [e["result"] for e in audit_of(world, "approve")] == ["refused", "refused"]


def test_an_approval_by_the_person_promoting_does_not_count_whatever_key_signs_the_promotion(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = ready(world, clock, monkeypatch)  # alice and bob approved it, each as themselves
    as_person(monkeypatch, "alice")  # alice promotes it, with this machine's key (ops)
    gates = refused_gates(promote(world, ref, "stable"))
    assert gates == {
        "approvals": "1 of 2 approvals (bob); not counted: alice's approval is by github:alice@org/infra#7, who is "
        "promoting it"
    }


def test_override_gate_names_a_gate_the_channel_does_not_have_and_says_when_one_was_not_needed(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = ready(world, clock, monkeypatch)
    none = promote(world, ref, "testing", "--override-gate", "soak", "--reason", "hurry")
    assert none.exit_code == 2, none.output
    assert "error: channel testing has no soak gate; its gates: none" in none.stderr
    text = world.project_dir.config.read_text()
    world.project_dir.write(text.replace("    soak: 24h\n", ""))
    no_soak = promote(world, ref, "stable", "--override-gate", "soak", "--reason", "hurry")
    assert no_soak.exit_code == 2, no_soak.output
    assert "error: channel stable has no soak gate; its gates: promote_from, tests, approvals" in no_soak.stderr
    world.project_dir.write(text)

    passed = promote(world, ref, "stable", "--override-gate", "tests", "--reason", "just in case")
    assert passed.exit_code == 0, passed.output
    assert "gate tests passed; --override-gate tests was not needed and is not recorded" in passed.stderr
    assert audit_of(world, "override-gate") == []
    [move] = json_of(world.run("channels", "stable", "--json"))["channels"][0]["moves"]
    assert move["overrides"] == [] and all(not g["overridden"] for g in move["gates"])
