"""A traced bake (bakery/traces.py) on the fake provider: its span and one per step under the
caller's TRACEPARENT, the step that stopped it marked, and a collector that is down or packages
that are missing never stop it."""

from __future__ import annotations

import socket
import sys

import pytest

from bakery.errors import BakeryError
from tests.fakes.collector import CALLER_SPAN, CALLER_TRACE, Collector
from tests.unit.bake.conftest import World
from tests.unit.bake.test_service import _ctrl_c_while_recording, _packer_fails

STEPS = ["resolve", "render", "build", "verify", "record"]


def test_a_traced_bake_sends_its_span_and_one_per_step_under_the_callers_trace(
    world: World, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    world.packer.scenario(create=("region-a",))
    result = world.bake()

    (bake,) = collector.named("bake")
    assert (bake.trace_id, bake.parent_id) == (CALLER_TRACE, CALLER_SPAN)
    assert bake.service == "bakery"
    statement = result.record.extra["attestation"]  # the digest of its signed provenance, as the image carries it
    assert bake.attributes == {
        "bakery.image": "web",
        "bakery.target": "aws",
        "bakery.version": "1.0.0",
        "bakery.inputs_digest": result.inputs_digest,
        "bakery.provenance": statement,
        "bakery.outcome": "ok",
    }
    steps = [s for s in collector.spans if s.parent_id == bake.span_id]
    assert [s.name for s in steps] == STEPS  # in the order they ended
    for step in steps:
        assert step.trace_id == CALLER_TRACE
        assert step.attributes == {"bakery.phase": "forward", "bakery.outcome": "ok"}
        assert step.status == "UNSET"
    assert "traces" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("scenario", "stopped_in", "outcome", "message"),
    [
        (_packer_fails, "build", "failed", "packer build failed (exit 1)"),
        (_ctrl_c_while_recording, "record", "interrupted", "interrupted by signal SIGINT"),
    ],
)
def test_the_step_that_stopped_a_bake_says_how_in_its_span(
    world: World,
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
    scenario: object,
    stopped_in: str,
    outcome: str,
    message: str,
) -> None:
    scenario(world, monkeypatch)  # type: ignore[operator]
    with pytest.raises(BakeryError):
        world.bake()

    (bake,) = collector.named("bake")
    (stopped,) = collector.named(stopped_in)
    assert stopped.parent_id == bake.span_id
    assert (stopped.status, stopped.message, stopped.attributes["bakery.outcome"]) == ("ERROR", message, outcome)
    assert stopped.events == (("exception",) if outcome == "failed" else ())
    assert (bake.status, bake.message, bake.attributes["bakery.outcome"]) == ("ERROR", message, outcome)
    done = STEPS[: STEPS.index(stopped_in)]
    assert [s.name for s in collector.spans if s.attributes.get("bakery.outcome") == "ok"] == done


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_collector_that_is_down_costs_one_line_and_the_bake_succeeds(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    world.packer.scenario(create=("region-a",))

    assert world.bake().record.ref == "web@1.0.0"
    assert capsys.readouterr().err.splitlines() == [
        f"traces: the collector at {endpoint} did not take 6 span(s); going on without"
    ]


def test_missing_packages_are_said_once_and_bakes_go_on(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    world.packer.scenario(create=("region-a",))

    world.bake()
    world.bake(force=True)
    assert capsys.readouterr().err.splitlines() == [
        "traces: OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is missing; install bakery[traces]"
    ]
