"""The Compute Engine API as bakery uses it: calls with timeouts, changes followed to DONE, and
every error the client raises as bakery's one-line ProviderError.

google-cloud-compute's REST transport lets through, besides api-core's GoogleAPICallError (an
error status; for an HTML page from a proxy, the whole page is its message), api-core's
RetryError, google-auth's errors, the requests errors below it (connection refused or reset,
timeouts, an answer cut off) and protobuf's ParseError for a body that is not the API's JSON.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from bakery.errors import OperationFailed, ProviderError
from bakery.progress import Reporter

_NETWORK_HINT = "check the endpoint (the target's endpoint, BAKERY_GCP_ENDPOINT) and the network"
_HTML = re.compile(r"<\s*(!doctype|html|head|body|title)\b", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


# The services bakery uses, for images (the provider) and for managed instance groups (the driver).
_CLIENTS = {
    "images": "ImagesClient",
    "globalOperations": "GlobalOperationsClient",
    "zoneOperations": "ZoneOperationsClient",
    "regionOperations": "RegionOperationsClient",
    "instanceTemplates": "InstanceTemplatesClient",
    "regionInstanceTemplates": "RegionInstanceTemplatesClient",
    "instanceGroupManagers": "InstanceGroupManagersClient",
    "regionInstanceGroupManagers": "RegionInstanceGroupManagersClient",
    "backendServices": "BackendServicesClient",
    "instances": "InstancesClient",  # image tests' instances (bakery.imagetest.gcp), prune's look at use
    "disks": "DisksClient",  # the image each instance's disks were made from (prune)
}


def default_clients(service: str, project: str, endpoint: str | None) -> Any:
    """The google-cloud-compute client for `service` (a key of _CLIENTS), over REST, at
    `endpoint` (else Google's). Anonymous on a plain-HTTP loopback endpoint (the fake server)."""
    from google.cloud import compute_v1

    if service not in _CLIENTS:  # a bug in bakery, not a cloud's answer: not a ProviderError
        raise LookupError(f"no GCP client for service {service!r} (known: {', '.join(_CLIENTS)})")
    make_client = getattr(compute_v1, _CLIENTS[service])
    options = {"api_endpoint": endpoint} if endpoint else None
    where = urlsplit(endpoint or "")
    if where.scheme == "http" and where.hostname in ("127.0.0.1", "localhost", "::1"):
        from google.auth.credentials import AnonymousCredentials

        return make_client(
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            transport="rest",
            client_options=options,
        )
    return make_client(transport="rest", client_options=options)


def pause(seconds: float) -> None:
    """Wait between attempts and polls (a signal's Interrupted breaks out of it)."""
    time.sleep(seconds)


def one_line(text: object, limit: int = 160) -> str:
    """An SDK message as one short line: no HTML page, no traceback of causes, on the terminal."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    line = re.sub(r"\s+", " ", line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def api_error(exc: object) -> str:
    """'404 The resource ... was not found' from a GoogleAPICallError; for an error page (a proxy's
    or a load balancer's HTML), its status and title."""
    code = getattr(exc, "code", None)
    text = str(getattr(exc, "message", exc))
    text = re.sub(r"^[A-Z]+ \S+: ", "", text)  # api-core puts "GET <url>: " first
    if _HTML.search(text):
        title = _TITLE.search(text)
        text = "an HTML page, not the API's answer" + (f" ({one_line(title.group(1), 80)})" if title else "")
    return f"{code} {one_line(text)}" if code else one_line(text)


def _host(exc: BaseException) -> str:
    url = getattr(getattr(exc, "request", None), "url", None)
    return urlsplit(url).netloc if url else "the endpoint"


def network_error(exc: BaseException) -> str:
    """What went wrong on the wire, in a few words (requests' messages nest urllib3's reprs)."""
    import requests

    text, host = str(exc), _host(exc)
    if isinstance(exc, requests.Timeout):
        return f"{host} did not answer in time"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"the answer from {host} was cut off"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return f"the answer from {host} could not be decoded"
    if re.search(r"RemoteDisconnected|without response|Connection aborted", text):
        return f"{host} closed the connection without answering"
    if "Connection reset" in text:
        return f"{host} reset the connection"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return f"cannot reach {host}: {one_line(errno.group(1) if errno else text)}"


@contextlib.contextmanager
def gcp_errors(what: str) -> Iterator[None]:
    """Every error the client lets through as a one-line ProviderError ("GCP: <what>: <why>").
    bakery's own errors (Interrupted included) pass as they are."""
    import requests
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions
    from google.protobuf import json_format

    try:
        yield
    except exceptions.GoogleAPICallError as exc:
        raise ProviderError(f"GCP: {what}: {api_error(exc)}") from exc
    except exceptions.RetryError as exc:
        last = exc.cause
        if isinstance(last, exceptions.GoogleAPICallError):
            why = api_error(last)
        elif isinstance(last, OSError):
            why = network_error(last)
        else:
            why = one_line(last or exc)
        raise ProviderError(f"GCP: {what}: still failing after retries: {why}", hint=_NETWORK_HINT) from exc
    except auth_exceptions.GoogleAuthError as exc:
        raise ProviderError(
            f"GCP: {what}: {one_line(exc)}",
            hint="check GCP credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login)",
        ) from exc
    except (requests.RequestException, OSError) as exc:  # requests' errors are OSErrors too
        raise ProviderError(f"GCP: {what}: {network_error(exc)}", hint=_NETWORK_HINT) from exc
    except (json_format.Error, ValueError) as exc:  # an answer that is not the Compute API's JSON
        raise ProviderError(
            f"GCP: {what}: the endpoint's answer is not a Compute API answer ({one_line(exc, 100)})",
            hint=_NETWORK_HINT,
        ) from exc


class Compute:
    """The images and global operations APIs of one target: every call with a timeout and the
    retry policy, every change (setLabels, delete) followed to its operation's DONE through an
    operations client at the target's endpoint (the one an ExtendedOperation polls with is not),
    then read back. Raises ProviderError (SDK errors are mapped by the caller's gcp_errors)."""

    def __init__(
        self,
        images: Any,
        operations: Any,
        reporter: Reporter,
        *,
        timeout: float,
        retry: Any,
        operation_deadline: float,
        label_attempts: int = 6,
    ) -> None:
        self.images = images
        self.operations = operations
        self.reporter = reporter
        self.timeout = timeout
        self.retry = retry
        self.operation_deadline = operation_deadline
        self.label_attempts = label_attempts

    def get(self, project: str, name: str, *, what: str) -> Any:
        """The image; ProviderError naming `what` if it does not exist."""
        image = self.find(project, name)
        if image is None:
            raise ProviderError(f"GCP: {what} {project}/{name} does not exist (or these credentials cannot see it)")
        return image

    def find(self, project: str, name: str) -> Any | None:
        from google.api_core import exceptions

        try:
            return self.images.get(project=project, image=name, retry=self.retry, timeout=self.timeout)
        except exceptions.NotFound:
            return None

    def family(self, project: str, family: str) -> Any:
        from google.api_core import exceptions

        try:
            return self.images.get_from_family(project=project, family=family, retry=self.retry, timeout=self.timeout)
        except exceptions.NotFound:
            raise ProviderError(
                f"GCP: family {family} in {project} has no image (or these credentials cannot see it)",
                hint="check source.gcp in images.yaml",
            ) from None

    def list(self, project: str, flt: str, page_size: int = 500) -> list[Any]:
        """Every image of `project` that matches `flt`: one paginated call."""
        from google.cloud import compute_v1

        request = compute_v1.ListImagesRequest(project=project, filter=flt, max_results=page_size)
        return list(self.images.list(request=request, retry=self.retry, timeout=self.timeout))

    def relabel(self, project: str, name: str, change: Callable[[dict[str, str]], dict[str, str] | None]) -> Any:
        """Set the labels `change(current)` returns (None: leave them; it may raise to refuse) with
        the label fingerprint, wait for DONE, and read them back; returns the image as read back.

        Not retried blindly: after a throttle, a 5xx, a fingerprint race (412) or a failed
        operation, the labels are read again first (the failed attempt may have been applied) and
        only set if still wrong, with a fresh fingerprint; the attempts back off.
        """
        from google.api_core import exceptions
        from google.cloud import compute_v1

        delay = 0.5
        for _ in range(self.label_attempts):
            image = self.get(project, name, what="image")
            current = dict(image.labels)
            wanted = change(current)
            if wanted is None or wanted == current:
                return image
            body = compute_v1.GlobalSetLabelsRequest(labels=wanted, label_fingerprint=image.label_fingerprint)
            try:
                operation = self.images.set_labels_unary(
                    project=project,
                    resource=name,
                    global_set_labels_request_resource=body,
                    retry=None,
                    timeout=self.timeout,
                )
                self.wait(project, operation, what=f"labels of {project}/{name}")
            except (exceptions.PreconditionFailed, exceptions.TooManyRequests, exceptions.ServerError) as exc:
                self.reporter.note(f"labels of {project}/{name}: {exc.code} {type(exc).__name__}; reading them again")
            except OperationFailed as exc:
                self.reporter.note(f"{exc.message}; reading the labels again")
            else:
                continue  # done: read them back
            pause(delay * (0.5 + random.random()))
            delay = min(delay * 2, 8.0)
        raise ProviderError(f"GCP: labels of image {project}/{name} did not stick after {self.label_attempts} attempts")

    def deprecate(self, project: str, name: str, status: dict[str, str]) -> Any:
        """Set the image's deprecation status (state ACTIVE clears it), wait for DONE and read the
        image back (returned). The same status set twice is the same status: retried as a read."""
        from google.cloud import compute_v1

        operation = self.images.deprecate_unary(
            project=project,
            image=name,
            deprecation_status_resource=compute_v1.DeprecationStatus(**status),
            retry=self.retry,
            timeout=self.timeout,
        )
        self.wait(project, operation, what=f"deprecation of {project}/{name}")
        return self.get(project, name, what="image")

    def delete(self, project: str, name: str) -> bool:
        """Delete the image, wait for DONE and check it is gone: True; False if it was already gone."""
        from google.api_core import exceptions

        try:
            operation = self.images.delete_unary(project=project, image=name, retry=self.retry, timeout=self.timeout)
            self.wait(project, operation, what=f"deleting image {project}/{name}")
        except exceptions.NotFound:
            return False
        except OperationFailed as exc:
            if exc.status == 404:
                return False
            raise
        if self.find(project, name) is not None:
            raise ProviderError(f"GCP: image {project}/{name} is still there after its deletion was done")
        return True

    def wait(self, project: str, operation: Any, *, what: str) -> Any:
        """Poll `operation` until it is DONE (GCE makes the change only then), backing off.
        Raises OperationFailed if it finished with an error, ProviderError if it is not done
        within `operation_deadline` seconds."""
        from google.cloud import compute_v1

        deadline = time.monotonic() + self.operation_deadline
        delay = 0.2
        while operation.status != compute_v1.Operation.Status.DONE:
            if time.monotonic() + delay > deadline:
                raise ProviderError(
                    f"GCP: {what}: operation {operation.name} was not done after {self.operation_deadline:g}s",
                    hint=f"gcloud compute operations describe {operation.name} --global",
                )
            pause(delay)
            delay = min(delay * 2, 5.0)
            operation = self.operations.get(
                project=project, operation=operation.name, retry=self.retry, timeout=self.timeout
            )
        errors = list(operation.error.errors)
        if errors:
            status = int(operation.http_error_status_code) or None
            detail = "; ".join(one_line(f"{e.code}: {e.message}") for e in errors[:2])
            raise OperationFailed(f"GCP: {what}: {f'{status} ' if status else ''}{detail}", status=status)
        return operation
