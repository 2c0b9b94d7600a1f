"""Trust through the CLI against the fake cloud (tests/fakes/provider.py), a stand-in packer and an
in-memory group driver: every bake is signed into the registry, `bakery verify` names what does not
match, rollouts refuse what does not verify or is revoked, revocation follows descendants and
fleets, and every decision lands in the audit log."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from bakery.groups.base import Release
from bakery.progress import Recording
from bakery.trust.keys import generate
from bakery.workspace import Workspace
from tests.unit.trust.conftest import TRUST, World, project_yaml


def verified(world: World, ref: str) -> dict[str, Any]:
    result = world.run("verify", ref, "--target", "aws", "--json")
    doc: dict[str, Any] = json.loads(result.stdout)
    assert (result.exit_code == 0) == doc["ok"], result.output
    return doc


def failures(doc: dict[str, Any]) -> list[str]:
    return [f"{c['name']}: {c['detail']}" for c in doc["checks"] if not c["ok"]]


def test_every_bake_is_signed_and_verifies(world: World) -> None:
    ref = world.bake()
    result = world.run("verify", ref, "--target", "aws")
    assert result.exit_code == 0, result.output
    assert f"{ref} on aws: verified" in result.stdout
    assert "signature: signed by ops (1 of 1 needed)" in result.stdout
    envelope = json.loads(
        (world.project_dir.home / "registry" / "attestations" / "aws" / "web" / "1.0.0.dsse.json").read_text()
    )
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert [e["action"] for e in world.audit()] == ["build", "sign"]


def test_a_changed_tag_fails_verification_and_names_the_tag(world: World) -> None:
    ref = world.bake()
    world.fake.tag(world.image_id(ref), "bakery:commit", "0" * 40)
    doc = verified(world, ref)
    assert not doc["ok"]
    assert any("tag bakery:commit" in f and "0000000000" in f for f in failures(doc)), failures(doc)
    assert world.audit()[-1]["action"] == "verify-failed"


def test_changed_content_fails_the_subject_check(world: World) -> None:
    ref = world.bake()
    world.fake.change(world.image_id(ref), b"one byte more")
    doc = verified(world, ref)
    assert any(f.startswith("subject:") and "changed since it was signed" in f for f in failures(doc)), failures(doc)


def test_a_changed_envelope_fails_the_signature(world: World) -> None:
    ref = world.bake()
    path = world.project_dir.home / "registry" / "attestations" / "aws" / "web" / "1.0.0.dsse.json"
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["version"] = "9.9.9"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope))
    doc = verified(world, ref)
    assert any(f.startswith("signature:") and "ops" in f and "does not match" in f for f in failures(doc)), failures(
        doc
    )


def test_an_untrusted_key_is_refused_naming_it(world: World) -> None:
    ref = world.bake()
    other = generate(world.project_dir.root / "keys" / "other.key")
    world.project_dir.write(project_yaml(TRUST.replace("keys/ops.key.pub", "keys/other.key.pub")))
    doc = verified(world, ref)
    problems = failures(doc)
    assert any("not in trust.keys" in p and other.keyid[:8] in p for p in problems), problems


def test_a_signature_below_the_threshold_is_refused_until_a_second_key_cosigns(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = world.bake()
    generate(world.project_dir.root / "keys" / "second.key")
    two = TRUST.replace(
        "    - {name: ops, public_key: keys/ops.key.pub}\n",
        "    - {name: ops, public_key: keys/ops.key.pub}\n    - {name: second, public_key: keys/second.key.pub}\n",
    ).replace("trust:\n", "trust:\n  threshold: 2\n")
    world.project_dir.write(project_yaml(two))
    doc = verified(world, ref)
    assert any("1 valid signature (ops) of the 2" in p for p in failures(doc)), failures(doc)
    refused = world.run("rollout", "web-eu", "--yes")
    assert refused.exit_code == 1 and "does not verify" in refused.stderr
    monkeypatch.setenv("BAKERY_SIGNING_KEY", str(world.project_dir.root / "keys" / "second.key"))
    cosigned = world.run("sign", ref, "--target", "aws")
    assert cosigned.exit_code == 0, cosigned.output
    assert verified(world, ref)["ok"]


def test_an_unsigned_image_is_refused_and_allow_unverified_goes_through_on_the_record(world: World) -> None:
    world.driver.seed("web-eu", Release("web@1.0.0", "img-old", None, "sha256:old"))
    ref = world.bake()
    (world.project_dir.home / "registry" / "attestations" / "aws" / "web" / "1.0.0.dsse.json").unlink()
    refused = world.run("rollout", "web-eu", "--yes")
    assert refused.exit_code == 1
    assert f"refusing to rollout web-eu onto {ref}: it does not verify" in refused.stderr
    assert "unsigned: no attestation" in refused.stderr
    assert world.driver.runs("web-eu") == {"web@1.0.0": 2}
    reasonless = world.run("rollout", "web-eu", "--yes", "--allow-unverified")
    assert reasonless.exit_code == 2
    assert "--allow-unverified needs --reason TEXT" in reasonless.stderr
    assert world.driver.runs("web-eu") == {"web@1.0.0": 2}
    forced = world.run("rollout", "web-eu", "--yes", "--allow-unverified", "--reason", "INC-42 hotfix")
    assert forced.exit_code == 0, forced.output
    assert "WARNING" in forced.stderr and "--allow-unverified" in forced.stderr
    assert world.driver.runs("web-eu") == {ref: 2}
    actions = [(e["action"], e["result"]) for e in world.audit()]
    assert ("override", "allowed-unverified") in actions and ("rollout", "succeeded") in actions
    (override,) = [e for e in world.audit() if e["action"] == "override"]
    assert override["details"]["reason"] == "INC-42 hotfix"
    assert world.run("audit", "verify").exit_code == 0


def test_revoking_a_base_revokes_its_children_and_status_names_the_groups(world: World) -> None:
    base = world.bake("web")
    child = world.bake("app")
    world.driver.seed("web-eu", Release(base, world.image_id(base), None, "x"))
    world.driver.seed("app-eu", Release(child, world.image_id(child), None, "y"))
    result = world.run("revoke", base, "--reason", "CVE-2026-0001 in openssl", "--target", "aws")
    assert result.exit_code == 0, result.output
    assert f"inherited by: {child}" in result.stdout
    doc = verified(world, child)
    assert any(f"inherited from {base}" in p for p in failures(doc)), failures(doc)
    status = world.run("status", "--json")
    assert status.exit_code == 3
    groups = {g["group"]: g for g in json.loads(status.stdout)["groups"]}
    assert any(base in line for line in groups["web-eu"]["revoked"])
    assert any(child in line and "CVE-2026-0001" in line for line in groups["app-eu"]["revoked"])
    # A revoked image never rolls out, override or not.
    again = world.run("rollout", "web-eu", "--image", base, "--yes", "--allow-unverified", "--reason", "need it")
    assert again.exit_code == 1 and "is revoked since" in again.stderr
    assert [e["action"] for e in world.audit()].count("revoke") == 1
    lifted = world.run("unrevoke", base, "--reason", "false alarm", "--target", "aws")
    assert lifted.exit_code == 0, lifted.output
    assert verified(world, child)["ok"]


def test_rollout_moves_a_group_off_a_revoked_image_to_the_newest_that_is_not(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    third = world.bake(force=True)
    world.driver.seed("web-eu", Release(third, world.image_id(third), None, "z"))
    assert world.run("revoke", third, "--reason", "bad build").exit_code == 0
    assert world.run("status", "web-eu").exit_code == 3
    moved = world.run("rollout", "web-eu", "--yes")
    assert moved.exit_code == 0, moved.output
    assert f"skipping {third}" in moved.stderr
    assert world.driver.runs("web-eu") == {second: 2}
    assert world.run("status", "web-eu").exit_code == 0
    assert verified(world, first)["ok"]  # older versions stay as they were: verified, not revoked


def test_a_scheduled_revocation_takes_effect_at_its_time(world: World) -> None:
    ref = world.bake()
    result = world.run("revoke", ref, "--reason", "end of support", "--at", "2999-01-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    doc = verified(world, ref)
    assert doc["ok"]
    assert any("scheduled" in c["detail"] for c in doc["checks"] if c["name"] == "revocation")


def test_a_hand_edited_audit_event_is_named(world: World) -> None:
    world.bake()
    events = sorted((world.project_dir.home / "registry" / "audit" / "events").glob("*.json"))
    first = json.loads(events[0].read_text())
    payload = json.loads(base64.b64decode(first["payload"]))
    payload["who"] = "mallory@elsewhere"
    first["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    events[0].write_text(json.dumps(first))
    result = world.run("audit", "verify")
    assert result.exit_code == 1
    assert "event 1" in result.stdout and "changed" in result.stdout


def test_an_interrupted_rollout_is_not_resumed_onto_an_image_revoked_meanwhile(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    world.driver.interrupt_at = "wave-2"
    stopped = world.run("rollout", "web-eu", "--yes")
    assert stopped.exit_code == 130, stopped.output
    assert world.run("revoke", second, "--reason", "leaked key in /etc").exit_code == 0
    resumed = world.run("rollout", "web-eu", "--yes")
    assert resumed.exit_code == 1
    assert f"refusing to resume the rollout of web-eu onto {second}: it is revoked since" in resumed.stderr
    assert "bakery rollback web-eu" in resumed.stderr
    undone = world.run("rollback", "web-eu", "--yes")
    assert undone.exit_code == 0, undone.output
    assert world.driver.runs("web-eu") == {first: 2}


def test_a_resumed_rollback_is_refused_onto_an_image_revoked_meanwhile(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    world.driver.interrupt_at = "wave-2"
    assert world.run("rollback", "web-eu", "--yes").exit_code == 130
    assert world.run("revoke", first, "--reason", "bad openssl").exit_code == 0
    resumed = world.run("rollback", "web-eu", "--yes")
    assert resumed.exit_code == 1
    assert f"onto {first}: it is revoked since" in resumed.stderr
    assert second in world.driver.runs("web-eu")


def test_a_failed_rollout_is_paused_rather_than_rolled_back_onto_a_revoked_image(world: World) -> None:
    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    assert world.run("revoke", first, "--reason", "bad openssl").exit_code == 0
    world.driver.bad.add(second)
    failed = world.run("rollout", "web-eu", "--yes")
    assert failed.exit_code == 1
    assert f"is paused: the image to roll back to, {first}, is revoked since" in failed.stderr
    assert "rolled back" not in failed.stderr
    status = world.run("status", "web-eu")
    assert status.exit_code == 3
    assert "(interrupted)" in status.stdout and f"runs revoked image {first}" in status.stdout
    hint = " ".join(failed.stderr.split("hint: ", 1)[1].split())
    assert hint == (
        f"`bakery rollout web-eu` resumes it onto {second}; `bakery rollout web-eu --image NAME@VERSION` replaces it "
        "with a rollout of an image that passes the gate (it is closed as abandoned, on the record); `bakery rollback "
        f'web-eu --allow-unverified --reason "WHY"` goes back onto {first} anyway (recorded in the audit log)'
    )
    refused = world.run("rollback", "web-eu", "--yes")  # a person decides: not without the override
    assert refused.exit_code == 1 and f"refusing to roll web-eu back onto {first}: it is revoked" in refused.stderr
    back = world.run("rollback", "web-eu", "--yes", "--allow-unverified", "--reason", f"{second} fails its gate")
    assert back.exit_code == 0, back.output
    assert world.driver.runs("web-eu") == {first: 2}


def test_a_rollout_stops_before_its_next_wave_when_its_image_is_revoked_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bakery.trust.context import TrustContext
    from bakery.trust.revocations import Revocations

    first = world.bake()
    second = world.bake(force=True)
    world.driver.seed("web-eu", Release(first, world.image_id(first), None, "a"))
    move = world.driver._move

    def revoked_after_the_first_wave(*args: Any, **kwargs: Any) -> None:
        move(*args, **kwargs)
        trust = TrustContext(world.project_dir.load(), Workspace(world.project_dir.home), Recording())
        Revocations(trust).decide(
            "aws", second, revoked=True, reason="found a leaked key", at=None, by="sec@team", details={}
        )

    monkeypatch.setattr(world.driver, "_move", revoked_after_the_first_wave)
    stopped = world.run("rollout", "web-eu", "--yes")
    assert stopped.exit_code == 1
    assert f"{second} was revoked while the rollout ran" in stopped.stderr and "stopped before wave-2" in stopped.stderr
    assert world.driver.runs("web-eu") == {first: 1, second: 1}  # the first wave only
    undone = world.run("rollback", "web-eu", "--yes")
    assert undone.exit_code == 0, undone.output
    assert world.driver.runs("web-eu") == {first: 2}


def test_a_machine_whose_key_is_not_trusted_is_refused_before_packer_starts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bakery.errors import ConfigError

    generate(world.project_dir.root / "keys" / "laptop.key")
    monkeypatch.setenv("BAKERY_SIGNING_KEY", str(world.project_dir.root / "keys" / "laptop.key"))
    with pytest.raises(ConfigError, match=r"this machine signs with .* which is not in trust.keys"):
        world.bake()
    assert world.fake.all_images() == []
    exported = world.run("keys", "export")
    assert exported.exit_code == 0 and "BEGIN PUBLIC KEY" in exported.stdout


def test_a_malformed_revocation_in_the_registry_is_named(world: World) -> None:
    ref = world.bake()
    bad = world.project_dir.home / "registry" / "revocations" / "aws" / "web" / "1.0.0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("not json")
    result = world.run("verify", ref, "--target", "aws")
    assert result.exit_code == 1
    assert "FAIL revocation: cannot be ruled out: revocations/aws/web/1.0.0.json in" in result.stdout
    assert "is not a revocation document" in result.stdout
    assert world.run("status").exit_code == 1


@pytest.mark.parametrize("command", ["revoke", "unrevoke"])
def test_a_reason_with_a_newline_is_refused_and_nothing_is_written(world: World, command: str) -> None:
    ref = world.bake()
    events = len(world.audit())
    result = world.run(command, ref, "--reason", "bad build\nok revocation: not revoked", "--target", "aws")
    assert result.exit_code == 2, result.output
    assert "--reason holds a control character (a newline, U+000A)" in result.stderr
    assert not (world.project_dir.home / "registry" / "revocations").exists()
    assert len(world.audit()) == events


def test_verify_and_status_never_make_a_signing_key(world: World) -> None:
    """A project that trusts its workspace key loses it: verify fails and status reads, and
    neither makes a new key that would then be trusted."""
    world.project_dir.write(project_yaml(trust=""))
    ref = world.bake()
    keys = world.project_dir.home / "keys"
    assert (keys / "signing.key").exists()
    for made in keys.iterdir():
        made.unlink()
    keys.rmdir()
    verified = world.run("verify", ref, "--target", "aws")
    assert verified.exit_code == 1, verified.output
    world.run("status")
    assert not keys.exists()


@pytest.mark.parametrize("hostile", ["fifo", "dev-zero", "deep", "wrong-types", "linked-directory"])
def test_a_hostile_registry_file_is_named_by_every_command_without_a_traceback_or_a_hang(
    world: World, hostile: str, tmp_path: Any
) -> None:
    import os

    ref = world.bake()
    registry = world.project_dir.home / "registry"
    revocation = registry / "revocations" / "aws" / "web" / "1.0.0.json"
    revocation.parent.mkdir(parents=True)
    if hostile == "fifo":
        os.mkfifo(revocation)
    elif hostile == "dev-zero":
        attestation = registry / "attestations" / "aws" / "web" / "1.0.0.dsse.json"
        attestation.unlink()
        attestation.symlink_to("/dev/zero")
    elif hostile == "deep":
        revocation.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    elif hostile == "wrong-types":
        revocation.write_text(json.dumps({"state": "revoked", "target": "aws", "ref": ["x"], "at": 5}))
    else:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        revocation.parent.rmdir()
        (registry / "revocations" / "aws").rmdir()
        (registry / "revocations").rmdir()
        (registry / "revocations").symlink_to(elsewhere)
    commands = [["verify", ref, "--target", "aws"]]
    if hostile != "dev-zero":  # status and revoke read revocations, not attestations
        commands += [["status"], ["revoke", ref, "--reason", "x", "-t", "aws"]]
    for command in commands:
        result = world.run(*command)
        assert result.exit_code == 1, (command, result.output)
        assert "Traceback" not in result.output, (command, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (command, result.exception)
        assert "registry" in result.output or "revocation" in result.output or "attestation" in result.output
    if hostile == "linked-directory":
        assert list((tmp_path / "elsewhere").iterdir()) == []


# --- the audit log cannot go back in time; revocations are cross-checked -----------------------


def _revocation_doc(world: World, ref: str) -> Any:
    name, version = ref.split("@")
    return world.project_dir.home / "registry" / "revocations" / "aws" / name / f"{version}.json"


def _refused_everywhere(world: World, ref: str, says: str) -> None:
    """verify, status and a rollout onto `ref` all exit 1 and say `says`."""
    checked = world.run("verify", ref, "--target", "aws")
    assert checked.exit_code == 1, checked.output
    assert says in checked.output, checked.output
    status = world.run("status")
    assert status.exit_code == 1, status.output
    assert says in status.output, status.output
    rolled = world.run("rollout", "web-eu", "--image", ref, "--yes")
    assert rolled.exit_code == 1, rolled.output
    assert says in rolled.output, rolled.output
    assert world.driver.runs("web-eu") == {}


def _revoke_then_erase_it(world: World, ref: str, meanwhile: Callable[[], None] = lambda: None) -> None:
    """Revoke `ref` (then run `meanwhile`), then do what an attacker with write access to the
    registry does: put the earlier, self-consistent log back in place and delete the revocation
    document."""
    import shutil

    audit = world.project_dir.home / "registry" / "audit"
    saved = world.project_dir.root.parent / "audit-before-revoke"
    shutil.copytree(audit, saved)
    assert world.run("revoke", ref, "--reason", "CVE-2026-9", "-t", "aws").exit_code == 0
    meanwhile()
    shutil.rmtree(audit)
    shutil.copytree(saved, audit)
    _revocation_doc(world, ref).unlink()


def test_a_log_rolled_back_to_before_a_revoke_with_its_document_deleted_is_refused(world: World) -> None:
    ref = world.bake()
    assert world.run("audit", "verify").exit_code == 0
    _revoke_then_erase_it(world, ref)

    _refused_everywhere(world, ref, "went back in time")
    verified = world.run("audit", "verify")
    assert verified.exit_code == 1
    assert "the audit log in" in verified.output and "went back in time: this machine saw event" in verified.output
    assert "(rolled back?)" in verified.output


def test_a_wiped_log_is_refused_and_nothing_is_appended_to_a_new_chain(world: World) -> None:
    import shutil

    ref = world.bake()
    shutil.rmtree(world.project_dir.home / "registry" / "audit")
    verified = world.run("audit", "verify")
    assert verified.exit_code == 1
    assert "it has no events (wiped?)" in verified.output
    _refused_everywhere(world, ref, "it has no events (wiped?)")
    assert world.run("revoke", ref, "--reason", "x", "-t", "aws").exit_code == 1
    assert not (world.project_dir.home / "registry" / "audit" / "events").exists()


def test_a_deleted_revocation_document_does_not_lift_the_revocation(world: World) -> None:
    ref = world.bake()
    assert world.run("revoke", ref, "--reason", "CVE-2026-9", "-t", "aws").exit_code == 0
    _revocation_doc(world, ref).unlink()
    _refused_everywhere(world, ref, "revocations disagree: the signed audit log revokes web@1.0.0 on aws")
    checked = world.run("verify", ref, "--target", "aws")
    assert "CVE-2026-9" in checked.output and "is gone" in checked.output


def test_a_revocation_erased_from_the_registry_is_still_caught_by_the_image_s_own_mark(world: World) -> None:
    """The attacker rolls the log back to before the revoke and deletes the document; a machine
    that never saw the newer log (no witness) sees a consistent registry. The image still says it
    is revoked, and that disagreement is refused everywhere, override or not."""
    ref = world.bake()
    _revoke_then_erase_it(world, ref)
    for witness in world.project_dir.home.rglob("audit-witness.json"):
        witness.unlink()  # a first-time reader: nothing remembered

    says = "the registry holds no revocation for web@1.0.0 on aws, but the image itself is marked revoked"
    checked = world.run("verify", ref, "--target", "aws")
    assert checked.exit_code == 1, checked.output
    assert says in checked.output and "the registry and the image disagree" in checked.output
    world.driver.seed("web-eu", Release(ref, world.image_id(ref), None, "x"))
    status = world.run("status", "web-eu")
    assert status.exit_code == 3, status.output
    assert f"runs {ref} (2 instance(s)), which may be revoked: {says}" in status.output
    world.driver.seed("web-eu", Release("web@0.9.0", "img-old", None, "sha256:old"))
    rolled = world.run("rollout", "web-eu", "--image", ref, "--yes")
    assert rolled.exit_code == 1 and says in rolled.output, rolled.output
    forced = world.run("rollout", "web-eu", "--image", ref, "--yes", "--allow-unverified", "--reason", "need it")
    assert forced.exit_code == 1, forced.output
    assert says in forced.output
    assert world.driver.runs("web-eu") == {"web@0.9.0": 2}
    child = world.run("build", "app", "--target", "aws")
    assert child.exit_code == 1 and "refusing to bake app on aws from web@1.0.0: it may be revoked" in child.output


def test_a_child_of_a_parent_whose_revocation_was_erased_is_refused_even_with_an_override(world: World) -> None:
    """The parent's mark survives the erasure; the child (baked on it with an override, so it
    carries no mark of its own) is refused through its ancestry, override or not."""
    base = world.bake()

    def bake_the_child() -> None:
        forced = world.run("build", "app", "-t", "aws", "--allow-revoked-parent", "--reason", "rebuild the fix")
        assert forced.exit_code == 0, forced.output

    _revoke_then_erase_it(world, base, bake_the_child)
    (child,) = [r.ref for r in world.fake.images("aws") if r.name == "app"]
    for witness in world.project_dir.home.rglob("audit-witness.json"):
        witness.unlink()

    says = f"its ancestor {base} is marked revoked"
    checked = world.run("verify", child, "--target", "aws")
    assert checked.exit_code == 1 and says in checked.output, checked.output
    world.driver.seed("app-eu", Release("app@1.9.0", "img-old", None, "sha256:old"))
    forced = world.run("rollout", "app-eu", "--image", child, "--yes", "--allow-unverified", "--reason", "need it")
    assert forced.exit_code == 1 and says in forced.output, forced.output
    assert world.driver.runs("app-eu") == {"app@1.9.0": 2}


def test_an_unrevoke_that_could_not_clear_the_marks_is_refused_until_it_is_run_again(world: World) -> None:
    ref = world.bake()
    assert world.run("revoke", ref, "--reason", "CVE-2026-9", "-t", "aws").exit_code == 0
    world.fake.fail("unmark_revoked")
    failed = world.run("unrevoke", ref, "--reason", "false alarm", "-t", "aws")
    assert failed.exit_code == 1 and "run the same `bakery unrevoke` again to finish" in failed.output
    checked = world.run("verify", ref, "--target", "aws")
    assert checked.exit_code == 1
    assert "the registry and the image disagree (a deleted revocation document, or an unfinished unrevoke)" in (
        checked.output
    )
    assert world.run("unrevoke", ref, "--reason", "false alarm", "-t", "aws").exit_code == 0
    again = world.run("verify", ref, "--target", "aws")
    assert again.exit_code == 0 and "ok   revocation: not revoked" in again.output, again.output


def test_an_older_signed_scheduled_revocation_put_back_cannot_hide_the_one_in_effect(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    ref = world.bake()
    later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert world.run("revoke", ref, "--reason", "EOL", "--at", later, "-t", "aws").exit_code == 0
    scheduled = _revocation_doc(world, ref).read_bytes()  # signed by ops, from 30 days on
    now = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert world.run("revoke", ref, "--reason", "exploited CVE", "--at", now, "-t", "aws").exit_code == 0
    assert world.run("verify", ref, "--target", "aws").exit_code == 1
    _revocation_doc(world, ref).write_bytes(scheduled)  # the attacker puts the older signed document back

    says = f"revocations disagree: the signed audit log revokes {ref} on aws from "
    _refused_everywhere(world, ref, says)
    checked = world.run("verify", ref, "--target", "aws")
    assert f"{says}{now} (event" in checked.output and f"says from {later}" in checked.output, checked.output


def test_an_unsigned_revocation_document_is_refused(world: World) -> None:
    ref = world.bake()
    assert world.run("revoke", ref, "--reason", "CVE-2026-9", "-t", "aws").exit_code == 0
    doc = _revocation_doc(world, ref)
    payload = json.loads(base64.b64decode(json.loads(doc.read_text())["payload"]))
    doc.write_text(json.dumps({**payload, "state": "active"}))  # the attacker's own, unsigned
    checked = world.run("verify", ref, "--target", "aws")
    assert checked.exit_code == 1
    assert "is not a revocation document: it is not signed" in checked.output


def test_unrevoke_writes_its_event_first_and_changes_nothing_when_it_cannot(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bakery.errors import BakeryError
    from bakery.trust.audit import AuditLog

    ref = world.bake()
    assert world.run("revoke", ref, "--reason", "CVE-2026-9", "-t", "aws").exit_code == 0
    before = _revocation_doc(world, ref).read_bytes()

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise BakeryError("the registry refused the write (simulated)")

    with monkeypatch.context() as patched:
        patched.setattr(AuditLog, "append", refuse)
        failed = world.run("unrevoke", ref, "--reason", "false alarm", "-t", "aws")
    assert failed.exit_code == 1
    assert "the registry refused the write (simulated)" in failed.output
    assert _revocation_doc(world, ref).read_bytes() == before
    checked = world.run("verify", ref, "--target", "aws")
    assert checked.exit_code == 1 and "is revoked since" in checked.output


def test_audit_verify_without_a_trusted_key_fails_closed_unless_unsigned_is_asked_for(world: World) -> None:
    world.project_dir.write(project_yaml(trust=""))
    world.bake()
    keys = world.project_dir.home / "keys"
    for made in keys.iterdir():
        made.unlink()
    # The events rewritten unsigned, with a forged who: nothing can tell, so nothing passes.
    for path in sorted((world.project_dir.home / "registry" / "audit" / "events").glob("*.json")):
        envelope = json.loads(path.read_text())
        envelope["signatures"] = []
        path.write_text(json.dumps(envelope))
    refused = world.run("audit", "verify")
    assert refused.exit_code == 1
    assert "audit log NOT VERIFIED: signatures cannot be checked: no trusted keys" in refused.output
    chain_only = world.run("audit", "verify", "--unsigned")
    assert chain_only.exit_code == 0, chain_only.output
    assert "signatures NOT checked (--unsigned)" in chain_only.output


def test_audit_verify_checks_only_what_is_new_since_its_last_check(world: World) -> None:
    world.bake()
    first = world.run("audit", "verify", "--json")
    assert first.exit_code == 0 and json.loads(first.stdout)["checked_from"] == 1
    world.bake(force=True)
    again = json.loads(world.run("audit", "verify", "--json").stdout)
    assert again["ok"] and again["checked_from"] == 2 and again["head"] == 4
    full = json.loads(world.run("audit", "verify", "--full", "--json").stdout)
    assert full["ok"] and full["checked_from"] == 1 and full["events"] == 4


def test_audit_verify_relies_on_the_sealed_head_unless_every_signature_is_asked_for(world: World) -> None:
    world.bake()
    world.bake(force=True)
    # An event's own signature stripped, its payload unchanged: the sealed head still fixes it.
    second = world.project_dir.home / "registry" / "audit" / "events" / f"{2:012d}.json"
    envelope = json.loads(second.read_text())
    envelope["signatures"] = []
    second.write_text(json.dumps(envelope))

    sealed = world.run("audit", "verify", "--full")
    assert sealed.exit_code == 0, sealed.output
    assert sealed.output.strip() == (
        "audit log intact: 4 events, chain and signatures verified (head: event 4; the signed head's seal vouches"
        " for events up to 4)"
    )
    every = world.run("audit", "verify", "--full", "--every-signature")
    assert every.exit_code == 1
    assert "audit log BROKEN: 1 problem(s) in 4 events\n  event 2 (" in every.output
    assert every.output.rstrip().endswith(") is not signed")


def test_checkpoints_need_write_once_storage_named_in_images_yaml(world: World) -> None:
    world.bake()
    for args in (("audit", "verify", "--checkpoints"), ("audit", "checkpoint")):
        refused = world.run(*args)
        assert refused.exit_code == 2
        assert "no write-once storage for audit checkpoints is configured" in refused.output
        assert "set registry.checkpoints in images.yaml" in refused.output


def test_a_child_whose_parent_mark_is_stripped_still_inherits_its_ancestors_revocation(world: World) -> None:
    """Ancestry is what the signed statement says, never less: a child of a revoked base whose
    parent tag was removed is revoked all the same, for verify, the rollout gate and status."""
    base = world.bake()
    child = world.bake("app")
    assert world.run("revoke", base, "--reason", "CVE-2026-0001", "-t", "aws").exit_code == 0
    image = world.fake._images[world.image_id(child)]
    image.parent = None  # the mark the cloud carries, gone
    image.tags.pop("bakery:parent", None)
    assert next(r for r in world.fake.images("aws") if r.ref == child).parent is None

    checked = world.run("verify", child, "--target", "aws")
    assert checked.exit_code == 1
    assert f"{child} is revoked since" in checked.stdout and f"(inherited from {base})" in checked.stdout
    world.driver.seed("app-eu", Release("app@1.9.0", "img-old", None, "sha256:old"))
    forced = world.run("rollout", "app-eu", "--image", child, "--yes", "--allow-unverified", "--reason", "x")
    assert forced.exit_code == 1 and "is revoked since" in forced.stderr
    assert world.driver.runs("app-eu") == {"app@1.9.0": 2}
    world.driver.seed("app-eu", Release(child, world.image_id(child), None, "sha256:x"))
    status = world.run("status", "app-eu")
    assert status.exit_code == 3 and f"runs revoked image {child}" in status.stdout, status.output


def test_a_bake_on_a_revoked_parent_is_refused_unless_overridden_with_a_reason(world: World) -> None:
    base = world.bake()
    assert world.run("revoke", base, "--reason", "CVE-2026-0001", "-t", "aws").exit_code == 0
    refused = world.run("build", "app", "--target", "aws")
    assert refused.exit_code == 1
    assert f"refusing to bake app on aws from {base}: it is revoked since" in refused.stderr
    assert [i for i in world.fake.all_images() if i.name == "app"] == []
    reasonless = world.run("build", "app", "--target", "aws", "--allow-revoked-parent")
    assert reasonless.exit_code == 2 and "--allow-revoked-parent needs --reason TEXT" in reasonless.stderr
    forced = world.run("build", "app", "-t", "aws", "--allow-revoked-parent", "--reason", "rebuild the fix on it")
    assert forced.exit_code == 0, forced.output
    assert "WARNING: baking app from" in forced.output
    (override,) = [e for e in world.audit() if e["action"] == "override"]
    assert override["result"] == "allowed-revoked-parent"
    assert override["details"]["reason"] == "rebuild the fix on it"
