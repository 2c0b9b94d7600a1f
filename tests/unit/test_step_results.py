"""Steps hand on their results (bakery.steps.Results): each once, read back by its typed Handoff."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery import steps
from bakery.progress import Recording
from bakery.steps import Handoff, Journal, Results, Step

COUNT = Handoff[int]("count")
TEXT = Handoff[str]("text")


def test_each_step_reads_what_the_steps_before_it_handed_on(tmp_path: Path) -> None:
    results = Results()
    sequence = [
        Step("count", results.handing(COUNT, lambda _j: 3)),
        Step("text", results.handing(TEXT, lambda _j: "x" * results[COUNT])),
    ]
    steps.execute(sequence, Journal.create(tmp_path / "run.json"), Recording())
    assert results[TEXT] == "xxx"
    assert COUNT in results and Handoff[int]("other") not in results


def test_a_skipped_step_hands_on_nothing(tmp_path: Path) -> None:
    results = Results()
    sequence = [Step("count", results.handing(COUNT, lambda _j: 3), skip=lambda: True)]
    steps.execute(sequence, Journal.create(tmp_path / "run.json"), Recording())
    assert COUNT not in results
    with pytest.raises(LookupError, match="step count has handed on nothing yet"):
        results[COUNT]


def test_a_result_is_handed_on_once() -> None:
    results = Results()
    results.put(COUNT, 1)
    with pytest.raises(ValueError, match="step count handed on its result twice"):
        results.put(COUNT, 2)
    assert results[COUNT] == 1
