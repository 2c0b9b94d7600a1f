"""botocore's errors as bakery's: one line each, whatever the endpoint answered."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bakery.errors import ProviderError
from bakery.providers.base import guarded_by

# Deleting what is already gone is not an error (another cleanup got there first).
GONE = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound")


@contextlib.contextmanager
def unless_gone() -> Iterator[None]:
    """A delete of what is already gone (another cleanup got there first) is not an error."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in GONE:
            raise


def one_line(text: object, limit: int = 200) -> str:
    """An SDK message as one short line: an HTML error page must not flood the terminal."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """botocore's errors (no credentials, endpoint down or hanging, API refusals, answers that
    are not AWS's, such as a proxy's HTML page) as a one-line ProviderError."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or (f"HTTP {status}" if status else "")
        message = one_line(error.get("Message") or exc)
        raise ProviderError(f"AWS: {what}: {code} {message}".strip()) from exc
    except ResponseParserError as exc:
        raise ProviderError(
            f"AWS: {what}: the endpoint's answer is not an AWS API response ({one_line(exc, 120)})",
            hint="check the endpoint (AWS_ENDPOINT_URL, the target's endpoint) and any proxy in between",
        ) from exc
    except BotoCoreError as exc:
        raise ProviderError(f"AWS: {what}: {one_line(exc)}", hint="check AWS credentials, region and endpoint") from exc
    except OSError as exc:  # a connection reset below botocore's own wrapping
        raise ProviderError(f"AWS: {what}: {one_line(exc)}", hint="check the endpoint and the network") from exc


guarded = guarded_by(aws_errors)
