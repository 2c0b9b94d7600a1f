"""The HTTP health gate: an instance passes when GET `path` answers 200 `healthy_threshold` times
in a row within `timeout_seconds`, checked from `grace_seconds` on; a hold keeps checking passed
instances for a while and fails when one of them stops answering 200.

Drivers that check instances themselves (the local group, behind HAProxy) use it; probes go to
127.0.0.1 only. A failure raises GateFailed naming the instance and what it answered: the status
code and the first line of the body, or why there was no answer.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bakery import runner
from bakery.config.models import Health
from bakery.errors import GateFailed

PROBE_TIMEOUT_SECONDS = 3.0
# How soon a check that got no 200 is repeated (at most the group's interval): a booting VM
# answers at a moment no interval is aligned with, and each second it waits unseen is a second
# of the rollout.
RETRY_SECONDS = 0.5
SHOWN_BODY_CHARS = 120

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Answer:
    """What one GET got: an HTTP status and the body's first line, or why there was none."""

    status: int | None
    text: str

    @property
    def ok(self) -> bool:
        return self.status == 200

    def describe(self) -> str:
        if self.status is None:
            return f"did not answer: {self.text}"
        return f"answered {self.status}" + (f": {self.text}" if self.text else "")


@dataclass(frozen=True)
class Target:
    """One instance to check: its name as the user knows it, and the loopback port of its check."""

    name: str
    port: int
    alive: Callable[[], bool] = field(default=lambda: True)


def probe(port: int, path: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> Answer:
    """GET http://127.0.0.1:`port``path` once. Never raises for what the instance does."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close", "User-Agent": "bakery-health"})
        response = conn.getresponse()
        body = response.read(4096).decode("utf-8", "replace")
        first = next((line.strip() for line in body.splitlines() if line.strip()), "")
        return Answer(response.status, first[:SHOWN_BODY_CHARS])
    except ConnectionRefusedError:
        return Answer(None, "connection refused")
    except TimeoutError:
        return Answer(None, f"no answer within {timeout:g}s")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return Answer(None, "the connection was closed without an answer")
    except http.client.HTTPException as exc:
        return Answer(None, f"not an HTTP answer ({type(exc).__name__})")
    except OSError as exc:
        return Answer(None, exc.strerror or str(exc))
    finally:
        conn.close()


def gate(
    targets: Sequence[Target],
    health: Health,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> None:
    """Wait `grace_seconds`, then check every target until each answered 200
    `healthy_threshold` times in a row, those answers `interval_seconds` apart. A target that
    has not answered 200 yet is checked again sooner (every RETRY_SECONDS, at most the interval):
    a booting instance is seen the moment it answers, while a streak still takes the declared
    interval between its checks. Raises GateFailed (the first target still failing, and its
    last answer) when `timeout_seconds` pass first, or at once when a target's process ended;
    Interrupted when a signal arrives."""
    if health.grace_seconds:
        _wait(health.grace_seconds, "health gate (grace)", clock, sleep)
    deadline = clock() + health.timeout_seconds
    streaks = {t.name: 0 for t in targets}
    due = {t.name: clock() for t in targets}
    last: dict[str, Answer] = {}
    retry = min(RETRY_SECONDS, health.interval_seconds)
    while True:
        for target in targets:
            if streaks[target.name] >= health.healthy_threshold or due[target.name] > clock():
                continue
            answer = _check(target, health)
            last[target.name] = answer
            streaks[target.name] = streaks[target.name] + 1 if answer.ok else 0
            due[target.name] = clock() + (health.interval_seconds if answer.ok else retry)
        failing = [t for t in targets if streaks[t.name] < health.healthy_threshold]
        if not failing:
            return
        if clock() >= deadline:
            target = failing[0]
            answer = last[target.name]
            raise GateFailed(
                f"{target.name} failed its health gate: GET {health.path} {answer.describe()} "
                f"(wanted {health.healthy_threshold} consecutive 200s within {health.timeout_seconds}s)",
                instance=target.name,
                answer=answer.describe(),
            )
        _wait(max(0.0, min(due[t.name] for t in failing) - clock()), "health gate", clock, sleep)


def hold(
    targets: Sequence[Target],
    health: Health,
    seconds: float,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> None:
    """Keep checking targets that passed their gate for `seconds`. Raises GateFailed when one
    fails `healthy_threshold` checks in a row (one lost answer is not a verdict), or at once
    when its process ended."""
    deadline = clock() + seconds
    misses = {t.name: 0 for t in targets}
    while clock() < deadline:
        _wait(min(health.interval_seconds, max(0.0, deadline - clock())), "hold", clock, sleep)
        for target in targets:
            answer = _check(target, health)
            misses[target.name] = 0 if answer.ok else misses[target.name] + 1
            if misses[target.name] >= health.healthy_threshold:
                raise GateFailed(
                    f"{target.name} went unhealthy while held for {seconds:g}s: GET {health.path} {answer.describe()}",
                    instance=target.name,
                    answer=answer.describe(),
                )


def _check(target: Target, health: Health) -> Answer:
    runner.check_interrupted(f"health check of {target.name}")
    if not target.alive():
        raise GateFailed(
            f"{target.name} stopped running before it passed its health gate",
            instance=target.name,
            answer="the process ended",
        )
    return probe(target.port, health.path)


def _wait(seconds: float, what: str, clock: Clock, sleep: Sleep) -> None:
    """Sleep in short slices, so that a signal stops the wait at once."""
    end = clock() + seconds
    while (left := end - clock()) > 0:
        runner.check_interrupted(what)
        sleep(min(left, 1.0))
