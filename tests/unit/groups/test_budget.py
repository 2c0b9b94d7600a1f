"""The call budget of watching a group (bakery/groups/budget.py): at most 12 calls in any 60 s,
in simulated time (each wait moves the clock on)."""

from __future__ import annotations

import threading

import pytest

from bakery.errors import Interrupted
from bakery.groups.budget import CallBudget, Clock


class Simulated:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(now=lambda: self.now, sleep=self.sleep)


def test_calls_that_fit_in_the_minute_do_not_wait() -> None:
    time = Simulated()
    budget = CallBudget(time.clock())
    for _ in range(3):
        budget.take(4, "watching")
        time.now += 20.0  # production's interval for four calls a look
    assert time.slept == []
    assert budget.room() == 4  # the first look is a minute old


def test_a_look_that_would_overfill_the_minute_waits_until_the_oldest_calls_are_a_minute_old() -> None:
    time = Simulated()
    budget = CallBudget(time.clock())
    budget.take(4, "watching")  # t=0
    time.now = 20.0
    budget.take(4, "watching")
    time.now = 25.0
    budget.take(3, "a checkpoint's gate")  # 11 calls in the minute
    budget.take(3, "the gate's next look")  # would make 14: waits for the 4 calls made at t=0
    assert time.now == 60.0
    assert sum(time.slept) == 35.0 and max(time.slept) <= 1.0  # in slices, so that a signal stops it
    assert budget.room() == 12 - 10


def test_a_wait_for_room_stops_at_once_on_a_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    from bakery import runner

    time = Simulated()
    budget = CallBudget(time.clock())
    budget.take(12, "watching")
    signalled = threading.Event()
    signalled.set()  # as the signal handler does
    monkeypatch.setattr(runner, "_interrupted", signalled)
    with pytest.raises(Interrupted, match="watching instance refresh 1a2b: interrupted"):
        budget.take(1, "watching instance refresh 1a2b")
    assert time.slept == []


def test_a_budget_needs_room_for_one_call() -> None:
    with pytest.raises(ValueError, match="calls >= 1"):
        CallBudget(calls=0)


def test_under_bakery_poll_seconds_a_rollout_s_budget_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    time = Simulated()
    monkeypatch.setenv("BAKERY_POLL_SECONDS", "0.05")  # fakes that move in fractions of a second
    fast = CallBudget.for_rollout(time.clock())
    monkeypatch.delenv("BAKERY_POLL_SECONDS")
    paced = CallBudget.for_rollout(time.clock())
    for budget in (fast, paced):
        budget.take(12, "watching")
    fast.take(4, "watching")
    assert time.slept == []
    paced.take(4, "watching")
    assert time.now == 60.0
