"""Production's time, simulated, for counting a watch's API calls per minute on the fakes.

The fakes move in fractions of a real second; production polls every 12 to 25 seconds. A
SimulatedClock, handed to a group driver, makes every wait of its watches move simulated time on
by the seconds asked (production's intervals, the call budget's waits), while really sleeping only
`scale` of them so that the fake groups move on between looks. A call is stamped with the
simulated time it was made at (`now()`): the calls themselves take no simulated time, which packs
them closer than production would, so a count per simulated minute is never below production's.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Sequence

from bakery.groups.budget import Clock


class SimulatedClock:
    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._now = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
        time.sleep(max(0.0, seconds) * self.scale)

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


def busiest_window(times: Sequence[float], window: float = 60.0) -> int:
    """The most calls made in any `window` seconds (a window starts at a call: [t, t + window))."""
    stamps = sorted(times)
    return max((bisect.bisect_left(stamps, t + window) - i for i, t in enumerate(stamps)), default=0)
