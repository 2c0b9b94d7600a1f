"""The step engine: saved progress, resume after an interruption, failures recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakery import steps
from bakery.errors import BakeryError, Interrupted
from bakery.progress import Recording
from bakery.steps import Journal, Step


def test_a_run_saves_each_finished_step_and_the_facts_steps_keep(tmp_path: Path) -> None:
    ran: list[str] = []
    journal = Journal.create(tmp_path / "r.json", id="r-1")
    sequence = [
        Step("one", lambda j: (ran.append("one"), j.put("made", "lt-1:7"))),
        Step("two", lambda j: ran.append(f"two after {j.get('made')}")),
    ]
    steps.execute(sequence, journal, Recording())
    saved = json.loads((tmp_path / "r.json").read_text())
    assert ran == ["one", "two after lt-1:7"]
    assert saved["done"] == ["one", "two"] and saved["values"] == {"made": "lt-1:7"} and saved["current"] is None


def test_a_rerun_skips_what_finished_and_runs_the_interrupted_step_again(tmp_path: Path) -> None:
    attempts: list[str] = []
    stopped: list[str] = []

    def flaky(j: Journal) -> None:
        attempts.append("two")
        if attempts.count("two") == 1:
            raise Interrupted("interrupted by signal SIGINT", exit_code=130)

    sequence = [
        Step("one", lambda j: attempts.append("one")),
        Step("two", flaky, stop=lambda j: stopped.append("two")),
        Step("three", lambda j: attempts.append("three")),
    ]
    path = tmp_path / "r.json"
    with pytest.raises(Interrupted):
        steps.execute(sequence, Journal.create(path, id="r-1"), Recording())
    interrupted = Journal.load(path)
    assert interrupted is not None
    assert (interrupted.status, interrupted.done, interrupted.data["current"]) == ("interrupted", ["one"], "two")
    assert stopped == ["two"]
    steps.execute(sequence, interrupted, Recording())
    assert attempts == ["one", "two", "two", "three"]
    assert Journal.load(path).done == ["one", "two", "three"]  # type: ignore[union-attr]


def test_a_failed_step_is_recorded_with_its_message(tmp_path: Path) -> None:
    def fail(j: Journal) -> None:
        raise BakeryError("gate failed: web-local-2 answered 500")

    journal = Journal.create(tmp_path / "r.json", id="r-1")
    with pytest.raises(BakeryError):
        steps.execute([Step("gate", fail)], journal, Recording())
    saved = Journal.load(tmp_path / "r.json")
    assert saved is not None and saved.status == "failed"
    assert saved.data["error"] == "gate failed: web-local-2 answered 500"


def test_the_rollback_phase_starts_its_own_list_of_finished_steps(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "r.json", id="r-1")
    steps.execute([Step("boot", lambda j: None)], journal, Recording())
    steps.execute(
        [Step("boot", lambda j: None), Step("restore", lambda j: None)], journal, Recording(), phase="rollback"
    )
    assert (journal.data["phase"], journal.done) == ("rollback", ["boot", "restore"])


def test_a_damaged_state_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(BakeryError, match=r"cannot read the saved state .*r\.json"):
        Journal.load(tmp_path / "r.json")


def test_step_names_are_unique(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        steps.execute([Step("a", lambda j: None)] * 2, Journal.create(tmp_path / "r.json"), Recording())
