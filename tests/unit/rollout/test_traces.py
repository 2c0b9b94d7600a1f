"""A traced rollout (bakery/traces.py) through the CLI, against the in-memory group driver: its
span under the caller's TRACEPARENT, a span per forward and rollback step, the failed one marked."""

from __future__ import annotations

from typing import Any

from tests.fakes.collector import CALLER_SPAN, CALLER_TRACE, Collector
from tests.fakes.driver import FakeDriver


def test_a_rolled_back_rollout_shows_the_failed_step_and_the_rollback_steps(
    world: FakeDriver, bakery_cli: Any, collector: Collector
) -> None:
    world.bad.add("web@1.0.2")
    result = bakery_cli("rollout", "web-local", "--yes")
    assert result.exit_code == 1
    rollout_id = world.history("web-local", None, None)[-1].id  # type: ignore[arg-type]

    (rollout,) = collector.named("rollout")
    assert (rollout.trace_id, rollout.parent_id) == (CALLER_TRACE, CALLER_SPAN)
    assert rollout.attributes == {
        "bakery.group": "web-local",
        "bakery.rollout_id": rollout_id,
        "bakery.target": "local",
        "bakery.image": "web",
        "bakery.version": "1.0.2",
        "bakery.inputs_digest": "sha256:1.0.2",
        "bakery.outcome": "failed",
    }
    assert rollout.status == "ERROR" and "failed and was rolled back to web@1.0.0" in rollout.message
    steps = [s for s in collector.spans if s.parent_id == rollout.span_id]
    assert [(s.name, s.attributes["bakery.phase"], s.attributes["bakery.outcome"]) for s in steps] == [
        ("template", "forward", "ok"),
        ("wave-1", "forward", "failed"),
        ("restore", "rollback", "ok"),
    ]
    assert steps[1].message == "vm-3 answered GET /healthz -> 500 Internal Server Error"
