"""What a rollout does after a forward step failed (bakery.rollout.decide): every case, by equality."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bakery.errors import (
    BakeryError,
    BuildError,
    ConfigError,
    GateFailed,
    ProviderError,
    RolloutRefused,
    TrustError,
    UsageError,
)
from bakery.rollout.decide import Failure, Outcome, classify, decide

ANY = object()
REFUSED, UNREACHABLE, GATE, STEP = Failure.REFUSED, Failure.UNREACHABLE, Failure.GATE, Failure.STEP
STOP, PAUSE, PAUSE_BARRED = Outcome.STOP, Outcome.PAUSE, Outcome.PAUSE_BARRED
FAIL, ROLL_BACK = Outcome.FAIL, Outcome.ROLL_BACK

# failure, moved, rollback (the group's policy), kind, previous_barred -> outcome. ANY: every value.
TABLE: list[tuple[Any, Any, Any, Any, Any, Outcome]] = [
    # refused before anything moved: nothing to undo, nothing to resume
    (REFUSED, False, ANY, ANY, ANY, STOP),
    # refused halfway (an image revoked meanwhile, the engine busy): paused, resumable or undone by hand
    (REFUSED, True, ANY, ANY, ANY, PAUSE),
    # the cloud could not be asked: paused whatever moved
    (UNREACHABLE, ANY, ANY, ANY, ANY, PAUSE),
    # a gate or a step failed: rolled back when the group wants it, onto an image still trusted
    (GATE, ANY, True, "rollout", False, ROLL_BACK),
    (STEP, ANY, True, "rollout", False, ROLL_BACK),
    (GATE, ANY, True, "rollout", True, PAUSE_BARRED),
    (STEP, ANY, True, "rollout", True, PAUSE_BARRED),
    # no rollback wanted, or a rollback that failed forward: failed, as it stands
    (GATE, ANY, False, ANY, ANY, FAIL),
    (STEP, ANY, False, ANY, ANY, FAIL),
    (GATE, ANY, True, "rollback", ANY, FAIL),
    (STEP, ANY, True, "rollback", ANY, FAIL),
]
DOMAINS: list[list[Any]] = [list(Failure), [False, True], [False, True], ["rollout", "rollback"], [False, True]]


def expanded() -> list[tuple[tuple[Any, ...], Outcome]]:
    cases = []
    for *row, outcome in TABLE:
        values = [domain if value is ANY else [value] for value, domain in zip(row, DOMAINS, strict=True)]
        cases += [(combo, outcome) for combo in itertools.product(*values)]
    return cases


def test_the_table_names_every_case_once() -> None:
    named = [combo for combo, _ in expanded()]
    assert sorted(named, key=repr) == sorted(itertools.product(*DOMAINS), key=repr)


@pytest.mark.parametrize(
    ("case", "expected"), expanded(), ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else v.value
)
def test_decide(case: tuple[Any, ...], expected: Outcome) -> None:
    failure, moved, rollback, kind, previous_barred = case
    assert decide(failure, moved=moved, rollback=rollback, kind=kind, previous_barred=previous_barred) == expected


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (RolloutRefused("busy"), REFUSED),
        (UsageError("no such image"), REFUSED),
        (ConfigError("bad group"), REFUSED),
        (ProviderError("throttled"), UNREACHABLE),
        (GateFailed("unhealthy"), GATE),
        (TrustError("revoked"), STEP),
        (BuildError("boom"), STEP),
        (BakeryError("anything else"), STEP),
    ],
)
def test_classify(error: BakeryError, failure: Failure) -> None:
    assert classify(error) == failure
