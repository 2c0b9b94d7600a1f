"""The HTTP health gate against a tiny loopback server that answers what each test scripts.

Time is a fake clock that each sleep moves on: the probes are real HTTP, the waits are not."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bakery.config.models import Health
from bakery.errors import GateFailed
from bakery.groups.health import Answer, Target, gate, hold, probe
from bakery.providers.local.boot import free_port
from tests.fakes.http_stand_in import serving


@dataclass
class Script:
    """What the server answers, one (status, body) per request; the last one repeats."""

    answers: list[tuple[int, str]]
    seen: list[str] = field(default_factory=list)

    def next(self, path: str) -> tuple[int, str]:
        self.seen.append(path)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def server() -> Iterator[tuple[int, Script]]:
    script = Script([(200, "ok")])
    with serving(script.next) as port:
        yield port, script


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def health(**changes: object) -> Health:
    values: dict[str, object] = {"path": "/healthz", "grace_seconds": 0, "timeout_seconds": 30, "healthy_threshold": 2}
    return Health(**{**values, **changes})


def test_probe_reads_the_status_and_the_first_line(server: tuple[int, Script]) -> None:
    port, script = server
    script.answers = [(500, "\n  broken web 1.0.2  \nsecond line\n")]
    assert probe(port, "/healthz") == Answer(500, "broken web 1.0.2")
    assert Answer(500, "broken web 1.0.2").describe() == "answered 500: broken web 1.0.2"
    assert script.seen == ["/healthz"]


def test_probe_of_a_closed_port() -> None:
    answer = probe(free_port(), "/healthz")
    assert answer == Answer(None, "connection refused")
    assert answer.describe() == "did not answer: connection refused"
    assert not answer.ok


def test_gate_passes_after_threshold_consecutive_200s(server: tuple[int, Script]) -> None:
    port, script = server
    script.answers = [(200, "ok"), (500, "warming up"), (200, "ok"), (200, "ok"), (500, "never asked")]
    time = FakeTime()
    gate([Target("vm-1", port)], health(interval_seconds=2), clock=time.clock, sleep=time.sleep)
    assert len(script.seen) == 4  # the 500 broke the first streak; two more 200s passed it
    # 200, an interval, 500, checked again half a second later: 200, an interval, 200
    assert time.slept == 2 + 0.5 + 2


def test_gate_sees_a_booting_instance_the_moment_it_answers(server: tuple[int, Script]) -> None:
    port, script = server
    script.answers = [(503, "booting")] * 5 + [(200, "ok")]
    time = FakeTime()
    gate([Target("vm-1", port)], health(interval_seconds=5, healthy_threshold=3), clock=time.clock, sleep=time.sleep)
    assert len(script.seen) == 8  # five misses, then three 200s
    assert time.slept == 5 * 0.5 + 2 * 5  # misses are checked again after 0.5 s; a streak's checks are 5 s apart


def test_gate_of_several_keeps_each_target_s_own_rhythm(server: tuple[int, Script]) -> None:
    port, script = server
    script.answers = [(200, "ok")]
    refused = free_port()
    time = FakeTime()
    with pytest.raises(GateFailed):
        gate(
            [Target("up", port), Target("down", refused)],
            health(interval_seconds=2, timeout_seconds=4),
            clock=time.clock,
            sleep=time.sleep,
        )
    assert len(script.seen) == 2  # the healthy one: two checks 2 s apart, then left alone
    assert 4 <= time.now - 1000 <= 4.5  # the refused one was retried every 0.5 s until the timeout


def test_gate_waits_the_grace_first(server: tuple[int, Script]) -> None:
    port, script = server
    time = FakeTime()
    gate([Target("vm-1", port)], health(grace_seconds=45, healthy_threshold=1), clock=time.clock, sleep=time.sleep)
    assert time.slept == 45
    assert len(script.seen) == 1


def test_gate_fails_on_timeout_naming_the_instance_and_its_answer(server: tuple[int, Script]) -> None:
    port, script = server
    script.answers = [(500, "broken web 1.0.2")]
    time = FakeTime()
    with pytest.raises(GateFailed) as failed:
        gate([Target("web-local-3 (web@1.0.2)", port)], health(timeout_seconds=10), clock=time.clock, sleep=time.sleep)
    assert failed.value.instance == "web-local-3 (web@1.0.2)"
    assert failed.value.answer == "answered 500: broken web 1.0.2"
    assert failed.value.message == (
        "web-local-3 (web@1.0.2) failed its health gate: GET /healthz answered 500: broken web 1.0.2 "
        "(wanted 2 consecutive 200s within 10s)"
    )
    assert 10 <= time.now - 1000 <= 12  # gave up once the timeout passed, not before


def test_gate_never_passes_on_alternating_answers(server: tuple[int, Script]) -> None:
    port, script = server
    script.answers = [(200, "ok"), (503, "busy")] * 20
    time = FakeTime()
    with pytest.raises(GateFailed) as failed:
        gate([Target("vm-1", port)], health(timeout_seconds=20), clock=time.clock, sleep=time.sleep)
    assert "vm-1 failed its health gate" in failed.value.message


def test_gate_reports_a_connection_refused() -> None:
    time = FakeTime()
    with pytest.raises(GateFailed) as failed:
        gate([Target("vm-2", free_port())], health(timeout_seconds=5), clock=time.clock, sleep=time.sleep)
    assert failed.value.answer == "did not answer: connection refused"
    assert "vm-2 failed its health gate: GET /healthz did not answer: connection refused" in failed.value.message


def test_gate_names_the_instance_that_failed_among_several(server: tuple[int, Script]) -> None:
    port, _script = server
    time = FakeTime()
    targets = [Target("good", port), Target("bad", free_port())]
    with pytest.raises(GateFailed) as failed:
        gate(targets, health(timeout_seconds=5), clock=time.clock, sleep=time.sleep)
    assert failed.value.instance == "bad"


def test_gate_fails_at_once_when_the_process_ended(server: tuple[int, Script]) -> None:
    port, script = server
    time = FakeTime()
    with pytest.raises(GateFailed) as failed:
        gate([Target("vm-1", port, alive=lambda: False)], health(), clock=time.clock, sleep=time.sleep)
    assert failed.value.message == "vm-1 stopped running before it passed its health gate"
    assert time.slept == 0 and script.seen == []


def test_hold_passes_while_every_answer_is_200(server: tuple[int, Script]) -> None:
    port, script = server
    time = FakeTime()
    hold([Target("vm-1", port)], health(interval_seconds=5), 20, clock=time.clock, sleep=time.sleep)
    assert len(script.seen) == 4
    assert time.slept == 20


def test_hold_forgives_one_miss_but_not_threshold_misses(server: tuple[int, Script]) -> None:
    port, script = server
    script.answers = [(200, "ok"), (500, "blip"), (200, "ok"), (500, "down"), (500, "down still")]
    time = FakeTime()
    with pytest.raises(GateFailed) as failed:
        hold([Target("vm-1", port)], health(interval_seconds=1), 60, clock=time.clock, sleep=time.sleep)
    assert failed.value.message == "vm-1 went unhealthy while held for 60s: GET /healthz answered 500: down still"
    assert len(script.seen) == 5
