"""A way back that is barred: the image a rollout would roll back to is revoked, or bakery baked it
but its catalog record is gone (pruned, deregistered) so nothing can verify it. The automatic
rollback after a failed gate never goes onto it: the rollout pauses, its message naming the image
and why, its hint naming ways on that each work, none of which needs the barred image: `bakery
rollout GROUP --image NAME@VERSION` replaces the paused rollout (the full gate, confirmation, an
`abandon` event, its history closed as abandoned), as it replaces an unfinished rollback whose own
image is revoked or gone."""

from __future__ import annotations

import json
import re
from typing import Any

from bakery.groups.base import Release
from tests.unit.trust.conftest import World
from tests.unit.trust.test_resumed_rollback import hint_of, kept, rolled_out_then_rollback_interrupted
from tests.unit.trust.test_stuck_rollback import abandoned, stuck
from tests.unit.trust.test_unfound_image import OVERRIDE, gone, said

GONE = "can no longer be found on aws to verify (pruned or deregistered since)"


def failed_onto(world: World, *, revoke: bool) -> tuple[str, str, Any]:
    """web-eu runs a first version, which is then removed from the catalog (and with `revoke`,
    revoked first); a rollout to a second version that fails its gate. Returns (first, second,
    what the rollout command gave)."""
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    if revoke:
        assert world.run("revoke", first, "--reason", "CVE-2026-0007").exit_code == 0
    gone(world, first)
    world.driver.bad.add(second)
    return first, second, world.run("rollout", "web-eu", "--image", second, "--yes")


def paused_not_rolled_back(world: World, failed: Any) -> str:
    """The rollout failed (exit 1), paused: no rollback step ran, its journal and history say
    interrupted. Returns its id."""
    assert failed.exit_code == 1, failed.output
    assert "rolled back" not in failed.stderr
    journal = json.loads((world.project_dir.home / "rollouts" / "web-eu.json").read_text())
    rollout_id = str(journal["rollout"]["id"])
    assert journal["status"] == "interrupted"
    assert f"rollback_steps {rollout_id}" not in world.driver.calls
    assert [e.result for e in world.driver.group("web-eu").history if e.id == rollout_id] == ["interrupted"]
    assert [e["result"] for e in world.audit() if e["action"] == "rollout"] == ["running", "interrupted"]
    return rollout_id


def ways_on(second: str, first: str) -> str:
    return (
        f"`bakery rollout web-eu` resumes it onto {second}; `bakery rollout web-eu --image NAME@VERSION` replaces it "
        "with a rollout of an image that passes the gate (it is closed as abandoned, on the record); `bakery rollback "
        f'web-eu --allow-unverified --reason "WHY"` goes back onto {first} anyway (recorded in the audit log)'
    )


def test_a_failed_gate_does_not_roll_back_onto_a_revoked_image_whose_record_is_gone(world: World) -> None:
    first, second, failed = failed_onto(world, revoke=True)
    rollout_id = paused_not_rolled_back(world, failed)
    assert re.search(
        rf"error: rollout {rollout_id} of web-eu failed \(vm-\d+ answered GET /healthz -> 500 Internal Server Error\) "
        rf"and is paused: the image to roll back to, {first}, is revoked since \S+: CVE-2026-0007",
        said(failed),
    ), said(failed)
    assert hint_of(failed) == ways_on(second, first)


def test_a_failed_gate_does_not_roll_back_onto_an_image_nothing_can_verify(world: World) -> None:
    first, second, failed = failed_onto(world, revoke=False)
    rollout_id = paused_not_rolled_back(world, failed)
    assert f"is paused: the image to roll back to, {first}, {GONE}" in said(failed) and hint_of(failed) == ways_on(
        second, first
    ), said(failed)
    entry = next(e for e in world.driver.group("web-eu").history if e.id == rollout_id)
    assert entry.reason is not None and entry.reason.endswith("; not rolled back onto an image nothing can verify")

    # the override the hint names goes back, on the record
    back = world.run("rollback", "web-eu", "--yes", *OVERRIDE)
    assert back.exit_code == 0, back.output
    (override,) = [e for e in world.audit() if e["action"] == "override"]
    assert (override["result"], override["details"]["operation"]) == ("allowed-unverified", "undo")
    assert [e.result for e in world.driver.group("web-eu").history if e.id == rollout_id] == ["rolled-back"]


def test_a_rollout_paused_on_an_image_nothing_can_verify_is_replaced_by_rollout_image(world: World) -> None:
    first, _, failed = failed_onto(world, revoke=False)
    rollout_id = paused_not_rolled_back(world, failed)
    third = world.bake(force=True)
    done = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert done.exit_code == 0, done.output
    assert (
        f"replaces: the unfinished rollout {rollout_id} (the image it would go back to, {first}, {GONE}), closed in "
        "its history as abandoned" in said(done)
    )
    assert world.driver.runs("web-eu") == {third: 2}
    (closed,) = [e for e in world.driver.group("web-eu").history if e.id == rollout_id]
    assert closed.result == "failed" and closed.reason is not None
    assert closed.reason.startswith(f"abandoned: the image it would go back to, {first}, {GONE}; replaced by rollout")
    (event,) = abandoned(world)
    assert event["details"]["operation"] == "rollout" and event["details"]["rollout"] == rollout_id


def test_a_replacing_rollout_that_fails_its_gate_is_replaced_in_turn_never_touching_the_revoked_image(
    world: World,
) -> None:
    first, _, third, rollback = stuck(world)
    world.driver.bad.add(third)
    failed = world.run("rollout", "web-eu", "--image", third, "--yes")
    replacing = paused_not_rolled_back_after(world, failed, rollback)
    assert f"the image to roll back to, {first}, is revoked since" in said(failed)
    assert "`bakery rollout web-eu --image NAME@VERSION` replaces it" in hint_of(failed)
    before = world.driver.runs("web-eu")
    assert before.get(first, 0) <= 1

    fourth = world.bake(force=True)
    refused = world.run("rollout", "web-eu", "--image", fourth, "--yes", "--allow-unverified", "--reason", "why")
    assert refused.exit_code == 2, refused.output
    assert "--allow-unverified is not taken here" in said(refused)
    assert world.driver.runs("web-eu") == before

    done = world.run("rollout", "web-eu", "--image", fourth, "--yes", "--reason", "INC-20: v3 fails its gate")
    assert done.exit_code == 0, done.output
    assert f"replaces: the unfinished rollout {replacing} (the image it would go back to, {first}, is revoked" in said(
        done
    )
    assert world.driver.runs("web-eu") == {fourth: 2}
    closed = {e.id: e for e in world.driver.group("web-eu").history}
    assert (closed[rollback].result, closed[replacing].result) == ("failed", "failed")
    assert re.match(
        rf"abandoned: the image it would go back to, {first}, is revoked since \S+: CVE-2026-0004 \(by \S+\); "
        rf"replaced by rollout r-\S+ to {fourth} by \S+: INC-20: v3 fails its gate$",
        str(closed[replacing].reason),
    ), closed[replacing].reason
    assert [e["details"]["rollout"] for e in abandoned(world)] == [rollback, replacing]
    assert [e for e in world.audit() if e["action"] == "override"] == []


def paused_not_rolled_back_after(world: World, failed: Any, replaced: str) -> str:
    """As paused_not_rolled_back, for a rollout that replaced `replaced`. Returns its id."""
    assert failed.exit_code == 1, failed.output
    journal = json.loads((world.project_dir.home / "rollouts" / "web-eu.json").read_text())
    assert (journal["status"], journal["rollout"]["replaces"]) == ("interrupted", replaced)
    assert f"rollback_steps {journal['rollout']['id']}" not in world.driver.calls
    return str(journal["rollout"]["id"])


def test_an_unfinished_rollout_whose_way_back_is_fine_is_not_replaced(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--image", second, "--yes").exit_code == 130
    third = world.bake(force=True)
    before = kept(world)
    refused = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert refused.exit_code == 2, refused.output
    assert hint_of(refused) == "run `bakery rollout web-eu` to resume it, or `bakery rollback web-eu` to undo it"
    assert kept(world) == before
    assert world.run("rollback", "web-eu", "--yes").exit_code == 0  # the undo the hint names works
    assert world.driver.runs("web-eu") == {first: 2}


# --- an unfinished rollback whose image is gone (not revoked) -------------------------------------


def test_a_rollback_whose_image_is_gone_names_the_way_out_and_is_replaced_by_rollout_image(world: World) -> None:
    first, _ = rolled_out_then_rollback_interrupted(world)
    gone(world, first)
    rollback = json.loads((world.project_dir.home / "rollouts" / "web-eu.json").read_text())["rollout"]["id"]
    third = world.bake(force=True)
    before = kept(world)
    refused = world.run("rollback", "web-eu", "--yes")
    assert refused.exit_code == 1, refused.output
    assert hint_of(refused) == (
        f"rollback {rollback} of web-eu to {first} is unfinished (stopped at wave-2) and stays so; --allow-unverified "
        '--reason "WHY" deploys it anyway (recorded in the audit log); `bakery rollout web-eu --image NAME@VERSION` '
        "replaces it with a rollout of an image that passes the gate (the rollback is closed as abandoned, on the "
        "record)"
    )
    assert kept(world) == before

    done = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert done.exit_code == 0, done.output
    assert f"replaces: the unfinished rollback {rollback} ({first} {GONE})" in said(done)
    assert world.driver.runs("web-eu") == {third: 2}
    (closed,) = [e for e in world.driver.group("web-eu").history if e.id == rollback]
    assert closed.result == "failed" and str(closed.reason).startswith(f"abandoned: {first} {GONE}; replaced by")
    (event,) = abandoned(world)
    assert (event["details"]["operation"], event["details"]["why"]) == ("rollback", f"{first} {GONE}")


def test_a_rollout_stopped_on_its_way_back_onto_a_barred_image_names_the_override_that_goes_on(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    world.driver.bad.add(second)
    world.driver.interrupt_at = "restore"  # the automatic rollback after the failed gate is interrupted
    assert world.run("rollout", "web-eu", "--image", second, "--yes").exit_code == 130
    assert world.run("revoke", first, "--reason", "CVE-2026-0008").exit_code == 0
    third = world.bake(force=True)
    before = kept(world)

    refused = world.run("rollout", "web-eu", "--image", third, "--yes")
    assert refused.exit_code == 2, refused.output
    assert re.search(
        rf"rollout r-\S+ of web-eu to {second} is unfinished \(stopped at \S+\), on its way back", said(refused)
    )
    assert re.fullmatch(
        rf'`bakery rollback web-eu --allow-unverified --reason "WHY"` goes on back onto {first}, which is revoked '
        rf"since \S+: CVE-2026-0008 \(by \S+\) \(recorded in the audit log\); then `bakery rollout web-eu --image "
        rf"{third}`",
        hint_of(refused),
    ), hint_of(refused)
    assert kept(world) == before
    assert abandoned(world) == []

    # each command the hint names works, in its order
    assert world.run("rollback", "web-eu", "--yes", *OVERRIDE).exit_code == 0
    assert world.run("rollout", "web-eu", "--image", third, "--yes").exit_code == 0
    assert world.driver.runs("web-eu") == {third: 2}
