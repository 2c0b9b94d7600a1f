"""The one door for processes (bakery/runner.py): masking, clean environments, failures, timeouts,
and what a signal does to a job, whether a child runs or bakery itself waits.

Signals are real: the tests send them to their own process (os.kill) from the main thread, inside
runner.signal_guard, as a user's Ctrl-C or `kill` would arrive.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bakery import runner
from bakery.errors import BuildError, Interrupted
from tests.fakes.provider import wait_for

PY = sys.executable
SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
SIGNAL_IDS = ["SIGINT", "SIGTERM", "SIGHUP"]

# A child that cleans up on SIGINT (as Packer does) and says which signal it got. Its handlers
# write with os.write: a print() interrupted by the next signal's print() raises in the child.
CLEANS_UP = """
import os, signal, sys, time
def say(text):
    os.write(1, text.encode() + b"\\n")
def stop(signum, frame):
    say("child: got " + signal.Signals(signum).name + " - cleaning up")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
say("ready")
time.sleep(30)
say("child: nobody stopped me")
"""


def py(code: str, *args: str) -> list[str]:
    return [PY, "-c", code, *args]


def send_on(marker: str, *signums: int) -> Callable[[str], None]:
    """An on_line callback that sends this process the next signal each time a line holds `marker`."""
    pending = list(signums)

    def on_line(line: str) -> None:
        if marker in line and pending:
            os.kill(os.getpid(), pending.pop(0))

    return on_line


# --- running a command ---------------------------------------------------------------------------


def test_secrets_are_masked_in_the_logged_command_line_and_the_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "tool.log"
    seen: list[str] = []
    caplog.set_level(logging.DEBUG, logger="bakery.runner")
    done = runner.run(
        py("import sys; print('connecting with', sys.argv[1])", "hunter2-hunter2"),
        what="tool",
        log_path=log,
        on_line=seen.append,
        secrets=("hunter2-hunter2",),
    )
    assert log.read_text().splitlines() == [
        f"$ {PY} -c 'import sys; print('\"'\"'connecting with'\"'\"', sys.argv[1])' ********",
        "connecting with ********",
    ]
    assert seen == ["connecting with ********"] and done.output == "connecting with ********"
    assert "hunter2" not in caplog.text and "********" in caplog.text
    assert done.returncode == 0


def test_a_child_gets_a_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SHELL_SECRET", "x")
    monkeypatch.setenv("PKR_VAR_region", "us-east-1")  # Packer variables come from the rendered directory
    monkeypatch.setenv("AWS_PROFILE", "builder")
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.delenv("LANG", raising=False)
    done = runner.run(py("import json, os; print(json.dumps(dict(os.environ)))"), what="env", env={"EXTRA": "1"})
    env = json.loads(done.output)
    assert "MY_SHELL_SECRET" not in env and "PKR_VAR_region" not in env
    assert (env["AWS_PROFILE"], env["LC_ALL"], env["EXTRA"]) == ("builder", "C", "1")
    assert env["LANG"] == "C.UTF-8" and env["CHECKPOINT_DISABLE"] == "1"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(PY).parent)  # tools beside bakery win


def test_a_failing_command_raises_build_error_with_its_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "tool.log"
    with pytest.raises(BuildError) as caught:
        runner.run(py("import sys\nfor i in range(40): print('line', i)\nsys.exit(3)"), what="tool", log_path=log)
    error = caught.value
    assert error.message == "tool failed (exit 3)"
    assert (error.returncode, error.exit_code, error.log_path) == (3, 1, str(log))
    assert error.tail == tuple(f"line {i}" for i in range(10, 40))
    assert "line 0" in log.read_text()  # the log has everything


def test_unchecked_a_failure_is_a_result() -> None:
    done = runner.run(py("import sys; print('no'); sys.exit(4)"), what="probe", check=False)
    assert (done.returncode, done.output) == (4, "no")


def test_a_command_past_its_timeout_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        runner.run(py("import time; print('up', flush=True); time.sleep(30)"), what="probe", timeout=0.5)
    assert caught.value.message == "probe timed out"
    assert caught.value.tail == ("up",)
    assert time.monotonic() - started < 10
    unchecked = runner.run(py("import time; time.sleep(30)"), what="probe", timeout=0.5, check=False)
    assert unchecked.returncode == -signal.SIGKILL


def test_a_missing_tool_is_named_with_how_to_install_it() -> None:
    with pytest.raises(BuildError) as caught:
        runner.run(["no-such-tool-9f2c", "--version"], what="thing")
    assert caught.value.message == "thing: 'no-such-tool-9f2c' is not installed or not on PATH"
    assert caught.value.hint is not None and "make setup" in caught.value.hint


# --- signals while a child runs ------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_a_signal_while_a_child_runs_lets_it_clean_up_then_stops_the_job(signum: int, code: int) -> None:
    with pytest.raises(Interrupted) as caught, runner.signal_guard():
        runner.run(py(CLEANS_UP), what="packer build", on_line=send_on("ready", signum))
    error = caught.value
    assert (error.message, error.exit_code) == ("packer build interrupted; cleanup ran", code)
    # The child got SIGINT, as a terminal's Ctrl-C gives it, whatever bakery got; it finished its cleanup.
    assert error.tail == ("ready", "child: got SIGINT - cleaning up")
    assert error.returncode == 0


def test_a_third_signal_hurries_a_child_that_takes_its_time(capsys: pytest.CaptureFixture[str]) -> None:
    slow = CLEANS_UP.replace(
        "signal.signal(signal.SIGINT, stop)",
        "signal.signal(signal.SIGINT, lambda *a: say('child: still cleaning up'))",
    )
    first = send_on("ready", signal.SIGINT)
    again = send_on("still cleaning up", signal.SIGINT, signal.SIGINT)  # each SIGINT makes it say so

    def on_line(line: str) -> None:
        first(line)
        again(line)

    with pytest.raises(Interrupted) as caught, runner.signal_guard():
        runner.run(py(slow), what="packer build", on_line=on_line)
    assert caught.value.exit_code == 130
    assert "child: got SIGTERM - cleaning up" in caught.value.tail
    assert "note: waiting for the running tools to clean up; signal again to hurry them" in capsys.readouterr().err


# --- signals while bakery itself waits -----------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), SIGNALS, ids=SIGNAL_IDS)
def test_a_signal_while_bakery_waits_stops_the_job_at_once(signum: int, code: int) -> None:
    reached: list[str] = []
    started = time.monotonic()
    with pytest.raises(Interrupted) as caught, runner.signal_guard():
        os.kill(os.getpid(), signum)
        time.sleep(10)  # a cloud call, a poll, a lock
        reached.append("after the wait")
    assert (caught.value.message, caught.value.exit_code) == (
        f"interrupted by signal {signal.Signals(signum).name}",
        code,
    )
    assert reached == [] and time.monotonic() - started < 5


def test_after_the_job_the_handlers_are_restored_and_nothing_is_pending() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(Interrupted), runner.signal_guard():
        os.kill(os.getpid(), signal.SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before
    assert not runner.interrupted()
    runner.check_interrupted("next job")  # a new job starts clean


def test_jobs_in_worker_threads_see_the_signal_through_check_interrupted() -> None:
    with runner.signal_guard(raise_in_main=False):
        runner.check_interrupted("bake of web on aws")  # nothing yet
        os.kill(os.getpid(), signal.SIGTERM)
        assert runner.interrupted()  # noted, not raised: the main thread schedules the workers
        with pytest.raises(Interrupted) as caught:
            runner.check_interrupted("bake of web on aws")
        assert (caught.value.message, caught.value.exit_code) == ("bake of web on aws: interrupted", 143)
        with pytest.raises(Interrupted, match="packer build not started: interrupted"):
            runner.run(py("print('never')"), what="packer build")


# --- cleanup after an interrupt ------------------------------------------------------------------


def test_a_signal_during_cleanup_warns_and_the_next_abandons_it() -> None:
    warnings: list[str] = []
    steps: list[str] = []
    with pytest.raises(Interrupted) as caught, runner.signal_guard():
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # stops the job
            steps.append("job went on")
        finally:
            with runner.cleanup_phase(lambda: "eu-west-1:ami-0abc", warnings.append):
                steps.append("cleanup started")
                os.kill(os.getpid(), signal.SIGINT)  # second: a warning, the cleanup goes on
                steps.append("cleanup went on")
                os.kill(os.getpid(), signal.SIGINT)  # third: abandoned
                steps.append("cleanup finished")
    assert steps == ["cleanup started", "cleanup went on"]
    assert warnings == [
        "cleanup is under way; stopping it now would leave behind: eu-west-1:ami-0abc. "
        "Press Ctrl-C (or send the signal) again to abandon the cleanup."
    ]
    error = caught.value
    assert error.message == "cleanup abandoned; left behind: eu-west-1:ami-0abc"
    assert error.exit_code == 143  # the signal that stopped the job
    assert error.hint == "the next bake of this image on this target removes what a dead bake left"


def test_a_cleanup_that_finishes_after_one_warning_ends_with_the_first_interrupt() -> None:
    warnings: list[str] = []
    with pytest.raises(Interrupted) as caught, runner.signal_guard():
        try:
            os.kill(os.getpid(), signal.SIGHUP)
        finally:
            with runner.cleanup_phase(lambda: "nothing", warnings.append):
                os.kill(os.getpid(), signal.SIGINT)
    assert len(warnings) == 1
    assert (caught.value.message, caught.value.exit_code) == ("interrupted by signal SIGHUP", 129)


def test_cleanup_phase_outside_a_guarded_job_changes_nothing() -> None:
    with runner.cleanup_phase(lambda: "x", lambda text: pytest.fail(text)):
        pass


@pytest.mark.parametrize(("signum", "code"), [(2, 130), (15, 143), (1, 129), (0, 130)])
def test_exit_codes_are_128_plus_the_signal(signum: int, code: int) -> None:
    assert runner.exit_code_for(signum) == code


# --- long-lived children -------------------------------------------------------------------------


def test_a_background_child_runs_until_stopped(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    vm = runner.start(py("import time; print('booted', flush=True); time.sleep(60)"), what="vm", log_path=log)
    try:
        assert wait_for(lambda: "booted" in log.read_text())  # its output goes to its log
        assert vm.alive()
    finally:
        vm.stop(grace=2)
    assert not vm.alive()
