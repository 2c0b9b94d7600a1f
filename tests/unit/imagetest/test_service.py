"""`bakery test` against the fake cloud and a stand-in instance: the verdict, the signed result
that `verify` reads, and the instance removed on every path (a failure, a refusal, SIGINT, SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from bakery.errors import Interrupted, ProviderError, TrustError
from bakery.imagetest.service import Tester
from bakery.progress import Recording
from bakery.workspace import Workspace


def make_tester(world: Any, launcher: Any) -> Tester:
    return Tester(world.project_dir.load(), Workspace(world.project_dir.home), Recording(), launcher=launcher)


def registry_result(world: Any, ref: str) -> dict[str, Any]:
    import base64

    name, version = ref.split("@")
    path = world.project_dir.home / "registry" / "tests" / "aws" / name / f"{version}.json"
    envelope = json.loads(path.read_text())
    payload: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return payload


def test_a_passing_image_is_signed_passed_and_verify_says_so(tested_world, launcher) -> None:
    ref = tested_world.bake()
    run = make_tester(tested_world, launcher).test(ref, "aws")
    assert run.ok and run.failed == ()
    assert run.passed == ("GET /healthz on port 80 answers 200 matching ^ok", "GET / on port 80 answers 200")
    assert launcher.running == {} and launcher.calls == ["sweep", "launch", "cleanup"]
    statement = registry_result(tested_world, ref)
    assert statement["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
    assert statement["predicate"]["result"] == "PASSED"
    assert statement["subject"][0]["annotations"]["version"] == ref.split("@")[1]
    verified = tested_world.run("verify", ref, "--target", "aws")
    assert verified.exit_code == 0, verified.output
    assert "ok   tests: passed (2 tests, signed by ops)" in verified.stdout
    assert [e["result"] for e in tested_world.audit() if e["action"] == "test"] == ["passed"]


def test_a_page_answering_500_fails_and_verify_refuses_it(tested_world, launcher, page) -> None:
    ref = tested_world.bake()
    page.answers["/healthz"] = (500, "broken")
    run = make_tester(tested_world, launcher).test(ref, "aws")
    assert not run.ok
    assert run.failed == ("GET /healthz on port 80 answers 200 matching ^ok: answered 500 (expected 200): 'broken'",)
    assert registry_result(tested_world, ref)["predicate"]["result"] == "FAILED"
    verified = tested_world.run("verify", ref, "--target", "aws")
    assert verified.exit_code == 1
    assert "FAIL tests: failed: GET /healthz on port 80 answers 200 matching ^ok: answered 500" in verified.stdout
    # A failed image is tested again on demand (the new result replaces the old one).
    page.answers["/healthz"] = (200, "ok again")
    assert make_tester(tested_world, launcher).test(ref, "aws").ok
    assert tested_world.run("verify", ref, "--target", "aws").exit_code == 0


def test_an_instance_that_stops_fails_at_once_and_is_removed(tested_world, launcher) -> None:
    ref = tested_world.bake()
    launcher.alive_answer = False
    launcher.reach = type(launcher.reach)("127.0.0.1", ports={80: 9}, local=True)  # nothing listens on 9
    run = make_tester(tested_world, launcher).test(ref, "aws")
    assert not run.ok and "the instance stopped before http://127.0.0.1:9/healthz answered" in run.failed[0]
    assert launcher.running == {}


def test_a_launch_the_cloud_refuses_still_cleans_up_and_records_nothing(tested_world, launcher) -> None:
    ref = tested_world.bake()
    launcher.fail("launch")
    with pytest.raises(ProviderError, match="fake: launch"):
        make_tester(tested_world, launcher).test(ref, "aws")
    assert launcher.calls == ["sweep", "launch", "cleanup"] and launcher.running == {}
    assert not (tested_world.project_dir.home / "registry" / "tests").exists()


def test_leftovers_of_killed_runs_are_removed_before_the_launch_and_said(tested_world, launcher) -> None:
    ref = tested_world.bake()
    launcher.leftovers = ["test instance i-0dead in eu-west-1 (run 1a2b, its time was up at ...): terminated"]
    reporter = Recording()
    tester = Tester(
        tested_world.project_dir.load(), Workspace(tested_world.project_dir.home), reporter, launcher=launcher
    )
    assert tester.test(ref, "aws").ok
    assert (
        "removed a test instance left by an earlier run: test instance i-0dead in eu-west-1 (run 1a2b, its time "
        "was up at ...): terminated"
    ) in reporter.notes
    assert launcher.calls[:2] == ["sweep", "launch"]


def test_a_sweep_the_cloud_refuses_is_said_and_the_test_goes_on(tested_world, launcher) -> None:
    ref = tested_world.bake()
    launcher.fail("sweep", "403 no compute.instances.list")
    reporter = Recording()
    tester = Tester(
        tested_world.project_dir.load(), Workspace(tested_world.project_dir.home), reporter, launcher=launcher
    )
    assert tester.test(ref, "aws").ok
    assert (
        "could not look for test instances left by earlier runs: fake: sweep: 403 no compute.instances.list"
        in reporter.notes
    )
    assert launcher.calls == ["sweep", "launch", "cleanup"] and launcher.running == {}


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("phase", ["sweep", "launch", "alive"])
def test_a_signal_in_any_phase_removes_the_instance(tested_world, launcher, page, signum, code, phase) -> None:
    ref = tested_world.bake()
    page.answers["/healthz"] = (200, "ok")
    if phase == "alive":  # the instance does not answer yet: bakery waits, and the signal comes
        launcher.reach = type(launcher.reach)("127.0.0.1", ports={80: 9}, local=True)
    launcher.on(phase, lambda: os.kill(os.getpid(), signum))
    with pytest.raises(Interrupted) as stopped:
        make_tester(tested_world, launcher).test(ref, "aws")
    assert stopped.value.exit_code == code
    assert launcher.calls[-1] == "cleanup" and launcher.running == {}
    assert list((tested_world.project_dir.home / "tests").iterdir()) == []  # the run's key is gone too
    assert not (tested_world.project_dir.home / "registry" / "tests").exists()


def test_an_image_that_does_not_verify_is_not_booted(tested_world, launcher) -> None:
    ref = tested_world.bake()
    tested_world.fake.tag(tested_world.image_id(ref), "bakery:inputs-digest", "sha256:" + "0" * 64)
    with pytest.raises(TrustError, match=f"refusing to test {ref} on aws: it does not verify"):
        make_tester(tested_world, launcher).test(ref, "aws")
    assert launcher.calls == []


def test_cli_test_exits_1_naming_the_failed_check(tested_world, launcher, page, monkeypatch) -> None:
    ref = tested_world.bake()
    page.answers["/"] = (503, "down")
    monkeypatch.setattr("bakery.imagetest.service.get_launcher", lambda *a, **k: launcher)
    result = tested_world.run("test", ref, "--target", "aws")
    assert result.exit_code == 1
    assert "FAILED GET / on port 80 answers 200: answered 503 (expected 200): 'down'" in result.stdout
    assert f"error: tests of {ref} on aws failed (1 of 2)" in result.stderr
    assert launcher.running == {}


def test_cli_test_of_an_image_without_tests_is_a_usage_error(world, launcher) -> None:
    ref = world.bake()
    result = world.run("test", ref, "--target", "aws")
    assert result.exit_code == 2
    assert "image 'web' declares no tests on target 'aws'" in result.stderr


def test_a_result_about_another_version_or_by_an_untrusted_key_does_not_count(tested_world, launcher, tmp_path) -> None:
    from bakery.core.jcs import jcs_bytes
    from bakery.errors import UsageError
    from bakery.trust import keyfile
    from bakery.trust.keys import generate
    from bakery.trust.signing import PAYLOAD_TYPE, sign

    first = tested_world.bake()
    second = tested_world.bake(force=True)
    make_tester(tested_world, launcher).test(first, "aws")
    tests = tested_world.project_dir.home / "registry" / "tests" / "aws" / "web"
    copied = tests / f"{second.split('@')[1]}.json"
    copied.write_bytes((tests / f"{first.split('@')[1]}.json").read_bytes())
    verified = tested_world.run("verify", second, "--target", "aws")
    assert verified.exit_code == 1
    assert f"it is about version '{first.split('@')[1]}', not '{second.split('@')[1]}'" in verified.stdout
    generate(tmp_path / "mallory.key")
    mallory = keyfile.load((tmp_path / "mallory.key").read_bytes(), name="mallory", where="x", error=UsageError)
    forged = sign(jcs_bytes(registry_result(tested_world, first)), PAYLOAD_TYPE, [mallory])
    (tests / f"{first.split('@')[1]}.json").write_text(json.dumps(forged))
    verified = tested_world.run("verify", first, "--target", "aws")
    assert verified.exit_code == 1 and "FAIL tests: invalid: tests/aws/web/" in verified.stdout


def test_build_stale_tests_each_bake_and_a_failed_test_fails_it(tested_world, launcher, page, monkeypatch) -> None:
    import bakery.bake.plan

    page.answers["/healthz"] = (500, "broken")
    monkeypatch.setattr("bakery.imagetest.service.get_launcher", lambda *a, **k: launcher)
    # The planner's own get_provider, whichever was imported first in this process: the fake cloud's.
    monkeypatch.setattr(bakery.bake.plan, "get_provider", lambda *a, **k: tested_world.fake)
    result = tested_world.run("build", "--stale", "--target", "aws")
    assert result.exit_code == 1, result.output
    assert "failed     web on aws: tests of web@1.0.0 on aws failed:" in result.stdout
    assert "not-built  app on aws: not built: web@aws failed" in result.stdout
    assert launcher.running == {} and launcher.calls.count("launch") == 1


def test_build_tests_its_bake_and_says_so(tested_world, launcher, page, monkeypatch) -> None:
    monkeypatch.setattr("bakery.imagetest.service.get_launcher", lambda *a, **k: launcher)
    built = tested_world.run("build", "web", "--target", "aws")
    assert built.exit_code == 0, built.output
    assert "tests of web@1.0.0 on aws: PASSED (2 passed, 0 failed)" in built.stdout
    untested = tested_world.run("build", "web", "--target", "aws", "--force", "--no-test", "--json")
    assert json.loads(untested.stdout)["tests"] is None and json.loads(untested.stdout)["untested"] == "--no-test"
    page.answers["/healthz"] = (500, "broken")
    failed = tested_world.run("build", "web", "--target", "aws", "--force", "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["record"]["version"] == "1.0.2"  # recorded, whatever the tests found
    assert (
        "error: tests of web@1.0.2 on aws failed:\n  GET /healthz on port 80 answers 200 matching ^ok:" in failed.stderr
    )
    assert "hint: the image stays recorded, tested and failed (tests/aws/web/1.0.2.json in " in failed.stderr
    assert launcher.running == {} and launcher.calls.count("launch") == 2


def test_a_channel_with_auto_takes_every_tested_bake_and_nothing_else(
    tested_world, launcher, page, monkeypatch
) -> None:
    monkeypatch.setattr("bakery.imagetest.service.get_launcher", lambda *a, **k: launcher)
    text = tested_world.project_dir.config.read_text()
    tested_world.project_dir.write(text + "channels:\n  testing: {auto: true, tests: passed}\n")
    built = tested_world.run("build", "web", "--target", "aws")
    assert built.exit_code == 0, built.output
    assert "note: promoted web@1.0.0 on aws to testing (auto)" in built.stderr
    untested = tested_world.run("build", "web", "--target", "aws", "--force", "--no-test")
    assert untested.exit_code == 0 and "note: not promoted to testing (auto)" in untested.stderr
    page.answers["/healthz"] = (500, "broken")
    failed = tested_world.run("build", "web", "--target", "aws", "--force")
    assert failed.exit_code == 1 and "(auto)" not in failed.stderr
    shown = json.loads(tested_world.run("channels", "testing", "--json").stdout)
    assert [c["head"] for c in shown["channels"]] == ["1.0.0"]


def test_a_failed_result_deleted_or_set_back_in_the_registry_is_caught_by_the_signed_log(
    tested_world, launcher, page
) -> None:
    from bakery.trust.testresults import key_of

    ref = tested_world.bake()
    name, version = ref.split("@")
    path = tested_world.project_dir.home / "registry" / key_of("aws", name, version)
    assert make_tester(tested_world, launcher).test(ref, "aws").ok
    passed = path.read_bytes()  # signed PASSED, kept by the attacker
    page.answers["/healthz"] = (500, "broken")
    assert not make_tester(tested_world, launcher).test(ref, "aws").ok

    says = "tests: the signed audit log records that its newest tests failed, but the registry"
    path.write_bytes(passed)  # the older PASSED put back
    verified = tested_world.run("verify", ref, "--target", "aws")
    assert verified.exit_code == 1 and f"{says} says they passed" in verified.stdout, verified.output
    path.unlink()  # or the FAILED result deleted
    verified = tested_world.run("verify", ref, "--target", "aws")
    assert verified.exit_code == 1 and f"{says} holds no test result" in verified.stdout, verified.output
