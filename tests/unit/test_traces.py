"""bakery/traces.py off: without OTEL_EXPORTER_OTLP_ENDPOINT, running a job and its steps imports
nothing of OpenTelemetry; the same program with it set imports it and sends its spans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.collector import Collector

# A job and a step on the step engine, in a fresh Python: which OpenTelemetry modules running them
# imported. (google-api-core, under the KMS signer, probes for its own instrumentation on import.)
PROGRAM = """
import json, sys
from pathlib import Path
from bakery import steps, traces
from bakery.bake import service as bake
from bakery.imagetest import service as imagetest
from bakery.progress import Recording
from bakery.rollout import service as rollout

before = set(sys.modules)
with traces.job("bake", image="web"):
    journal = steps.Journal.create(Path(sys.argv[1]) / "journal.json")
    steps.execute([steps.Step("one", lambda j: None)], journal, Recording())
    traces.annotate(version="1.0.0")
print(json.dumps(sorted(m for m in set(sys.modules) - before if m.split(".")[0] == "opentelemetry")))
"""


def _imported(tmp_path: Path, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "TRACEPARENT"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stderr == ""
    return list(json.loads(done.stdout))


def test_without_the_endpoint_nothing_of_opentelemetry_is_imported(tmp_path: Path) -> None:
    assert _imported(tmp_path) == []
    with Collector().serving() as collector:  # the same program with it set: imports it, and sends
        assert "opentelemetry.sdk.trace" in _imported(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint)
        assert [s.name for s in collector.spans] == ["one", "bake"]
