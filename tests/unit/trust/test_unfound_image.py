"""An unfinished rollout or rollback taken up onto an image the catalog no longer has (pruned,
deregistered: its record cannot be found) fails closed: nothing can be verified about it, so it is
refused, naming the image, unless `--allow-unverified --reason` takes it on the record. The
registry's revocation of it by name still stops it (an undo aside, which the override takes). A
refusal changes nothing: journal bytes, the group's history and its instances stay as they were."""

from __future__ import annotations

import re
from typing import Any

from bakery.groups.base import Release
from tests.unit.trust.conftest import World, project_yaml
from tests.unit.trust.test_resumed_rollback import (
    hint_of,
    interrupted_rollout,
    kept,
    rolled_out_then_rollback_interrupted,
)

OVERRIDE = ("--allow-unverified", "--reason", "INC-11: the image is gone, run it anyway")


def gone(world: World, ref: str) -> None:
    """The image was deregistered (or pruned) where it lives: the catalog no longer lists it."""
    world.fake.delete(world.image_id(ref))


def said(result: object) -> str:
    return " ".join(str(getattr(result, "stderr", "")).split())


def test_resuming_a_rollout_onto_an_image_no_longer_found_is_refused_and_changes_nothing(world: World) -> None:
    first, second = interrupted_rollout(world)
    gone(world, second)
    before = kept(world)
    refused = world.run("rollout", "web-eu", "--yes")
    assert refused.exit_code == 1, refused.output
    assert (
        f"error: refusing to rollout web-eu onto {second}: it can no longer be found on aws to verify (pruned or "
        "deregistered since)" in said(refused)
    )
    assert re.match(
        r"rollout r-\S+ of web-eu is unfinished \(stopped at wave-2\); `bakery rollback web-eu` undoes r-\S+; "
        r"--allow-unverified --reason \"WHY\" deploys it anyway \(recorded in the audit log\)",
        hint_of(refused),
    ), hint_of(refused)
    assert kept(world) == before
    (refusal,) = [e for e in world.audit() if e["action"] == "verify-failed"]
    assert refusal["result"] == "refused" and refusal["details"]["operation"] == "rollout"
    assert world.driver.runs("web-eu") == {first: 1, second: 1}

    forced = world.run("rollout", "web-eu", "--yes", *OVERRIDE)
    assert forced.exit_code == 0, forced.output
    assert f"WARNING: {second} cannot be verified (it can no longer be found on aws" in said(forced)
    assert world.driver.runs("web-eu") == {second: 2}
    (override,) = [e for e in world.audit() if e["action"] == "override"]
    assert override["result"] == "allowed-unverified"
    assert override["details"]["reason"] == OVERRIDE[-1]


def test_a_dry_run_of_that_resume_is_refused_too_and_records_nothing(world: World) -> None:
    _, second = interrupted_rollout(world)
    gone(world, second)
    events = len(world.audit())
    refused = world.run("rollout", "web-eu", "--dry-run")
    assert refused.exit_code == 1, refused.output
    assert f"refusing to rollout web-eu onto {second}: it can no longer be found" in said(refused)
    assert len(world.audit()) == events


def test_the_policy_being_off_does_not_let_an_image_no_longer_found_through(world: World, project_dir: Any) -> None:
    yaml = project_yaml().replace(
        "    aws: {asg: web-eu-asg, launch_template: web-eu}",
        "    aws: {asg: web-eu-asg, launch_template: web-eu}\n    require_signed: false",
    )
    project_dir.write(yaml)
    _, second = interrupted_rollout(world)
    gone(world, second)
    before = kept(world)
    refused = world.run("rollout", "web-eu", "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"refusing to rollout web-eu onto {second}: it can no longer be found on aws" in said(refused)
    assert kept(world) == before


def test_resuming_a_rollback_onto_an_image_no_longer_found_is_refused_by_either_command(world: World) -> None:
    first, _ = rolled_out_then_rollback_interrupted(world)
    gone(world, first)
    before = kept(world)
    for command in ("rollback", "rollout"):
        refused = world.run(command, "web-eu", "--yes")
        assert refused.exit_code == 1, refused.output
        assert f"error: refusing to roll web-eu back onto {first}: it can no longer be found on aws to verify" in said(
            refused
        )
        assert re.match(rf"rollback r-\S+ of web-eu to {first} is unfinished \(stopped at wave-2\)", hint_of(refused))
        assert kept(world) == before
    resumed = world.run("rollback", "web-eu", "--yes", *OVERRIDE)
    assert resumed.exit_code == 0, resumed.output
    assert world.driver.runs("web-eu") == {first: 2}
    assert [e["details"]["reason"] for e in world.audit() if e["action"] == "override"] == [OVERRIDE[-1]]


def test_resuming_a_rollback_onto_an_image_no_longer_found_and_revoked_by_name_is_refused_even_with_the_override(
    world: World,
) -> None:
    first, _ = rolled_out_then_rollback_interrupted(world)
    assert world.run("revoke", first, "--reason", "CVE-2026-0003").exit_code == 0
    gone(world, first)
    before = kept(world)
    refused = world.run("rollback", "web-eu", "--yes", *OVERRIDE)
    assert refused.exit_code == 1, refused.output
    assert f"refusing to roll web-eu back onto {first}: it is revoked since" in said(refused)
    assert "a revoked image never rolls out" in hint_of(refused)
    assert kept(world) == before
    assert [e for e in world.audit() if e["action"] == "override"] == []


def test_a_new_rollback_onto_an_image_no_longer_found_is_refused_not_called_unbaked(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    assert world.run("rollout", "web-eu", "--image", second, "--yes").exit_code == 0
    gone(world, first)
    history = list(world.driver.group("web-eu").history)
    refused = world.run("rollback", "web-eu", "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"refusing to roll web-eu back onto {first}: it can no longer be found on aws to verify" in said(refused)
    assert "did not bake" not in refused.stderr
    assert world.driver.group("web-eu").history == history
    assert world.driver.runs("web-eu") == {second: 2}


# --- undoing an unfinished rollout back onto an image no longer found ----------------------------


def test_undoing_a_rollout_back_onto_an_image_no_longer_found_needs_the_override(world: World) -> None:
    first, second = interrupted_rollout(world)
    gone(world, first)
    before = kept(world)
    refused = world.run("rollback", "web-eu", "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"error: refusing to roll web-eu back onto {first}: it can no longer be found on aws to verify" in said(
        refused
    )
    assert re.match(
        rf"rollout r-\S+ of web-eu to {second} is unfinished \(stopped at wave-2\) and stays so; `bakery rollout "
        rf"web-eu` resumes it onto {second} instead; --allow-unverified --reason \"WHY\" deploys it anyway",
        hint_of(refused),
    ), hint_of(refused)
    assert kept(world) == before

    undone = world.run("rollback", "web-eu", "--yes", *OVERRIDE)
    assert undone.exit_code == 0, undone.output
    assert world.driver.runs("web-eu") == {first: 2}
    (override,) = [e for e in world.audit() if e["action"] == "override"]
    assert (override["result"], override["details"]["operation"]) == ("allowed-unverified", "undo")


def test_undoing_a_rollout_back_onto_an_image_no_longer_found_and_revoked_by_name_is_said_and_overridable(
    world: World,
) -> None:
    first, _ = interrupted_rollout(world)
    assert world.run("revoke", first, "--reason", "bad openssl").exit_code == 0
    gone(world, first)
    before = kept(world)
    refused = world.run("rollback", "web-eu", "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"refusing to roll web-eu back onto {first}: it is revoked since" in said(refused)
    assert "goes back onto it anyway (recorded in the audit log)" in hint_of(refused)
    assert kept(world) == before
    # recorded as check_restore records the refused undo of an image it found: a rollback, told apart by its details
    (refusal,) = [e for e in world.audit() if e["result"] == "refused"]
    assert (refusal["action"], refusal["details"]["operation"]) == ("rollback", "undo")
    undone = world.run("rollback", "web-eu", "--yes", *OVERRIDE)
    assert undone.exit_code == 0, undone.output
    assert world.driver.runs("web-eu") == {first: 2}
    (override,) = [e for e in world.audit() if e["action"] == "override"]
    assert (override["result"], override["details"]["operation"]) == ("allowed-revoked", "undo")


def test_undoing_a_rollout_back_onto_an_image_bakery_did_not_bake_still_goes_back(world: World) -> None:
    ref = world.bake()
    world.driver.seed("web-eu", Release(None, "ami-0handmade", None, None))
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--yes").exit_code == 130
    undone = world.run("rollback", "web-eu", "--yes")
    assert undone.exit_code == 0, undone.output
    assert "bakery did not bake ami-0handmade (not baked by bakery), so it cannot verify it" in said(undone)
    assert ref not in world.driver.runs("web-eu")
