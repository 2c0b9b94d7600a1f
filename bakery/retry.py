"""Retries for cloud calls: throttling and 5xx answers, with exponential backoff and jitter.

boto3 and google-api-core each ship a well-tested retry engine; bakery configures them rather
than wrapping calls in a loop of its own. Creates are made idempotent instead of blindly retried:
an AMI copy carries a ClientToken, a GCP insert a requestId, so a retry of a create whose first
attempt did succeed returns that result instead of making a second resource.
"""

from __future__ import annotations

from typing import Any

AWS_MAX_ATTEMPTS = 6
GCP_DEADLINE_SECONDS = 120.0


def aws_config() -> Any:
    """botocore 'standard' retry mode: throttling (Throttling, RequestLimitExceeded, ...) and
    5xx/transient errors, exponential backoff with full jitter, up to AWS_MAX_ATTEMPTS tries."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": AWS_MAX_ATTEMPTS}, connect_timeout=10, read_timeout=60)


def gcp_retry(*, initial: float = 1.0, maximum: float = 30.0, deadline: float = GCP_DEADLINE_SECONDS) -> Any:
    """google-api-core Retry on 429 and 5xx with exponential backoff (jittered by api-core)."""
    from google.api_core import exceptions, retry

    predicate = retry.if_exception_type(
        exceptions.TooManyRequests,
        exceptions.InternalServerError,
        exceptions.BadGateway,
        exceptions.ServiceUnavailable,
        exceptions.GatewayTimeout,
    )
    return retry.Retry(predicate=predicate, initial=initial, maximum=maximum, multiplier=2.0, timeout=deadline)
