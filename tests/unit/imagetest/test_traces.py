"""A traced image test (bakery/traces.py) against the fake cloud and a stand-in instance: its span
under the caller's TRACEPARENT, with the image and the verdict, and one span per stage."""

from __future__ import annotations

from typing import Any

from tests.fakes.collector import CALLER_SPAN, CALLER_TRACE, Collector
from tests.unit.imagetest.test_service import make_tester


def test_a_traced_image_test_sends_its_verdict_and_a_span_per_stage(
    tested_world: Any, launcher: Any, page: Any, collector: Collector
) -> None:
    ref = tested_world.bake()
    page.answers["/healthz"] = (500, "broken")
    run = make_tester(tested_world, launcher).test(ref, "aws")
    assert not run.ok

    (test,) = collector.named("image-test")
    assert (test.trace_id, test.parent_id) == (CALLER_TRACE, CALLER_SPAN)
    name, version = ref.split("@")
    digest = next(r.inputs_digest for r in tested_world.fake.images("aws", name) if r.version == version)
    assert test.attributes == {
        "bakery.image": name,
        "bakery.version": version,
        "bakery.target": "aws",
        "bakery.inputs_digest": digest,
        "bakery.result": "failed",  # the image failed its tests; the job itself ran to its end
        "bakery.passed": 1,
        "bakery.failed": 1,
        "bakery.outcome": "ok",
    }
    stages = [(s.name, s.attributes["bakery.outcome"]) for s in collector.spans if s.parent_id == test.span_id]
    assert stages == [("launch", "ok"), ("run", "ok"), ("cleanup", "ok")]
