"""A group that follows a channel leaves it only when someone says so, on the record: `rollout
--image` and `rollback --allow-off-channel`. A rollback onto an image the channel never had as its
head is refused; one onto an earlier head of the channel is not. A rollback taken up again after an
interruption is held to the same rule, whichever command takes it up: `--allow-off-channel` must be
given again."""

from __future__ import annotations

import re

from tests.unit.promote.test_follow import promote
from tests.unit.trust.conftest import World


def test_a_rollback_onto_an_image_never_promoted_to_the_channel_is_refused_unless_allowed_and_recorded(
    world: World,
) -> None:
    v1 = world.bake()  # never promoted
    assert world.run("rollout", "web-eu", "--image", v1, "--yes").exit_code == 0  # off its channel, on the record
    v2 = world.bake(force=True)
    promote(world, v2)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0

    refused = world.run("rollback", "web-eu", "--yes")
    assert refused.exit_code == 2, refused.output
    assert (
        f"refusing to roll web-eu back onto {v1}: web-eu follows channel testing, and that image was never a head "
        "of testing on aws"
    ) in refused.stderr
    assert "--allow-off-channel rolls it back anyway" in refused.stderr
    assert world.driver.runs("web-eu") == {v2: 2}

    allowed = world.run("rollback", "web-eu", "--allow-off-channel", "--yes")
    assert allowed.exit_code == 0, allowed.output
    assert (
        f"web-eu follows channel testing (head: {v2}); rollback --allow-off-channel moves it to {v1} off its channel"
    ) in allowed.stderr
    assert world.driver.runs("web-eu") == {v1: 2}
    off = [e for e in world.audit() if e["action"] == "rollout-off-channel"]
    assert [(e["subject"], e["details"]["image"], e["details"].get("operation")) for e in off] == [
        ("group web-eu", v1, None),
        ("group web-eu", v1, "rollback"),
    ]


def test_a_rollback_onto_an_earlier_head_of_the_channel_needs_no_flag(world: World) -> None:
    v1 = world.bake()
    promote(world, v1)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    v2 = world.bake(force=True)
    promote(world, v2)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    back = world.run("rollback", "web-eu", "--yes")
    assert back.exit_code == 0, back.output
    assert world.driver.runs("web-eu") == {v1: 2}
    assert [e for e in world.audit() if e["action"] == "rollout-off-channel"] == []


def test_a_resumed_rollback_off_its_channel_needs_allow_off_channel_again_whichever_command_resumes_it(
    world: World,
) -> None:
    v1 = world.bake()  # never promoted
    assert world.run("rollout", "web-eu", "--image", v1, "--yes").exit_code == 0
    v2 = world.bake(force=True)
    promote(world, v2)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollback", "web-eu", "--allow-off-channel", "--yes").exit_code == 130
    journal = world.project_dir.home / "rollouts" / "web-eu.json"
    saved, history = journal.read_bytes(), list(world.driver.group("web-eu").history)

    for command in ("rollback", "rollout"):
        refused = world.run(command, "web-eu", "--yes")
        assert refused.exit_code == 2, refused.output
        assert (
            f"refusing to roll web-eu back onto {v1}: web-eu follows channel testing, and that image was never a "
            "head of testing on aws"
        ) in refused.stderr
        hint = " ".join(refused.stderr.split("hint: ", 1)[1].split())
        assert re.match(
            rf"rollback r-\S+ of web-eu to {v1} is unfinished \(stopped at wave-2\) and stays so; `bakery rollback "
            r"web-eu --allow-off-channel` resumes it anyway, off its channel",
            hint,
        ), hint
        assert (journal.read_bytes(), world.driver.group("web-eu").history) == (saved, history)
        assert world.driver.runs("web-eu") == {v1: 1, v2: 1}

    resumed = world.run("rollback", "web-eu", "--allow-off-channel", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert world.driver.runs("web-eu") == {v1: 2}
    off = [e for e in world.audit() if e["action"] == "rollout-off-channel"]
    assert [e["details"].get("operation") for e in off] == [None, "rollback", "rollback"]


def test_a_resumed_rollback_onto_an_earlier_head_of_its_channel_needs_no_flag(world: World) -> None:
    v1 = world.bake()
    promote(world, v1)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    v2 = world.bake(force=True)
    promote(world, v2)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollback", "web-eu", "--yes").exit_code == 130
    resumed = world.run("rollback", "web-eu", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert world.driver.runs("web-eu") == {v1: 2}
    assert [e for e in world.audit() if e["action"] == "rollout-off-channel"] == []
