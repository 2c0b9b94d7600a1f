"""Rollout plans by equality: waves, checkpoints and healthy percentages for each strategy."""

from __future__ import annotations

import itertools

import pytest

from bakery.config.models import Strategy
from bakery.groups.strategy import RolloutPlan, Wave, count_of, describe, plan


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [(1, 4, 1), (3, 2, 2), ("25%", 8, 2), ("25%", 5, 2), ("1%", 3, 1), ("100%", 7, 7), (2, 0, 0)],
)
def test_counts_round_up_and_stay_within_the_group(value: int | str, size: int, expected: int) -> None:
    assert count_of(value, size) == expected


def test_rolling_moves_one_batch_at_a_time_without_losing_capacity() -> None:
    assert plan(Strategy(type="rolling", batch_size=2, pause_seconds=5), 5) == RolloutPlan(
        strategy="rolling",
        size=5,
        waves=(
            Wave(0, "batch", 2, 2, 40, 5),
            Wave(1, "batch", 2, 4, 80, 5),
            Wave(2, "batch", 1, 5, 100, 0),
        ),
        checkpoints=(100,),
        min_healthy_percentage=100,
        max_healthy_percentage=140,
        surge=2,
    )


def test_canary_holds_its_canary_then_follows_in_batches_with_a_checkpoint_per_wave() -> None:
    assert plan(Strategy(type="canary", canary_size=1, batch_size="50%", bake_seconds=120), 4) == RolloutPlan(
        strategy="canary",
        size=4,
        waves=(
            Wave(0, "canary", 1, 1, 25, 120),
            Wave(1, "batch", 2, 3, 75, 0),
            Wave(2, "batch", 1, 4, 100, 0),
        ),
        checkpoints=(25, 75, 100),
        min_healthy_percentage=100,
        max_healthy_percentage=150,
        surge=2,
    )


def test_a_canary_as_big_as_the_group_is_one_wave() -> None:
    p = plan(Strategy(type="canary", canary_size="100%", bake_seconds=60), 2)
    assert p.waves == (Wave(0, "canary", 2, 2, 100, 60),)  # still held: the canary is the whole rollout
    assert p.checkpoints == (100,)


def test_blue_green_starts_a_whole_second_group() -> None:
    p = plan(Strategy(type="blue-green", bake_seconds=30), 3)
    assert p.waves == (Wave(0, "all", 3, 3, 100, 0),)
    assert (p.surge, p.max_healthy_percentage, p.min_healthy_percentage) == (3, 200, 100)


def test_the_groups_own_percentages_win() -> None:
    p = plan(Strategy(type="rolling", batch_size=1), 10, min_healthy=90, max_healthy=110)
    assert (p.min_healthy_percentage, p.max_healthy_percentage) == (90, 110)
    assert [w.count for w in p.waves] == [1] * 10


def test_an_empty_group_has_nothing_to_move() -> None:
    assert plan(Strategy(type="canary"), 0).waves == ()


def test_percentages_increase_strictly_even_in_a_large_group() -> None:
    p = plan(Strategy(type="canary", canary_size=1, batch_size=1), 300)
    percents = [w.percent for w in p.waves]
    assert percents[0] == 1 and percents[-1] == 100
    assert all(a <= b for a, b in itertools.pairwise(percents))


def test_the_plan_reads_as_lines() -> None:
    assert describe(plan(Strategy(type="canary", canary_size=1, batch_size=1, bake_seconds=10), 2)) == [
        "wave 1 (canary): 1 instance(s) -> 1/2 (50%), then hold 10s with the gate green",
        "wave 2 (batch): 1 instance(s) -> 2/2 (100%)",
    ]
