"""What `promote` and `channels` say for a mistaken request, and the shape of their --json."""

from __future__ import annotations

from tests.unit.promote.conftest import json_of
from tests.unit.promote.test_follow import promote
from tests.unit.trust.conftest import World


def test_mistaken_promote_requests_say_what_to_type_instead(world: World) -> None:
    world.bake()
    versioned = world.run("promote", "web@1.0.0", "--rollback", "testing")
    assert versioned.exit_code == 2, versioned.output
    assert (
        "error: --rollback CHANNEL IMAGE takes an image name without a version: `bakery promote --rollback testing "
        "web` moves testing's head back to the previous head that is still good"
    ) in versioned.stderr

    reason = world.run("promote", "web@1.0.0", "--to", "stable", "--target", "aws", "--reason", "x")
    assert reason.exit_code == 2, reason.output
    assert "error: --reason goes with --override-gate NAME (or with --rollback)" in reason.stderr
    assert [e for e in world.audit() if e["action"] == "promote"] == []  # nothing was checked nor recorded

    missing = world.run("promote", "web@9.9.9", "--to", "testing", "--target", "aws")
    assert missing.exit_code == 2, missing.output
    assert "error: no baked image web@9.9.9 on aws in the catalog" in missing.stderr


def test_a_refused_promotion_s_json_error_carries_every_gate(world: World) -> None:
    ref = world.bake()
    refused = world.run("promote", ref, "--to", "stable", "--target", "aws", "--json")
    assert refused.exit_code == 1, refused.output
    error = json_of(refused)
    assert (error["kind"], error["exit_code"]) == ("error", 1)
    gates = {g["name"]: g["ok"] for g in error["details"]["gates"]}
    assert gates == {
        "verified": True,
        "revocation": True,
        "promote_from": False,
        "soak": False,
        "tests": False,
        "approvals": False,
    }


def test_promote_and_channels_json_say_from_not_from_(world: World) -> None:
    first = world.bake()
    promote(world, first)
    second = world.bake(force=True)
    done = world.run("promote", second, "--to", "testing", "--target", "aws", "--json")
    assert done.exit_code == 0, done.output
    assert json_of(done)["from"] == first.split("@")[1] and "from_" not in json_of(done)
    moves = json_of(world.run("channels", "testing", "--json"))["channels"][0]["moves"]
    assert [m["from"] for m in moves] == [None, first.split("@")[1]]
    assert all("from_" not in m for m in moves)
