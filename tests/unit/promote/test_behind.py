"""`bakery rollout --behind --yes`, the scheduled job's command, rolls only channel heads: an
unfinished rollout that goes elsewhere (off the channel, or to a head the channel left) stops it,
named, with what to do; and a group still behind at the end (its channel has no head left) fails
it, as `bakery status` exits 3 for it."""

from __future__ import annotations

from tests.unit.promote.test_follow import promote
from tests.unit.trust.conftest import World


def test_behind_stops_at_an_interrupted_off_channel_rollout_instead_of_finishing_it(world: World) -> None:
    v1 = world.bake()
    promote(world, v1)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    v2 = world.bake(force=True)  # never promoted
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--image", v2, "--yes").exit_code != 0
    world.driver.interrupt_at = None
    runs = world.driver.runs("web-eu")

    behind = world.run("rollout", "--behind", "--yes")
    assert behind.exit_code == 1, behind.output
    assert "error: web-eu: rollout " in behind.stderr
    assert (
        f"is unfinished, and {v2} is not the head of channel testing ({v1}): `bakery rollback web-eu` undoes it, "
        "or `bakery rollout web-eu` resumes it by hand (stopped there: groups not rolled: none)"
    ) in behind.stderr
    assert world.driver.runs("web-eu") == runs  # nothing rolled


def test_behind_stops_at_an_interrupted_rollout_to_a_head_the_channel_rolled_back_from(world: World) -> None:
    v1 = world.bake()
    promote(world, v1)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    v2 = world.bake(force=True)
    promote(world, v2)
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--yes").exit_code != 0
    world.driver.interrupt_at = None
    back = world.run("promote", "--rollback", "testing", "web", "--target", "aws")
    assert back.exit_code == 0, back.output
    runs = world.driver.runs("web-eu")

    behind = world.run("rollout", "--behind", "--yes")
    assert behind.exit_code == 1, behind.output
    assert f"is unfinished, and {v2} is not the head of channel testing ({v1})" in behind.stderr
    assert world.driver.runs("web-eu") == runs
    undo = world.run("rollback", "web-eu", "--yes")  # what it says to do works
    assert undo.exit_code == 0, undo.output
    assert world.run("rollout", "--behind", "--yes").exit_code == 0
    assert world.driver.runs("web-eu") == {v1: 2}


def test_behind_fails_while_a_group_s_channel_has_no_head_left_as_status_does(world: World) -> None:
    v1 = world.bake()
    promote(world, v1)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    assert world.run("revoke", v1, "--reason", "CVE-2026-1", "--target", "aws").exit_code == 0
    status = world.run("status", "web-eu")
    assert status.exit_code == 3, status.output

    behind = world.run("rollout", "--behind", "--yes")
    assert behind.exit_code == 1, behind.output
    assert (
        "error: groups still behind their channel: web-eu: channel testing has no head left for web on aws: every "
        f"head is revoked or no longer verifies ({v1} (revoked since"
    ) in behind.stderr
    assert "promote a good version to testing, or `bakery rollback web-eu`" in behind.stderr
    assert "no group is behind" not in behind.output


def test_behind_stops_at_an_interrupted_rollback_saying_that_rollback_resumes_it(world: World) -> None:
    v1 = world.bake()
    promote(world, v1)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    v2 = world.bake(force=True)
    promote(world, v2)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollback", "web-eu", "--yes").exit_code == 130  # back to v1, a head it had
    runs = world.driver.runs("web-eu")

    behind = world.run("rollout", "--behind", "--yes")
    assert behind.exit_code == 1, behind.output
    said = " ".join(behind.stderr.split())
    assert f"is unfinished, and {v1} is not the head of channel testing ({v2}): `bakery rollback web-eu` " in said
    assert (
        "`bakery rollback web-eu` resumes it by hand (an unfinished rollback is resumed, never undone), after "
        "which --behind rolls the head again (stopped there: groups not rolled: none)"
    ) in said
    assert "undoes it" not in said
    assert world.driver.runs("web-eu") == runs
    resumed = world.run("rollback", "web-eu", "--yes")  # what it says to do works
    assert resumed.exit_code == 0, resumed.output
    assert "resuming rollback" in resumed.stderr
    assert world.driver.runs("web-eu") == {v1: 2}
