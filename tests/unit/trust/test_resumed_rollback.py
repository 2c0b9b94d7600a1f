"""An unfinished rollback taken up again is held to the trust gate as a new one is: its image must
still verify (signatures, tests, revocation through its ancestors), and an override counts only
when it is given again, its reason recorded again. A refusal changes nothing: the journal and the
group's history stay as they were. Undoing an unfinished rollout (back to what the group ran) is a
recovery: only a revocation of that image stops it, and `--allow-unverified --reason` overrides
that, on the record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bakery.groups.base import HistoryEntry, Release
from tests.unit.promote.test_promote import passed_tests
from tests.unit.trust.conftest import World


@dataclass(frozen=True)
class Kept:
    """What a refusal must leave as it was: the saved journal (bytes), the group's history, its instances."""

    journal: bytes
    history: list[HistoryEntry]
    runs: dict[str, int]


def kept(world: World, group: str = "web-eu") -> Kept:
    path = world.project_dir.home / "rollouts" / f"{group}.json"
    return Kept(path.read_bytes(), list(world.driver.group(group).history), world.driver.runs(group))


def hint_of(result: Any) -> str:
    return " ".join(result.stderr.split("hint: ", 1)[1].split())


def rolled_out_then_rollback_interrupted(world: World, *rollback: str) -> tuple[str, str]:
    """web-eu rolled from a first to a second version, then its rollback (with `rollback` flags)
    interrupted at its second wave."""
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    assert world.run("rollout", "web-eu", "--image", second, "--yes").exit_code == 0
    world.driver.interrupt_at = "wave-2"
    stopped = world.run("rollback", "web-eu", "--yes", *rollback)
    assert stopped.exit_code == 130, stopped.output
    assert world.driver.runs("web-eu") == {first: 1, second: 1}
    return first, second


def test_a_resumed_rollback_onto_an_image_whose_tests_failed_meanwhile_is_refused_and_changes_nothing(
    world: World,
) -> None:
    first, _ = rolled_out_then_rollback_interrupted(world)
    passed_tests(world, first, "FAILED")
    before = kept(world)
    for command in ("rollback", "rollout"):  # either command would resume it
        refused = world.run(command, "web-eu", "--yes")
        assert refused.exit_code == 1, refused.output
        assert f"error: refusing to rollback web-eu onto {first}: it does not verify" in refused.stderr
        assert "answered 500" in refused.stderr
        assert re.match(
            rf"rollback r-\S+ of web-eu to {first} is unfinished \(stopped at wave-2\) and stays so; see "
            rf"`bakery verify {first} --target aws`; --allow-unverified --reason \"WHY\" deploys it anyway",
            hint_of(refused),
        ), hint_of(refused)
        assert kept(world) == before
    assert [e["result"] for e in world.audit() if e["action"] == "verify-failed"] == ["refused", "refused"]
    forced = world.run("rollback", "web-eu", "--yes", "--allow-unverified", "--reason", "INC-7: v1 known good")
    assert forced.exit_code == 0, forced.output
    assert world.driver.runs("web-eu") == {first: 2}
    overrides = [e for e in world.audit() if e["action"] == "override"]
    assert [e["details"]["reason"] for e in overrides] == ["INC-7: v1 known good"]


def test_an_override_the_rollback_started_with_is_not_carried_to_its_resume(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    (world.project_dir.home / "registry" / "attestations" / "aws" / "web" / f"{first[4:]}.dsse.json").unlink()
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    forward = world.run("rollout", "web-eu", "--image", second, "--yes")
    assert forward.exit_code == 0, forward.output
    world.driver.interrupt_at = "wave-2"
    started = world.run("rollback", "web-eu", "--yes", "--allow-unverified", "--reason", "INC-8 first try")
    assert started.exit_code == 130, started.output
    before = kept(world)

    bare = world.run("rollback", "web-eu", "--yes")
    assert bare.exit_code == 1, bare.output
    assert f"refusing to rollback web-eu onto {first}: it does not verify" in bare.stderr
    assert "unsigned: no attestation" in bare.stderr
    reasonless = world.run("rollback", "web-eu", "--yes", "--allow-unverified")
    assert reasonless.exit_code == 2 and "--allow-unverified needs --reason TEXT" in reasonless.stderr
    assert kept(world) == before

    resumed = world.run("rollback", "web-eu", "--yes", "--allow-unverified", "--reason", "INC-8 resumed")
    assert resumed.exit_code == 0, resumed.output
    assert "WARNING" in resumed.stderr and "resuming rollback" in resumed.stderr
    assert world.driver.runs("web-eu") == {first: 2}
    overrides = [e for e in world.audit() if e["action"] == "override"]
    assert [e["details"]["reason"] for e in overrides] == ["INC-8 first try", "INC-8 resumed"]


def test_a_resumed_rollback_onto_a_child_of_an_image_revoked_meanwhile_is_refused_even_with_an_override(
    world: World,
) -> None:
    base = world.bake("web")
    first = world.bake("app")
    second = world.bake("app", force=True)
    world.driver.seed("app-eu", Release(first, world.image_id(first), None, "a"))
    assert world.run("rollout", "app-eu", "--image", second, "--yes").exit_code == 0
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollback", "app-eu", "--yes").exit_code == 130
    assert world.run("revoke", base, "--reason", "CVE-2026-0002", "--target", "aws").exit_code == 0
    before = kept(world, "app-eu")
    refused = world.run("rollback", "app-eu", "--yes", "--allow-unverified", "--reason", "need it")
    assert refused.exit_code == 1, refused.output
    assert f"refusing to rollback app-eu onto {first}: it is revoked" in refused.stderr
    assert base in refused.stderr
    assert re.match(
        rf"rollback r-\S+ of app-eu to {first} is unfinished \(stopped at wave-2\) and stays so; a revoked "
        "image never rolls out",
        hint_of(refused),
    ), hint_of(refused)
    assert kept(world, "app-eu") == before
    assert [e for e in world.audit() if e["action"] == "override"] == []


def test_a_resumed_rollback_onto_an_image_bakery_did_not_bake_needs_the_override_again(world: World) -> None:
    ref = world.bake()
    handmade = "refusing to roll web-eu back onto img-handmade (not baked by bakery): bakery did not bake it"
    world.driver.seed("web-eu", Release(None, "img-handmade", None, None))
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    refused = world.run("rollback", "web-eu", "--yes")
    assert refused.exit_code == 1, refused.output
    assert handmade in refused.stderr
    world.driver.interrupt_at = "wave-2"
    started = world.run("rollback", "web-eu", "--yes", "--allow-unverified", "--reason", "INC-9")
    assert started.exit_code == 130, started.output
    before = kept(world)
    bare = world.run("rollback", "web-eu", "--yes")
    assert bare.exit_code == 1, bare.output
    assert handmade in bare.stderr
    assert re.match(r"rollback r-\S+ of web-eu to img-handmade \(not baked by bakery\) is unfinished", hint_of(bare))
    assert kept(world) == before
    resumed = world.run("rollback", "web-eu", "--yes", "--allow-unverified", "--reason", "INC-9 again")
    assert resumed.exit_code == 0, resumed.output
    assert world.driver.runs("web-eu") == {"img-handmade": 2}
    overrides = [e for e in world.audit() if e["action"] == "override"]
    assert [e["details"]["reason"] for e in overrides] == ["INC-9", "INC-9 again"]
    assert ref not in world.driver.runs("web-eu")


# --- undoing an unfinished rollout: back to what the group ran --------------------------------


def interrupted_rollout(world: World) -> tuple[str, str]:
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollout", "web-eu", "--yes").exit_code == 130
    assert world.driver.runs("web-eu") == {first: 1, second: 1}
    return first, second


def test_undoing_a_rollout_onto_an_image_revoked_meanwhile_is_refused_unless_overridden_on_the_record(
    world: World,
) -> None:
    first, second = interrupted_rollout(world)
    assert world.run("revoke", first, "--reason", "bad openssl").exit_code == 0
    before = kept(world)
    refused = world.run("rollback", "web-eu", "--yes")
    assert refused.exit_code == 1, refused.output
    assert f"error: refusing to roll web-eu back onto {first}: it is revoked since" in refused.stderr
    assert re.match(
        rf"rollout r-\S+ of web-eu to {second} is unfinished \(stopped at wave-2\) and stays so; `bakery "
        rf"rollout web-eu` resumes it onto {second} instead; --allow-unverified --reason \"WHY\" goes back onto "
        r"it anyway \(recorded in the audit log\)",
        hint_of(refused),
    ), hint_of(refused)
    assert kept(world) == before
    refusal = [e for e in world.audit() if e["action"] == "rollback" and e["result"] == "refused"]
    assert [e["details"]["operation"] for e in refusal] == ["undo"]

    forced = world.run("rollback", "web-eu", "--yes", "--allow-unverified", "--reason", "v2 crashes, v1 until v3")
    assert forced.exit_code == 0, forced.output
    assert f"WARNING: web-eu goes back onto {first} although it is revoked since" in forced.stderr
    assert world.driver.runs("web-eu") == {first: 2}
    (override,) = [e for e in world.audit() if e["action"] == "override"]
    assert override["result"] == "allowed-revoked"
    assert (override["details"]["operation"], override["details"]["reason"]) == ("undo", "v2 crashes, v1 until v3")


def test_undoing_a_rollout_onto_an_image_revoked_meanwhile_leaves_resuming_it_open(world: World) -> None:
    first, second = interrupted_rollout(world)
    assert world.run("revoke", first, "--reason", "bad openssl").exit_code == 0
    assert world.run("rollback", "web-eu", "--yes").exit_code == 1
    resumed = world.run("rollout", "web-eu", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert world.driver.runs("web-eu") == {second: 2}


def test_undoing_a_rollout_onto_an_image_that_no_longer_verifies_goes_back_and_says_so(world: World) -> None:
    first, _ = interrupted_rollout(world)
    passed_tests(world, first, "FAILED")
    undone = world.run("rollback", "web-eu", "--yes")
    assert undone.exit_code == 0, undone.output
    said = " ".join(undone.stderr.split())
    assert f"warning: {first} does not verify now (" in said and "answered 500" in said
    assert "going back to it anyway: undoing an unfinished rollout restores what web-eu ran before" in said
    assert world.driver.runs("web-eu") == {first: 2}


def test_a_rollback_stopped_on_its_way_back_onto_an_image_revoked_meanwhile_goes_on_only_with_the_override(
    world: World,
) -> None:
    first, _ = interrupted_rollout(world)
    world.driver.interrupt_at = "restore"
    assert world.run("rollback", "web-eu", "--yes").exit_code == 130
    assert world.run("revoke", first, "--reason", "bad openssl").exit_code == 0
    before = kept(world)
    for command in ("rollback", "rollout"):  # both take up the rollback steps where they stopped
        refused = world.run(command, "web-eu", "--yes")
        assert refused.exit_code == 1, refused.output
        assert f"refusing to roll web-eu back onto {first}: it is revoked since" in refused.stderr
        assert re.match(
            rf"rollout r-\S+ of web-eu stopped while going back to {first} \(at restore\), and stays so: going on "
            r"back is the only way on; --allow-unverified --reason \"WHY\" goes back onto it anyway",
            hint_of(refused),
        ), hint_of(refused)
        assert kept(world) == before
    done = world.run("rollback", "web-eu", "--yes", "--allow-unverified", "--reason", "finish going back")
    assert done.exit_code == 0, done.output
    assert world.driver.runs("web-eu") == {first: 2}
