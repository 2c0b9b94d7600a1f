"""A group that follows a channel leaves it only when someone says so, on the record: `rollout
--image` and `rollback --allow-off-channel`. A rollback onto an image the channel never had as its
head is refused; one onto an earlier head of the channel is not."""

from __future__ import annotations

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
