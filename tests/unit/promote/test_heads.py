"""A channel's head as the groups that follow it see it: a head that no longer verifies is skipped
(by `promote --rollback`, by the effective head) and said; a resumed rollout says when the channel
moved since it started and is refused once its image no longer verifies; `status` exits 1 for a
channel history it cannot trust; the soak gate's "ran it healthy" ends at the next rollout event
that moved the group off the version or left it mixed."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.unit.promote.conftest import Clock
from tests.unit.promote.test_gates import audit_of, soaked
from tests.unit.promote.test_promote import approve, passed_tests, promote, refused_gates
from tests.unit.trust.conftest import World

CHANGED = "(does not verify: subject: "


def promoted(world: World, *refs: str) -> None:
    for ref in refs:
        assert promote(world, ref, "testing").exit_code == 0, ref


def test_rollback_skips_a_previous_head_that_no_longer_verifies_and_says_why(world: World) -> None:
    first, second, third = world.bake(), world.bake(force=True), world.bake(force=True)
    promoted(world, first, second, third)
    world.fake.change(world.image_id(second), b"not what was signed")
    back = world.run("promote", "--rollback", "testing", "web", "--target", "aws")
    assert back.exit_code == 0, back.output
    assert back.stdout.startswith(f"rolled back: {first} is the head of testing on aws (was {third}; move 4)")
    assert f"note: skipped {second} {CHANGED}" in back.stderr and "changed since it was signed" in back.stderr
    event, done = audit_of(world, "promote-rollback")  # its intent (with what it skipped), then "ok"
    assert [event["result"], done["result"], done["details"]["to"]] == ["intended", "ok", first[4:]]
    assert event["details"]["to"] == first[4:] and event["details"]["skipped"][0].startswith(f"{second} {CHANGED}")


def test_a_head_that_no_longer_verifies_is_skipped_like_a_revoked_one_and_said(world: World) -> None:
    first, second = world.bake(), world.bake(force=True)
    promoted(world, first, second)
    world.fake.change(world.image_id(second), b"not what was signed")
    shown = world.run("channels", "testing")
    assert shown.exit_code == 0, shown.output
    assert f"testing / web on aws: head {first}\n  fell back past: {second} {CHANGED}" in shown.stdout
    rolled = world.run("rollout", "web-eu", "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert f"channel testing fell back past {second} {CHANGED}" in rolled.stderr
    assert world.driver.runs("web-eu") == {first: 2}


def test_a_resumed_rollout_says_its_channel_moved_since_it_started(world: World) -> None:
    first = world.bake()
    promoted(world, first)
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--yes").exit_code == 130
    second = world.bake(force=True)
    promoted(world, second)
    resumed = world.run("rollout", "web-eu", "--yes")
    assert resumed.exit_code == 0, resumed.output
    said = " ".join(resumed.stderr.split())
    assert re.search(
        rf"channel testing moved since r-\S+ of web-eu started: its head is {second}, was {first}; "
        rf"resuming rolls {first} still \(`bakery rollback web-eu` undoes r-\S+; then `bakery rollout web-eu` "
        r"rolls the head of testing\)",
        said,
    ), resumed.stderr
    assert world.driver.runs("web-eu") == {first: 2}


def test_a_resumed_rollout_onto_an_image_that_no_longer_verifies_is_refused_pointing_at_the_head(
    world: World,
) -> None:
    first = world.bake()
    promoted(world, first)
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--yes").exit_code == 130
    world.fake.change(world.image_id(first), b"not what was signed")
    resumed = world.run("rollout", "web-eu", "--yes")
    assert resumed.exit_code == 1, resumed.output
    assert f"error: refusing to rollout web-eu onto {first}: it does not verify" in resumed.stderr
    hint = " ".join(resumed.stderr.split("hint: ", 1)[1].split())
    assert re.match(
        r"rollout r-\S+ of web-eu is unfinished \(stopped at wave-2\); `bakery rollback web-eu` undoes r-\S+; "
        r"then `bakery rollout web-eu` rolls the head of testing",
        hint,
    ), hint
    assert audit_of(world, "verify-failed")[-1]["result"] == "refused"
    assert world.driver.runs("web-eu") == {first: 1}  # the half it had when interrupted, no further


def test_status_exits_1_naming_a_followed_channel_whose_history_does_not_verify(world: World) -> None:
    first = world.bake()
    promoted(world, first)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    path = Path(world.project_dir.home) / "registry" / "channels" / "testing" / "aws" / "web.json"
    doc = json.loads(path.read_text())
    doc["entries"][0]["signatures"][0]["sig"] = base64.b64encode(b"\0" * 64).decode()
    path.write_text(json.dumps(doc))
    status = world.run("status", "web-eu")
    assert status.exit_code == 1, status.output
    assert "  channel:   testing: CANNOT BE TRUSTED (its head is unknown; exit 1)\n" in status.stdout
    assert "  drift:     channel testing cannot be read: channels/testing/aws/web.json in " in status.stdout
    assert "is not a channel history bakery can trust: entry 1 does not verify" in status.stdout


def test_soak_ends_at_a_later_rollout_that_left_the_group_mixed_not_only_at_one_that_succeeded(
    world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = soaked(world, clock, ran_for={"seconds": 0})  # web-eu rolled onto it, now
    other = world.bake(force=True)
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--image", other, "--yes").exit_code == 130  # half on other
    clock.set(days=2)
    passed_tests(world, ref)
    for name in ("alice", "bob"):
        assert approve(world, monkeypatch, ref, name).exit_code == 0
    soak = refused_gates(promote(world, ref, "stable"))["soak"]
    assert re.fullmatch(r"head of testing for 5d 0h; group web-eu ran it for (\d+s|\d+m) \(needs 24h\)", soak), soak
    events = [
        (e["action"], e["result"], e["details"]["to"]["image"])
        for e in world.audit()
        if e["subject"] == "group web-eu" and e["action"] in ("rollout", "rollback")
    ]
    assert events == [
        ("rollout", "running", ref),
        ("rollout", "succeeded", ref),
        ("rollout", "running", other),
        ("rollout", "interrupted", other),
    ]
