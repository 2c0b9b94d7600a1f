"""OpenTelemetry traces of long jobs (bakes, image tests, rollouts), off unless asked for.

With OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, every job is a span
(`job`) and every step of it a child span (`step`), sent over OTLP/HTTP. A job's parent is the span
open around it, else the W3C `TRACEPARENT` (and `TRACESTATE`) of the environment, so a CI pipeline's
trace holds the bake it started. Without the variable nothing of OpenTelemetry is imported.

Sending never stops or stalls a command: the exporter gives up after a few seconds, a collector
that does not answer is said once on stderr, and so are missing packages (the `traces` extra).
"""

from __future__ import annotations

import atexit
import contextvars
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bakery.errors import Interrupted

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
EXPORT_SECONDS = 3.0  # one export, retries included: a collector that is down costs this much, once per flush
PREFIX = "bakery."

OK, FAILED, INTERRUPTED = "ok", "failed", "interrupted"

Attribute = str | int | float | bool | None

_job: contextvars.ContextVar[Span | None] = contextvars.ContextVar("bakery_job_span", default=None)
_lock = threading.Lock()
_said: set[str] = set()  # what was already said on stderr: each once per process
_providers: dict[str, TracerProvider] = {}  # per endpoint (tests change it; a command sets it once)


def endpoint() -> str | None:
    """The collector traces go to, or None: tracing is off."""
    return next((os.environ[name] for name in ENDPOINTS if os.environ.get(name)), None)


@contextmanager
def job(name: str, **attributes: Attribute) -> Iterator[None]:
    """A span around one job (`bake`, `image-test`, `rollout`, `rollback`): its attributes as
    `bakery.KEY` (None values left out), its outcome ok / failed / interrupted. Sent when it ends."""
    provider = _provider()
    if provider is None:
        yield
        return
    tracer = provider.get_tracer("bakery")
    try:
        with tracer.start_as_current_span(
            name,
            context=_parent(),
            attributes=_named(attributes),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            token = _job.set(span)
            try:
                with _outcome(span):
                    yield
            finally:
                _job.reset(token)
    finally:
        if _job.get() is None:  # the outermost job: send now, while the command still waits for it
            provider.force_flush(int(EXPORT_SECONDS * 1000))


@contextmanager
def step(name: str, **attributes: Attribute) -> Iterator[None]:
    """A span around one step: a child of the job under way (else of TRACEPARENT)."""
    provider = _provider()
    if provider is None:
        yield
        return
    tracer = provider.get_tracer("bakery")
    with (
        tracer.start_as_current_span(
            name,
            context=_parent(),
            attributes=_named(attributes),
            record_exception=False,
            set_status_on_exception=False,
        ) as span,
        _outcome(span),
    ):
        yield


def annotate(**attributes: Attribute) -> None:
    """Add what a job learns on its way (its version, its digest) to the job's span, if traced."""
    span = _job.get()
    if span is not None:
        span.set_attributes(_named(attributes))


@contextmanager
def _outcome(span: Span) -> Iterator[None]:
    from opentelemetry.trace import Status, StatusCode

    try:
        yield
    except (Interrupted, KeyboardInterrupt) as exc:  # KeyboardInterrupt: the signal guard's own stop
        span.set_attribute(PREFIX + "outcome", INTERRUPTED)
        span.set_status(Status(StatusCode.ERROR, getattr(exc, "message", None) or "interrupted"))
        raise
    except BaseException as exc:  # recorded and raised again, whatever it is
        span.set_attribute(PREFIX + "outcome", FAILED)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"))
        raise
    span.set_attribute(PREFIX + "outcome", OK)


def _named(attributes: dict[str, Attribute]) -> dict[str, str | int | float | bool]:
    return {PREFIX + key: value for key, value in attributes.items() if value is not None}


def _parent() -> Any:
    """None (the span open now is the parent), else the context TRACEPARENT names (W3C trace
    context), else None again: a new trace."""
    from opentelemetry.trace import get_current_span

    if get_current_span().get_span_context().is_valid:
        return None
    carrier = {key.lower(): os.environ[key] for key in ("TRACEPARENT", "TRACESTATE") if os.environ.get(key)}
    if not carrier:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(carrier)  # an invalid one is ignored: a new trace


def _say(line: str) -> None:
    if line not in _said:
        _said.add(line)
        print(line, file=sys.stderr)


def _provider() -> TracerProvider | None:
    """The tracer provider sending to the endpoint set now (made once per endpoint), or None."""
    url = endpoint()
    if url is None:
        return None
    with _lock:
        if url in _providers:
            return _providers[url]
        try:
            made = _start()
        except ImportError:
            _say("traces: OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is missing; install bakery[traces]")
            return None
        for old in _providers.values():
            old.shutdown()
        _providers.clear()
        _providers[url] = made
        return made


def _start() -> TracerProvider:
    """A provider batching spans to the OTLP/HTTP exporter (which reads the OTEL_EXPORTER_OTLP_*
    variables), shut down (bounded) when the process exits. ImportError without the packages."""
    import logging

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Exporter(SpanExporter):
        """The OTLP exporter, saying once on stderr when the collector does not take the spans
        (instead of the SDK's log lines, one per retry)."""

        def __init__(self) -> None:
            self.inner = OTLPSpanExporter(timeout=EXPORT_SECONDS)

        def export(self, spans: Any) -> SpanExportResult:
            batch: list[ReadableSpan] = list(spans)
            result = self.inner.export(batch)
            if result is not SpanExportResult.SUCCESS:
                _say(f"traces: the collector at {endpoint()} did not take {len(batch)} span(s); going on without")
            return result

        def shutdown(self) -> None:
            self.inner.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self.inner.force_flush(timeout_millis)

    # The SDK logs every failed attempt; the exporter above says it once. A configured root
    # logger (bakery -v) still gets them.
    logging.getLogger("opentelemetry").addHandler(logging.NullHandler())
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "bakery"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(Exporter(), export_timeout_millis=int(EXPORT_SECONDS * 1000)))
    atexit.register(provider.shutdown)
    return provider
