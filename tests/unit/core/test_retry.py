"""Retries for cloud calls (bakery/core/retry.py): what botocore and google-api-core are told, the
request timeout a user sets, and `eventually` for reads that are only eventually consistent."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions

from bakery.core import retry
from bakery.errors import UsageError


def test_aws_retries_throttling_in_standard_mode_within_the_request_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAKERY_REQUEST_TIMEOUT", raising=False)
    config = retry.aws_config()
    assert config.retries == {"mode": "standard", "max_attempts": 5}
    assert (config.connect_timeout, config.read_timeout) == (5, 20.0)


def test_a_short_request_timeout_shortens_the_connect_timeout_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKERY_REQUEST_TIMEOUT", "2.5")
    config = retry.aws_config()
    assert (config.connect_timeout, config.read_timeout) == (2.5, 2.5)
    monkeypatch.setenv("BAKERY_REQUEST_TIMEOUT", "90")
    assert (retry.aws_config().connect_timeout, retry.aws_config().read_timeout) == (5, 90.0)


@pytest.mark.parametrize(("raw", "seconds"), [("", 20.0), ("7", 7.0), ("0.5", 0.5), ("0", 20.0), ("-3", 20.0)])
def test_the_request_timeout_is_the_users_when_it_is_a_positive_number(
    monkeypatch: pytest.MonkeyPatch, raw: str, seconds: float
) -> None:
    monkeypatch.setenv("BAKERY_REQUEST_TIMEOUT", raw)
    assert retry.request_timeout() == seconds


def test_a_request_timeout_that_is_not_a_number_is_a_usage_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKERY_REQUEST_TIMEOUT", "20s")
    with pytest.raises(UsageError) as refused:
        retry.request_timeout()
    assert refused.value.message == "BAKERY_REQUEST_TIMEOUT must be a number of seconds, got '20s'"
    assert refused.value.exit_code == 2


def test_eventually_calls_again_until_nothing_is_left_to_do() -> None:
    left = [["tag-a", "tag-b"], ["tag-b"], []]
    calls: list[int] = []

    def attempt() -> list[str]:
        calls.append(1)
        return left[len(calls) - 1]

    assert retry.eventually(attempt, attempts=5, first_wait=0.001, max_wait=0.001) == []
    assert len(calls) == 3  # it stopped at the first empty answer


def test_eventually_gives_up_after_its_attempts_with_what_is_still_left() -> None:
    calls: list[int] = []

    def attempt() -> list[str]:
        calls.append(1)
        return ["tag-b"]

    assert retry.eventually(attempt, attempts=3, first_wait=0.001, max_wait=0.001) == ["tag-b"]
    assert len(calls) == 3


def test_eventually_lets_an_error_through_at_once() -> None:
    calls: list[int] = []

    def attempt() -> list[str]:
        calls.append(1)
        raise RuntimeError("AccessDenied")

    with pytest.raises(RuntimeError, match="AccessDenied"):
        retry.eventually(attempt, attempts=3, first_wait=0.001, max_wait=0.001)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "error",
    [
        exceptions.TooManyRequests("rate"),
        exceptions.InternalServerError("oops"),
        exceptions.BadGateway("502"),
        exceptions.ServiceUnavailable("503"),
        exceptions.GatewayTimeout("504"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_gcp_retries_throttling_and_5xx(error: Exception) -> None:
    assert retry.gcp_retry()._predicate(error)


@pytest.mark.parametrize(
    "error",
    [
        exceptions.NotFound("no such image"),
        exceptions.Forbidden("denied"),
        exceptions.Conflict("exists"),
        exceptions.BadRequest("bad"),
        requests.exceptions.ConnectionError("refused"),
        requests.exceptions.ReadTimeout("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_gcp_reports_client_errors_and_errors_on_the_wire_at_once(error: Exception) -> None:
    assert not retry.gcp_retry()._predicate(error)


def test_gcp_backs_off_exponentially_within_its_deadline() -> None:
    policy = retry.gcp_retry()
    assert (policy._initial, policy._maximum, policy._multiplier, policy._timeout) == (1.0, 16.0, 2.0, 60.0)
    shorter = retry.gcp_retry(initial=0.1, maximum=1.0, deadline=5.0)
    assert (shorter._initial, shorter._maximum, shorter._timeout) == (0.1, 1.0, 5.0)
