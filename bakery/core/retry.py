"""Retries for cloud calls: throttling and 5xx answers, with exponential backoff and jitter.

boto3 and google-api-core each ship a well-tested retry engine; bakery configures them rather
than wrapping calls in a loop of its own. Creates are made idempotent instead of blindly retried:
an AMI copy carries a ClientToken, a GCP insert a requestId, so a retry of a create whose first
attempt did succeed returns that result instead of making a second resource.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

AWS_MAX_ATTEMPTS = 5
# A hanging endpoint costs at most connect + read timeout per attempt; Ctrl-C stops it at once.
AWS_CONNECT_TIMEOUT = 5
AWS_READ_TIMEOUT = 20
# A GCP call and its retries give up after this long (each call also has its own timeout).
GCP_DEADLINE_SECONDS = 60.0


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def aws_client(service: str, region: str | None, endpoint: str | None) -> Any:
    """A boto3 client configured with aws_config(), from a session of its own (credentials and
    configuration are resolved afresh, and sessions are not shared between threads) that shares
    one botocore data loader: the service models and endpoint data, megabytes of JSON, are parsed
    once per process instead of once per client (about 6 times cheaper each)."""
    import boto3
    import botocore.loaders
    import botocore.session

    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    session = boto3.session.Session(botocore_session=core)
    return session.client(service, region_name=region, endpoint_url=endpoint, config=aws_config())


def aws_config() -> Any:
    """botocore 'standard' retry mode: throttling (Throttling, RequestLimitExceeded, ...) and
    5xx/transient errors, exponential backoff with full jitter, up to AWS_MAX_ATTEMPTS tries."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": AWS_MAX_ATTEMPTS},
        connect_timeout=min(AWS_CONNECT_TIMEOUT, request_timeout()),
        read_timeout=request_timeout(),
    )


def request_timeout() -> float:
    """Seconds a cloud request may wait for an answer: $BAKERY_REQUEST_TIMEOUT (for slow private
    endpoints, or quick failures in tests), else AWS_READ_TIMEOUT."""
    raw = os.environ.get("BAKERY_REQUEST_TIMEOUT", "")
    try:
        value = float(raw) if raw else float(AWS_READ_TIMEOUT)
    except ValueError:
        from bakery.errors import UsageError

        raise UsageError(f"BAKERY_REQUEST_TIMEOUT must be a number of seconds, got {raw!r}") from None
    return value if value > 0 else float(AWS_READ_TIMEOUT)


def eventually(attempt: Callable[[], T], *, attempts: int, first_wait: float = 0.5, max_wait: float = 8.0) -> T:
    """Call `attempt` until it returns something falsy (nothing left to do), at most `attempts`
    times, backing off exponentially with jitter between calls (reads that are only eventually
    consistent, such as tags right after they were written). Returns the last result."""
    import tenacity

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_random_exponential(multiplier=first_wait, max=max_wait),
        retry=tenacity.retry_if_result(bool),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    result: T = retrying(attempt)
    return result


def gcp_retry(*, initial: float = 1.0, maximum: float = 16.0, deadline: float = GCP_DEADLINE_SECONDS) -> Any:
    """google-api-core Retry on 429 and 5xx with exponential backoff (jittered by api-core), for at
    most `deadline` seconds. Errors on the wire (refused, reset, timed out) are not retried: they
    are reported at once."""
    from google.api_core import exceptions, retry

    predicate = retry.if_exception_type(
        exceptions.TooManyRequests,
        exceptions.InternalServerError,
        exceptions.BadGateway,
        exceptions.ServiceUnavailable,
        exceptions.GatewayTimeout,
    )
    return retry.Retry(predicate=predicate, initial=initial, maximum=maximum, multiplier=2.0, timeout=deadline)
