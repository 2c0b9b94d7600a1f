"""The way out of a stuck group: an unfinished rollback whose image was revoked meanwhile cannot be
resumed (a revoked image never rolls out), has no undo, and holds off every new rollout. `bakery
rollout GROUP --image NAME@VERSION` replaces it, and only it: the new image passes the full trust
gate, the user confirms, the driver says it can take the group over; then the rollback is closed
in the group's history as abandoned (with why, and the user's --reason), an `abandon` event is in
the audit log, and the new rollout starts from the group as the driver reads it. Every refusal
changes nothing: journal bytes, history, instances, and no `abandon` event."""

from __future__ import annotations

import json
import re

from bakery.groups.base import ActiveRollout, Release
from tests.unit.promote.test_promote import passed_tests
from tests.unit.trust.conftest import World
from tests.unit.trust.test_resumed_rollback import hint_of, kept, rolled_out_then_rollback_interrupted


def stuck(world: World) -> tuple[str, str, str, str]:
    """web-eu rolled from a first version to a second, its rollback to the first interrupted at
    wave-2, then the first revoked; a third version baked. Returns (first, second, third, the
    rollback's id)."""
    first, second = rolled_out_then_rollback_interrupted(world)
    assert world.run("revoke", first, "--reason", "CVE-2026-0004").exit_code == 0
    third = world.bake(force=True)
    journal = json.loads((world.project_dir.home / "rollouts" / "web-eu.json").read_text())
    return first, second, third, journal["rollout"]["id"]


def said(result: object) -> str:
    return " ".join(str(getattr(result, "stderr", "")).split())


def abandoned(world: World) -> list[dict[str, object]]:
    return [e for e in world.audit() if e["action"] == "abandon"]


def test_resuming_the_stuck_rollback_is_refused_naming_the_way_out(world: World) -> None:
    first, _, _, rollback = stuck(world)
    before = kept(world)
    for command in ("rollback", "rollout"):
        refused = world.run(command, "web-eu", "--yes")
        assert refused.exit_code == 1, refused.output
        assert f"refusing to rollback web-eu onto {first}: it is revoked since" in refused.stderr
        assert (
            f"rollback {rollback} of web-eu to {first} is unfinished (stopped at wave-2) and stays so; a revoked image "
            "never rolls out; `bakery rollout web-eu --image NAME@VERSION` replaces it with a rollout of an image "
            "that passes the gate (the rollback is closed as abandoned, on the record)"
        ) == hint_of(refused)
        assert kept(world) == before


def test_rollout_image_replaces_the_stuck_rollback_on_the_record(world: World) -> None:
    first, second, third, rollback = stuck(world)
    done = world.run("rollout", "web-eu", "--image", third, "--yes", "--reason", "INC-12: v1 revoked mid-rollback")
    assert done.exit_code == 0, done.output
    assert f"replaces: the unfinished rollback {rollback} ({first} is revoked since" in said(
        done
    ) and "closed in its history as abandoned" in said(done)
    assert world.driver.runs("web-eu") == {third: 2}
    entries = {e.id: e for e in world.driver.group("web-eu").history}
    closed = entries[rollback]
    assert closed.result == "failed"
    assert closed.reason is not None
    assert re.match(
        rf"abandoned: {first} is revoked since \S+: CVE-2026-0004 \(by \S+\); replaced by rollout (r-\S+) to "
        rf"{third} by \S+: INC-12: v1 revoked mid-rollback$",
        closed.reason,
    ), closed.reason
    new = [e for e in entries.values() if e.to.image == third]
    assert [e.result for e in new] == ["succeeded"]
    assert new[0].from_ is not None  # planned from what the driver read: the rollback had moved the template
    (event,) = abandoned(world)
    assert event["result"] == "allowed"
    details = event["details"]
    assert isinstance(details, dict)
    assert (details["rollout"], details["to"], details["replaced_by"], details["image"], details["reason"]) == (
        rollback,
        first,
        new[0].id,
        third,
        "INC-12: v1 revoked mid-rollback",
    )
    journal = json.loads((world.project_dir.home / "rollouts" / "web-eu.json").read_text())
    assert (journal["rollout"]["id"], journal["status"], journal["rollout"]["replaces"]) == (
        new[0].id,
        "succeeded",
        rollback,
    )
    assert second not in world.driver.runs("web-eu")


def test_a_dry_run_shows_the_replacement_and_changes_nothing(world: World) -> None:
    _, _, third, rollback = stuck(world)
    before, events = kept(world), len(world.audit())
    plan = world.run("rollout", "web-eu", "--image", third, "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert f"replaces: the unfinished rollback {rollback}" in plan.stderr
    assert "dry run: nothing changed" in plan.stdout
    assert kept(world) == before and len(world.audit()) == events


def test_a_rollback_whose_image_is_not_revoked_is_not_replaced(world: World) -> None:
    first, _ = rolled_out_then_rollback_interrupted(world)
    third = world.bake(force=True)
    before = kept(world)
    refused = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert refused.exit_code == 2, refused.output
    assert re.search(rf"rollback r-\S+ of web-eu to {first} is unfinished \(stopped at wave-2\)", refused.stderr)
    assert hint_of(refused) == (
        "`bakery rollback web-eu` resumes it (a rollback is resumed, never undone; with `--allow-unverified --reason "
        '"WHY"` if its image no longer verifies); `bakery rollout web-eu --image NAME@VERSION` replaces an unfinished '
        "rollback only once its image is revoked or gone"
    )
    assert kept(world) == before
    assert abandoned(world) == []


def test_an_unfinished_rollout_is_not_replaced_either(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--image", second, "--yes").exit_code == 130
    assert world.run("revoke", second, "--reason", "CVE-2026-0005").exit_code == 0
    third = world.bake(force=True)
    before = kept(world)
    refused = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert refused.exit_code == 2, refused.output
    assert "run `bakery rollout web-eu` to resume it, or `bakery rollback web-eu` to undo it" in refused.stderr
    assert kept(world) == before


def test_the_new_image_must_pass_the_full_gate_without_override(world: World) -> None:
    _, _, third, _ = stuck(world)
    passed_tests(world, third, "FAILED")
    before = kept(world)
    refused = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"refusing to rollout web-eu onto {third}: it does not verify" in refused.stderr
    assert kept(world) == before
    forced = world.run("rollout", "web-eu", "--image", third, "--yes", "--allow-unverified", "--reason", "please")
    assert forced.exit_code == 2, forced.output
    assert "--allow-unverified is not taken here" in said(forced)
    assert kept(world) == before
    assert abandoned(world) == []
    assert [e for e in world.audit() if e["action"] == "override"] == []


def test_not_confirmed_changes_nothing(world: World) -> None:
    _, _, third, _ = stuck(world)
    before = kept(world)
    refused = world.run("rollout", "web-eu", "--image", third)  # not a terminal, no --yes
    assert refused.exit_code == 2, refused.output
    assert "not on a terminal, and --yes was not given: nothing was changed" in refused.stderr
    assert kept(world) == before
    assert abandoned(world) == []


def test_a_driver_that_cannot_take_the_group_over_refuses_saying_what_to_do_by_hand(world: World) -> None:
    _, _, third, rollback = stuck(world)
    world.driver.active["web-eu"] = ActiveRollout(rollback, "web@1", "refresh InProgress", 40, "then", "ops", "here")
    before = kept(world)
    refused = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"group web-eu: rollback {rollback} still moves it" in refused.stderr
    assert hint_of(refused) == "stop it by hand: fake-cloud cancel; then run this command again"
    assert kept(world) == before
    assert abandoned(world) == []

    world.driver.active["web-eu"] = ActiveRollout("r-0123456789ab", "web@9", "moving", None, "then", "eve", "there")
    other = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert other.exit_code == 1, other.output
    assert "web-eu is moving now: rollout r-0123456789ab to web@9" in other.stderr
    assert kept(world) == before


def test_a_replacing_rollout_that_fails_its_gate_is_not_rolled_back_onto_the_revoked_image(world: World) -> None:
    first, _, third, _ = stuck(world)
    world.driver.bad.add(third)
    failed = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert failed.exit_code == 1, failed.output
    # the fake's template already ran the rollback's image: that is what the group goes back to
    assert f"the image to roll back to, {first}, is revoked since" in said(failed)
    assert world.driver.runs("web-eu").get(first, 0) <= 1  # nothing more was put on the revoked image
    assert len(abandoned(world)) == 1


def test_a_replacing_rollout_interrupted_is_resumed_as_itself_keeping_what_it_replaced(world: World) -> None:
    _, _, third, rollback = stuck(world)
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--image", third, "--yes").exit_code == 130
    path = world.project_dir.home / "rollouts" / "web-eu.json"
    assert json.loads(path.read_text())["rollout"]["replaces"] == rollback
    resumed = world.run("rollout", "web-eu", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert "resume r-" in resumed.stderr and "replaces:" not in resumed.stderr
    assert world.driver.runs("web-eu") == {third: 2}
    assert len(abandoned(world)) == 1
    assert [e.result for e in world.driver.group("web-eu").history if e.id == rollback] == ["failed"]
