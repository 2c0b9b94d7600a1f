"""Rollout plans: which instances move in which wave, where the gates are. Pure, tested by equality.

Every driver reads the same plan: the local driver boots `wave.count` VMs per wave, the AWS driver
turns it into an instance refresh's preferences (CheckpointPercentages, Min/MaxHealthyPercentage),
the GCP driver into the MIG updater's versions and maxSurge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from bakery.config.models import Strategy

WaveKind = Literal["canary", "batch", "all"]


@dataclass(frozen=True)
class Wave:
    """One step of the move: `count` instances replaced, `total` on the new image after it."""

    index: int
    kind: WaveKind
    count: int
    total: int
    percent: int  # `total` as a whole percentage of the group (floor; the last wave is 100)
    hold_seconds: int  # the gate stays green this long before the next wave starts


@dataclass(frozen=True)
class RolloutPlan:
    strategy: str
    size: int
    waves: tuple[Wave, ...]
    # Cumulative percentages at which bakery's gate runs (AWS CheckpointPercentages): each wave's
    # percent, ending in 100. Rolling has no checkpoint: its gate is the health of every batch.
    checkpoints: tuple[int, ...]
    # How far capacity may move while instances are replaced (AWS Min/MaxHealthyPercentage): new
    # instances start before old ones stop, so the group never serves with less than its size.
    min_healthy_percentage: int
    max_healthy_percentage: int
    surge: int  # instances above `size` while a wave runs (a blue-green wave doubles the group)


def count_of(value: int | str, size: int) -> int:
    """3 -> 3, "25%" of 8 -> 2: a number of instances, rounded up, at least 1 and at most `size`."""
    wanted = math.ceil(int(value.rstrip("%")) * size / 100) if isinstance(value, str) else value
    return max(1, min(size, wanted)) if size else 0


def percent_of(total: int, size: int) -> int:
    return 100 if size == 0 or total >= size else max(1, total * 100 // size)


def plan(
    strategy: Strategy,
    size: int,
    *,
    min_healthy: int | None = None,
    max_healthy: int | None = None,
) -> RolloutPlan:
    """The plan for a group of `size` instances. `min_healthy`/`max_healthy` are the group's own
    percentages when it sets them (aws: min_healthy_percentage, max_healthy_percentage)."""
    waves: list[Wave] = []
    done = 0

    def add(kind: WaveKind, count: int, hold: int) -> None:
        nonlocal done
        count = min(count, size - done)
        if count <= 0:
            return
        done += count
        waves.append(Wave(len(waves), kind, count, done, percent_of(done, size), hold))

    if strategy.type == "blue-green":
        add("all", size, strategy.bake_seconds)
    else:
        if strategy.type == "canary":
            add("canary", count_of(strategy.canary_size, size), strategy.bake_seconds)
        batch = count_of(strategy.batch_size, size)
        while done < size:
            add("batch", batch, strategy.pause_seconds)
    if waves:  # nothing is held after the last batch: the rollout is over (a lone canary keeps its bake time)
        last = waves[-1]
        waves[-1] = Wave(
            last.index, last.kind, last.count, size, 100, last.hold_seconds if last.kind == "canary" else 0
        )
    surge = max((w.count for w in waves), default=0)
    checkpoints = tuple(dict.fromkeys(w.percent for w in waves)) if strategy.type == "canary" else (100,)
    step_percent = math.ceil(surge * 100 / size) if size else 0
    return RolloutPlan(
        strategy=strategy.type,
        size=size,
        waves=tuple(waves),
        checkpoints=checkpoints,
        min_healthy_percentage=100 if min_healthy is None else min_healthy,
        max_healthy_percentage=min(200, 100 + step_percent) if max_healthy is None else max_healthy,
        surge=surge,
    )


def describe(p: RolloutPlan) -> list[str]:
    """One line per wave, as the plan prints it."""
    lines = []
    for w in p.waves:
        hold = f", then hold {w.hold_seconds}s with the gate green" if w.hold_seconds else ""
        lines.append(f"wave {w.index + 1} ({w.kind}): {w.count} instance(s) -> {w.total}/{p.size} ({w.percent}%){hold}")
    return lines
