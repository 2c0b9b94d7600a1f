"""A channel's history is trusted only as far as the signed audit log records it: a move written
into the registry with one trusted key and no `bakery promote` (no gate, no audit event) is never
followed, not even for a moment (bakery appends a move's event before writing it: test_write_ahead.py
kills a promotion between the two). A promotion into a channel with `approvals:` carries the signed
approvals, and they are checked again whenever the channel is read."""

from __future__ import annotations

import pytest

from bakery.trust.approvals import Approvals
from bakery.trust.channels import Channels, Proposal
from tests.unit.promote.conftest import Clock, as_key, as_myself, json_of
from tests.unit.promote.test_follow import promote
from tests.unit.promote.test_gates import ready
from tests.unit.promote.test_promote import approve, digest_of, trust_of
from tests.unit.trust.conftest import World

FORGED_GATES = [{"name": "approvals", "ok": True, "saw": "2 of 2 (alice, bob)", "overridden": ""}]


def _forge(world: World, monkeypatch: pytest.MonkeyPatch, ref: str, channel: str, **more: object) -> int:
    """A promotion written straight into the registry with alice's key (an approver's), past `bakery promote`."""
    as_key(monkeypatch, world, "alice")
    try:
        digest = digest_of(world, ref)
        move = Channels(trust_of(world)).append(
            channel,
            "aws",
            "web",
            lambda _current: Proposal(
                "promote",
                ref.split("@")[1],
                digest,
                "forged",
                "github:alice@org/infra#7",
                **more,  # type: ignore[arg-type]
            ),
        )
    finally:
        as_myself(monkeypatch)
    assert move is not None
    return move.seq


def _follow(world: World, channel: str) -> None:
    text = world.project_dir.config.read_text()
    world.project_dir.write(text.replace("    channel: testing\n", f"    channel: {channel}\n"))


def test_a_move_without_its_audit_event_makes_the_channel_untrusted_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = world.bake()
    promote(world, v1)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    v2 = world.bake(force=True)  # never tested, never promoted by bakery
    assert _forge(world, monkeypatch, v2, "testing") == 2

    untrusted = (
        "channel testing for web on aws cannot be trusted: move 2 (promote to 1.0.1) has no event in the audit log"
    )
    for args in (("channels", "testing"), ("rollout", "web-eu", "--yes"), ("rollout", "--behind", "--yes")):
        refused = world.run(*args)
        assert refused.exit_code == 1, (args, refused.output)
        assert untrusted in refused.stderr, args
    status = world.run("status", "web-eu")
    assert status.exit_code == 1, status.output
    assert untrusted in status.stdout
    verify = world.run("verify", v2, "--target", "aws", "--channel", "testing")
    assert verify.exit_code == 1, verify.output
    assert untrusted in verify.stdout
    v3 = world.bake(force=True)
    again = world.run("promote", v3, "--to", "testing", "--target", "aws")
    assert again.exit_code == 1, again.output
    assert untrusted in again.stderr
    assert world.driver.runs("web-eu") == {v1: 2}
    assert not [e for e in world.audit() if e["action"] == "promote" and e["subject"].startswith((v2, v3))]


def test_a_forged_promotion_into_a_channel_with_approvals_is_refused_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _follow(world, "stable")
    ref = world.bake()  # never tested, never approved, never in testing
    _forge(world, monkeypatch, ref, "stable", gates=FORGED_GATES)
    untrusted = (
        "channel stable for web on aws cannot be trusted: move 1 (promote to 1.0.0) carries 0 valid approvals of "
        "the 2 channel stable needs"
    )
    for args in (("channels", "stable"), ("rollout", "web-eu", "--yes")):
        refused = world.run(*args)
        assert refused.exit_code == 1, (args, refused.output)
        assert untrusted in refused.stderr, args
    verify = world.run("verify", ref, "--target", "aws", "--channel", "stable")
    assert verify.exit_code == 1, verify.output
    assert untrusted in verify.stdout
    assert world.driver.runs("web-eu") == {}


def test_real_approvals_carried_by_a_move_their_own_approver_signed_do_not_count(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = ready(world, clock, monkeypatch)  # soaked in testing, tested, approved by alice and bob
    promoted = world.run("promote", ref, "--to", "stable", "--target", "aws", "--json")
    assert promoted.exit_code == 0, promoted.output
    carried = json_of(promoted)["approvals"]
    assert sorted(a["key"] for a in carried) == ["alice", "bob"]
    assert all(a["envelope"]["signatures"] for a in carried)
    assert world.run("channels", "stable").exit_code == 0  # bakery's own promotion holds when read again

    v2 = world.bake(force=True)
    for name in ("alice", "bob"):
        assert approve(world, monkeypatch, v2, name).exit_code == 0
    found = Approvals(trust_of(world)).read("aws", "web", v2.split("@")[1], "stable")
    both = [{**a.as_dict(), "envelope": a.envelope} for a in found]
    assert sorted(a["key"] for a in both) == ["alice", "bob"]
    _forge(world, monkeypatch, v2, "stable", gates=FORGED_GATES, approvals=both)  # signed by alice herself
    refused = world.run("channels", "stable")
    assert refused.exit_code == 1, refused.output
    assert "move 2 (promote to 1.0.1) carries 1 valid approval of the 2 channel stable needs" in refused.stderr
