"""Groups follow channels: `bakery rollout GROUP` rolls its channel's head (never merely the newest
bake), refuses with no head, takes --image on the record; `status` shows the head beside what the
group runs and exits 3 when it is behind; `rollout --behind` catches every group up; a revoked
head moves its channel back, and status names the channel and the group it moved."""

from __future__ import annotations

from tests.unit.promote.conftest import json_of
from tests.unit.trust.conftest import World


def promote(world: World, ref: str, channel: str = "testing") -> None:
    result = world.run("promote", ref, "--to", channel, "--target", "aws")
    assert result.exit_code == 0, result.output


def test_a_group_whose_channel_has_no_head_refuses_naming_the_missing_promotion(world: World) -> None:
    world.bake()
    result = world.run("rollout", "web-eu", "--yes")
    assert result.exit_code == 2, result.output
    assert (
        "error: web-eu follows channel testing, which has no head for web on aws: nothing to roll out" in result.stderr
    )
    assert "hint: promote one first: bakery promote web@VERSION --to testing --target aws" in result.stderr
    assert world.driver.runs("web-eu") == {}


def test_a_group_rolls_its_channels_head_not_the_newest_bake(world: World) -> None:
    first = world.bake()
    promote(world, first)
    newest = world.bake(force=True)  # baked after the promotion, never promoted
    result = world.run("rollout", "web-eu", "--yes")
    assert result.exit_code == 0, result.output
    assert world.driver.runs("web-eu") == {first: 2}
    assert newest != first


def test_image_still_works_on_a_group_that_follows_a_channel_and_is_on_the_record(world: World) -> None:
    first = world.bake()
    promote(world, first)
    other = world.bake(force=True)
    result = world.run("rollout", "web-eu", "--image", other, "--yes")
    assert result.exit_code == 0, result.output
    assert world.driver.runs("web-eu") == {other: 2}
    assert f"web-eu follows channel testing (head: {first}); --image moves it to {other} off its channel" in (
        result.stderr
    )
    [event] = [e for e in world.audit() if e["action"] == "rollout-off-channel"]
    assert (event["subject"], event["details"]) == (
        "group web-eu",
        {"image": other, "channel": "testing", "head": first},
    )


def test_status_shows_the_channel_head_and_exits_3_while_a_group_is_behind_until_rollout_behind(
    world: World,
) -> None:
    first = world.bake()
    promote(world, first)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    synced = world.run("status", "web-eu")
    assert synced.exit_code == 0, synced.output
    assert f"  channel:   testing: head {first}\n" in synced.stdout

    second = world.bake(force=True)
    promote(world, second)
    behind = world.run("status", "web-eu")
    assert behind.exit_code == 3, behind.output
    assert f"  channel:   testing: head {second} (BEHIND)\n" in behind.stdout
    assert f"  drift:     behind channel testing: its head is {second}, the group runs {first}\n" in behind.stdout
    shown = json_of(world.run("status", "--json"))["groups"]
    assert [(g["group"], g["channel"], g["channel_head"], g["behind"]) for g in shown] == [
        ("app-eu", None, None, False),
        ("web-eu", "testing", second, True),
    ]

    rolled = world.run("rollout", "--behind", "--yes", "--json")
    assert rolled.exit_code == 0, rolled.output
    assert json_of(rolled)["groups"] == ["web-eu"]
    assert world.driver.runs("web-eu") == {second: 2}
    assert world.run("status", "web-eu").exit_code == 0
    again = world.run("rollout", "--behind", "--yes")
    assert (again.exit_code, again.stdout) == (0, "no group is behind its channel\n")


def test_rollout_behind_stops_at_the_first_failure(world: World) -> None:
    app_eu = "  app-eu:\n    image: app\n    target: aws\n"
    text = world.project_dir.config.read_text().replace(app_eu, app_eu + "    channel: testing\n")
    world.project_dir.write(text)
    web = world.bake()
    app = world.bake("app")
    promote(world, app)
    promote(world, web)
    world.driver.bad.add(app)  # its health gate fails
    result = world.run("rollout", "--behind", "--yes")
    assert result.exit_code == 1, result.output
    assert "error: app-eu: " in result.stderr and "(stopped there: groups not rolled: web-eu)" in result.stderr
    assert world.driver.runs("web-eu") == {}


def test_a_revoked_head_moves_its_channel_back_and_status_names_the_channel_and_the_group(world: World) -> None:
    first = world.bake()
    promote(world, first)
    second = world.bake(force=True)
    promote(world, second)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0

    revoked = world.run("revoke", second, "--reason", "CVE-2026-1", "--target", "aws")
    assert revoked.exit_code == 0, revoked.output
    assert f"  channel testing: web on aws fell back from {second} to {first}" in revoked.stdout
    status = world.run("status", "web-eu")
    assert status.exit_code == 3, status.output
    assert f"  channel:   testing: head {first} (BEHIND); fell back past {second} (revoked since" in status.stdout
    assert f"behind channel testing: its head is {first} (it fell back past {second} (revoked since" in status.stdout
    intent, moved = [e for e in world.audit() if e["action"] == "channel-fallback"]  # before the move, after it
    assert [intent["result"], moved["result"]] == ["intended", "ok"]
    assert intent["details"]["move"] == moved["details"]["move"]
    assert (moved["subject"], moved["details"]["from"], moved["details"]["to"]) == (
        "web on aws in channel testing",
        second[4:],
        first[4:],
    )
    history = json_of(world.run("channels", "testing", "--json"))["channels"][0]
    assert [(m["action"], m["version"]) for m in history["moves"]] == [
        ("promote", first[4:]),
        ("promote", second[4:]),
        ("fallback", first[4:]),
    ]
    assert world.run("rollout", "--behind", "--yes").exit_code == 0
    assert world.driver.runs("web-eu") == {first: 2}
