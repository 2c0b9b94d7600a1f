"""A refusal leaves no trace, for a group that follows a channel too: every check that can refuse
(the driver's takeover, the channel rule, the trust gate) runs before anything that allows the move
(a `rollout-off-channel` event, an `override`) is written to the audit log. The one event a refusal
may leave is its own `refused`; the journal, the group's history and its instances stay as they
were. Once allowed, the same command records what it allowed."""

from __future__ import annotations

import json
from typing import Any

from bakery.groups.base import ActiveRollout
from tests.unit.promote.test_follow import promote
from tests.unit.promote.test_promote import passed_tests
from tests.unit.trust.conftest import World
from tests.unit.trust.test_resumed_rollback import hint_of, kept

OVERRIDE = ("--allow-unverified", "--reason", "INC-30: v1 known good")


def events_since(world: World, count: int) -> list[tuple[str, str]]:
    return [(e["action"], e["result"]) for e in world.audit()[count:]]


def off_then_on_channel(world: World) -> tuple[str, str]:
    """web-eu (following channel testing) rolled to a first version named by --image (never a
    head of testing), then to a second one promoted to testing. Returns (first, second)."""
    v1 = world.bake()
    assert world.run("rollout", "web-eu", "--image", v1, "--yes").exit_code == 0
    v2 = world.bake(force=True)
    promote(world, v2)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    return v1, v2


def test_a_refused_takeover_of_a_group_on_a_channel_records_no_rollout_off_channel(world: World) -> None:
    v1 = world.bake()
    promote(world, v1)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    v2 = world.bake(force=True)
    promote(world, v2)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollback", "web-eu", "--yes").exit_code == 130
    assert world.run("revoke", v1, "--reason", "CVE-2026-0030").exit_code == 0
    v3 = world.bake(force=True)  # never promoted: a rollout of it leaves the channel
    rollback = json.loads((world.project_dir.home / "rollouts" / "web-eu.json").read_text())["rollout"]["id"]
    world.driver.active["web-eu"] = ActiveRollout(rollback, v1, "refresh InProgress", 40, "then", "ops", "here")
    before, count = kept(world), len(world.audit())

    refused = world.run("rollout", "web-eu", "--image", v3, "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"group web-eu: rollback {rollback} still moves it" in refused.stderr
    assert hint_of(refused) == "stop it by hand: fake-cloud cancel; then run this command again"
    assert events_since(world, count) == []
    assert kept(world) == before

    del world.driver.active["web-eu"]
    done = world.run("rollout", "web-eu", "--image", v3, "--yes")
    assert done.exit_code == 0, done.output
    assert events_since(world, count)[:2] == [("rollout-off-channel", "allowed"), ("abandon", "allowed")]


def test_a_resumed_rollback_refused_off_its_channel_records_no_override(world: World) -> None:
    v1, _ = off_then_on_channel(world)
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollback", "web-eu", "--allow-off-channel", "--yes").exit_code == 130
    passed_tests(world, v1, "FAILED")
    before, count = kept(world), len(world.audit())

    refused = world.run("rollback", "web-eu", "--yes", *OVERRIDE)  # --allow-off-channel not given again
    assert refused.exit_code == 2, refused.output
    assert f"refusing to roll web-eu back onto {v1}: web-eu follows channel testing" in refused.stderr
    assert "`bakery rollback web-eu --allow-off-channel` resumes it anyway" in hint_of(refused)
    assert "WARNING" not in refused.stderr
    assert events_since(world, count) == []
    assert kept(world) == before

    resumed = world.run("rollback", "web-eu", "--yes", "--allow-off-channel", *OVERRIDE)
    assert resumed.exit_code == 0, resumed.output
    assert world.driver.runs("web-eu") == {v1: 2}
    assert events_since(world, count)[:2] == [("override", "allowed-unverified"), ("rollout-off-channel", "allowed")]


def test_a_new_rollback_refused_off_its_channel_records_no_override(world: World) -> None:
    v1, v2 = off_then_on_channel(world)
    passed_tests(world, v1, "FAILED")
    history, count = list(world.driver.group("web-eu").history), len(world.audit())

    refused: Any = world.run("rollback", "web-eu", "--yes", *OVERRIDE)
    assert refused.exit_code == 2, refused.output
    assert f"refusing to roll web-eu back onto {v1}: web-eu follows channel testing" in refused.stderr
    assert "WARNING" not in refused.stderr
    assert events_since(world, count) == []
    assert world.driver.group("web-eu").history == history
    assert world.driver.runs("web-eu") == {v2: 2}

    allowed = world.run("rollback", "web-eu", "--yes", "--allow-off-channel", *OVERRIDE)
    assert allowed.exit_code == 0, allowed.output
    assert world.driver.runs("web-eu") == {v1: 2}
    assert events_since(world, count)[:2] == [("override", "allowed-unverified"), ("rollout-off-channel", "allowed")]
