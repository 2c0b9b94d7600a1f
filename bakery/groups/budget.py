"""The API call budget of watching a cloud group move: at most CALLS_PER_MINUTE calls in any
WINDOW_SECONDS, the gate's and the live view's reads included (the clouds' rate limits are shared
by every tool of the account, and a busy minute is what trips them, not the average).

A watch asks its rollout's budget for room before each look (`take`). Looks come at a poll
interval that spends the budget evenly; when a look would overfill the last minute (a checkpoint's
gate right after a look, a settle right after the last look), it waits until enough of the oldest
calls are a minute old. One budget serves every watch of one rollout, so that its watches, one
after another, share the minute too.

Time comes from a Clock, so that tests and the bench run production's intervals in simulated time.
$BAKERY_POLL_SECONDS (tests, fakes that move in fractions of a second) replaces production's pacing:
the poll intervals, and this budget.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bakery import runner
from bakery.errors import UsageError

CALLS_PER_MINUTE = 12
WINDOW_SECONDS = 60.0
# Waits are cut into slices this long, so that a signal stops them at once.
_SLICE_SECONDS = 1.0


def poll_override() -> float | None:
    """$BAKERY_POLL_SECONDS when set to a positive number of seconds, else None. UsageError when
    it is not a number."""
    raw = os.environ.get("BAKERY_POLL_SECONDS", "")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"BAKERY_POLL_SECONDS must be a number of seconds, got {raw!r}") from None
    return value if value > 0 else None


@dataclass(frozen=True)
class Clock:
    """Where a watch gets the time and waits: the monotonic clock and time.sleep, unless injected."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def wait(self, seconds: float, what: str) -> None:
        """Sleep `seconds` in short slices; Interrupted as soon as a signal arrives."""
        end = self.now() + seconds
        while (left := end - self.now()) > 0:
            runner.check_interrupted(what)
            self.sleep(min(left, _SLICE_SECONDS))


class CallBudget:
    """At most `calls` API calls in any `window` seconds, for the watches of one rollout."""

    def __init__(
        self, clock: Clock | None = None, *, calls: int = CALLS_PER_MINUTE, window: float = WINDOW_SECONDS
    ) -> None:
        if calls < 1 or window <= 0:
            raise ValueError(f"a call budget needs calls >= 1 and window > 0, not {calls} in {window}s")
        self.clock = clock or Clock()
        self.calls = calls
        self.window = window
        self._made: deque[float] = deque()
        self.paced = True

    @classmethod
    def for_rollout(cls, clock: Clock | None = None) -> CallBudget:
        """The budget of one rollout's watches; under $BAKERY_POLL_SECONDS, one that never waits."""
        budget = cls(clock)
        budget.paced = poll_override() is None
        return budget

    def _forget_old(self, now: float) -> None:
        while self._made and self._made[0] <= now - self.window:
            self._made.popleft()

    def room(self) -> int:
        """How many calls fit in the window now."""
        self._forget_old(self.clock.now())
        return self.calls - len(self._made)

    def wait_for_room(self, calls: int, what: str) -> None:
        """Wait until `calls` more calls fit in the window (at most the whole budget)."""
        wanted = min(calls, self.calls)
        while self.paced:
            now = self.clock.now()
            self._forget_old(now)
            over = len(self._made) + wanted - self.calls
            if over <= 0:
                return
            # The window has room once the `over` oldest calls are a window old.
            self.clock.wait(self._made[over - 1] + self.window - now, what)

    def take(self, calls: int, what: str) -> None:
        """Wait for room, then count `calls` calls as made now."""
        self.wait_for_room(calls, what)
        self.spent(calls)

    def spent(self, calls: int) -> None:
        """Count `calls` calls as made now, without waiting (room was made for them before)."""
        now = self.clock.now()
        self._made.extend([now] * calls)
