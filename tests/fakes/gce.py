"""A small fake of the Compute Engine v1 REST API (images, operations, and in tests/fakes/gce_groups.py
instance templates, managed instance groups and backend services), standard library only.

It serves exactly the paths the ``google-cloud-compute`` REST transport calls (see
``google/cloud/compute_v1/services/images/transports/rest_base.py`` and the ``global_operations``
transport)::

    GET    /compute/v1/projects/{project}/global/images                      list
    POST   /compute/v1/projects/{project}/global/images                      insert
    GET    /compute/v1/projects/{project}/global/images/{image}              get
    DELETE /compute/v1/projects/{project}/global/images/{image}              delete
    GET    /compute/v1/projects/{project}/global/images/family/{family}      getFromFamily
    POST   /compute/v1/projects/{project}/global/images/{image}/setLabels    setLabels
    POST   /compute/v1/projects/{project}/global/images/{image}/deprecate    deprecate
    GET    /compute/v1/projects/{project}/global/images/{image}/getIamPolicy getIamPolicy
    GET    /compute/v1/projects/{project}/global/operations/{operation}      globalOperations.get
    POST   /compute/v1/projects/{project}/global/operations/{operation}/wait globalOperations.wait
    GET    /compute/v1/projects/{project}/{zones|regions}/{where}/operations/{operation}[/wait]  (zonal, regional)

Operations behave as GCE's do: a mutating call answers with an Operation that is ``RUNNING``, and
the change takes effect only when the operation is ``DONE``, ``operation_delay`` seconds later
(0 by default: done by the next request). Until then a read shows the image as it was (an insert
shows it ``PENDING``, a delete ``DELETING``). ``globalOperations.wait`` blocks until the operation
is done, as GCE's does (up to its two minutes). Note that the ``ExtendedOperation`` an images
client returns polls through a GlobalOperationsClient that does NOT inherit ``client_options``
(it would talk to compute.googleapis.com): wait with :func:`global_operations_client` instead.

Faults to inject: an error status with Google's JSON body or an HTML page (:meth:`FakeGce.fail_next`),
an endpoint that does not answer (:meth:`FakeGce.hang_next`), a connection closed without an
answer (:meth:`FakeGce.drop_next`) or in the middle of one (:meth:`FakeGce.cut_next`), an operation
that finishes with an error (:meth:`FakeGce.fail_operation_next`). A request left hanging, or
dropped, can be accepted later (`until`: once an event is set, such as one that an `answered`
watcher sets when it sees another request answered): GCE making a change after its client gave up.

Usage::

    with FakeGce(operation_delay=1.0) as gce:
        gce.add_image("proj", "web-1", family="web", labels={"bakery-image": "web"})
        client = images_client(gce.endpoint)
        client.get(project="proj", image="web-1")
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import fnmatch
import hashlib
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from google.cloud import compute_v1

__all__ = ["FakeGce", "GceError", "global_operations_client", "images_client", "wait_done"]

JsonDict = dict[str, Any]

API_ROOT = "https://www.googleapis.com/compute/v1"
_PREFIX = "/compute/v1/projects/"
_NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_DEPRECATED_STATES = {"DEPRECATED", "OBSOLETE", "DELETED"}
_DEFAULT_REASONS = {
    400: "invalid",
    401: "required",
    403: "forbidden",
    404: "notFound",
    409: "alreadyExists",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
}
_DEFAULT_MESSAGES = {
    429: "Rate Limit Exceeded",
    500: "Internal Error",
    502: "Bad Gateway",
    503: "The service is currently unavailable.",
    504: "Deadline Exceeded",
}
# What a proxy or load balancer in front of an API answers: a page, not the API's JSON.
_HTML_PAGE = """<!DOCTYPE html>
<html lang=en>
  <meta charset=utf-8>
  <title>Error {status} (Server Error)!!1</title>
  <style>*{{margin:0;padding:0}}html{{font:15px/22px arial}}</style>
  <p><b>{status}.</b> <ins>That's an error.</ins>
  <p>The server encountered an error and could not complete your request.<p>Please try again in 30 seconds.
</html>
"""
# GCE's globalOperations.wait returns after at most two minutes, done or not.
WAIT_LIMIT = 120.0


def images_client(endpoint: str) -> compute_v1.ImagesClient:
    """A real ``ImagesClient`` (REST transport, anonymous credentials) pointed at ``endpoint``.

    ``endpoint`` keeps its ``http://`` scheme: the REST transport only prepends ``https://`` when the
    host has no scheme.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    return compute_v1.ImagesClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport="rest",
        client_options={"api_endpoint": endpoint},
    )


def global_operations_client(endpoint: str) -> compute_v1.GlobalOperationsClient:
    """A real ``GlobalOperationsClient`` pointed at ``endpoint`` (the images client's own one is not)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    return compute_v1.GlobalOperationsClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport="rest",
        client_options={"api_endpoint": endpoint},
    )


def wait_done(endpoint: str, project: str, operation: compute_v1.Operation) -> compute_v1.Operation:
    """Wait (globalOperations.wait, pointed at the fake) until ``operation`` is DONE; returns it."""
    from google.cloud import compute_v1

    ops = global_operations_client(endpoint)
    while operation.status != compute_v1.Operation.Status.DONE:
        operation = ops.wait(project=project, operation=operation.name, timeout=10)
    return operation


class GceError(Exception):
    """Raised by handlers; rendered as a Google-style JSON error body."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or _DEFAULT_REASONS.get(status, "backendError")

    def body(self) -> JsonDict:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            }
        }


@dataclass
class _FailRule:
    status: int
    remaining: int
    method: str | None
    path_contains: str | None
    mode: str = "json"  # json | html (an error page) | hang (no answer for `seconds`) | drop (close)
    seconds: float = 0.0
    message: str | None = None
    until: threading.Event | None = None  # hang: answer once set; drop: make the change once set
    on_arrival: Callable[[], None] | None = None
    routed: threading.Event | None = None  # set once the request's change is made (hang, drop)

    def matches(self, method: str, target: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_contains is None or self.path_contains in target


@dataclass
class _Pending:
    """An operation still RUNNING: `apply` makes its change when it is done, unless it fails;
    `undo` takes back what the request did at once (an insert's reserved name) when it fails."""

    op: JsonDict
    due: float  # time.monotonic() when it is done
    apply: Callable[[], None] | None
    error: GceError | None = None
    undo: Callable[[], None] | None = None


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    cut: bool = False  # send half of the body, then close the connection


class _Drop(Exception):
    """Close the connection without answering."""


# --------------------------------------------------------------------------------------------- filter


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<lp>\() | (?P<rp>\)) |
        (?P<op>!=|=|:|>=|<=|>|<|\beq\b|\bne\b) |
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*') |
        (?P<word>[^\s()=!:<>"']+)
    )""",
    re.VERBOSE,
)

_Pred = Callable[[JsonDict], bool]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise GceError(400, f"Invalid list filter expression: {text!r}", "invalid")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        # trailing whitespace
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _field(image: JsonDict, path: str) -> Any:
    cur: Any = image
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compare(field: str, op: str, literal: str) -> _Pred:
    def pred(image: JsonDict) -> bool:
        value = _field(image, field)
        if op == ":":
            if literal == "*":
                return value is not None
            if value is None:
                return False
            if isinstance(value, list):
                return any(fnmatch.fnmatchcase(_as_text(v), literal) for v in value)
            return fnmatch.fnmatchcase(_as_text(value), literal)
        if op in ("eq", "ne"):  # legacy regular-expression syntax: `name eq 'web-.*'`
            hit = value is not None and re.fullmatch(literal, _as_text(value)) is not None
            return hit if op == "eq" else not hit
        if op in ("=", "!="):
            hit = value is not None and fnmatch.fnmatchcase(_as_text(value), literal)
            return hit if op == "=" else not hit
        if value is None:
            return False
        left: Any = _as_text(value)
        right: Any = literal
        with contextlib.suppress(ValueError):
            left, right = float(left), float(right)
        return bool({">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op])

    return pred


class _FilterParser:
    """``expr := and_expr (OR and_expr)*``; ``and_expr := term ([AND] term)*``;
    ``term := [NOT|-] ( '(' expr ')' | field op literal )``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise GceError(400, f"Invalid list filter expression: {self.text!r}", "invalid")
        self.pos += 1
        return tok

    def parse(self) -> _Pred:
        pred = self._or()
        if self._peek() is not None:
            raise GceError(400, f"Invalid list filter expression: {self.text!r}", "invalid")
        return pred

    def _or(self) -> _Pred:
        parts = [self._and()]
        while self._peek() == ("word", "OR"):
            self._take()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda img: any(p(img) for p in parts))

    def _and(self) -> _Pred:
        parts = [self._term()]
        while True:
            tok = self._peek()
            if tok is None or tok[0] == "rp" or tok == ("word", "OR"):
                break
            if tok == ("word", "AND"):
                self._take()
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else (lambda img: all(p(img) for p in parts))

    def _term(self) -> _Pred:
        kind, value = self._take()
        if (kind, value) == ("word", "NOT") or (kind == "word" and value == "-"):
            inner = self._term()
            return lambda img: not inner(img)
        if kind == "word" and value.startswith("-") and len(value) > 1:
            self.pos -= 1
            self.tokens[self.pos] = ("word", value[1:])
            inner = self._term()
            return lambda img: not inner(img)
        if kind == "lp":
            inner = self._or()
            if self._take()[0] != "rp":
                raise GceError(400, f"Invalid list filter expression: {self.text!r}", "invalid")
            return inner
        if kind not in ("word", "str"):
            raise GceError(400, f"Invalid list filter expression: {self.text!r}", "invalid")
        op_kind, op = self._take()
        if op_kind != "op":
            raise GceError(400, f"Invalid list filter expression: {self.text!r}", "invalid")
        lit_kind, literal = self._take()
        if lit_kind not in ("word", "str"):
            raise GceError(400, f"Invalid list filter expression: {self.text!r}", "invalid")
        return _compare(value, op, literal)


def compile_filter(text: str) -> _Pred:
    """Compile a Compute list ``filter`` (``labels.k:*``, ``labels.k=v``, ``name=x``, AND/OR/spaces)."""
    if not text.strip():
        return lambda img: True
    return _FilterParser(text).parse()


# --------------------------------------------------------------------------------------------- server


class FakeGce:
    """A fake Compute Engine v1 REST endpoint on 127.0.0.1 (images + global operations)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, operation_delay: float = 0.0, mig_step: float = 0.0
    ) -> None:
        from tests.fakes.gce_groups import FakeGroups  # it imports this module's helpers

        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1_000_000_000_000_000_001)
        self._last_ts: dt.datetime | None = None
        self._fail_rules: list[_FailRule] = []
        self._operation_failures: list[tuple[str | None, GceError]] = []
        self._pending: list[_Pending] = []
        self._label_generation = itertools.count(1)
        self._request_ids: dict[str, JsonDict] = {}
        self._connections: set[socket.socket] = set()
        self._images: dict[str, dict[str, JsonDict]] = {}
        # An image's own IAM policy (getIamPolicy), by (project, image): share_image() sets it.
        self.iam_policies: dict[tuple[str, str], JsonDict] = {}
        self._operations: dict[str, dict[str, JsonDict]] = {}
        #: seconds from a mutating call to its operation being DONE (and its change made)
        self.operation_delay = operation_delay
        #: every request seen, as (METHOD, path+query), in arrival order, and when: `clock()` at arrival
        self.requests: list[tuple[str, str]] = []
        self.request_times: list[float] = []
        self.clock: Callable[[], float] = time.monotonic
        #: called with (METHOD, path+query, status) once each answer is made, before it is sent
        self.answered: list[Callable[[str, str, int], None]] = []
        #: seconds per tick of the managed instance groups (0: they move until still at each request)
        self.mig_step = mig_step
        self._mig_clock: Callable[[], float] = time.monotonic
        #: instance templates, managed instance groups, backend services (their test API too)
        self.groups = FakeGroups(self)

    @property
    def images(self) -> dict[str, dict[str, JsonDict]]:
        """Stored state: project -> image name -> image JSON, as of now (live objects; mutate with care)."""
        self.settle()
        return self._images

    @property
    def operations(self) -> dict[str, dict[str, JsonDict]]:
        """project -> operation name -> operation JSON, as of now."""
        self.settle()
        return self._operations

    # ----------------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeGce:
        if self._server is not None:
            return self
        fake = self

        class Handler(_Handler):
            gce = fake

        self._stopping.clear()
        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True, name="fake-gce"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._stopping.set()  # ends hanging answers and waits
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:  # end idle keep-alive connections so their handler threads exit
            connections, self._connections = set(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeGce:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeGce is not started")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{self._host}:{self.port}"

    # ----------------------------------------------------------------------------------- test API

    def count(self, method: str, path_prefix: str = "") -> int:
        """How many recorded requests had this method and a path(+query) starting with ``path_prefix``."""
        method = method.upper()
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))

    def set_labels_calls(self, project: str, image: str) -> int:
        """How many setLabels requests image ``project/image`` received (failed ones included)."""
        return self.count("POST", f"{_PREFIX}{project}/global/images/{image}/setLabels")

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.request_times.clear()

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        html: bool = False,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and a Google-style error body
        (with ``message``), or with ``html``, the HTML error page a proxy or load balancer sends."""
        with self._lock:
            rule = _FailRule(status, times, method, path_contains, "html" if html else "json", message=message)
            self._fail_rules.append(rule)

    def hang_next(
        self,
        seconds: float = 3600.0,
        times: int = 1,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        until: threading.Event | None = None,
        on_arrival: Callable[[], None] | None = None,
    ) -> threading.Event:
        """Leave the next ``times`` matching requests without an answer for ``seconds`` or until
        ``until`` is set (or the server stops), then make their change and answer them; call
        ``on_arrival`` when one arrives. Returns an event set once the change is made."""
        routed = threading.Event()
        with self._lock:
            rule = _FailRule(0, times, method, path_contains, "hang", seconds, until=until, on_arrival=on_arrival)
            rule.routed = routed
            self._fail_rules.append(rule)
        return routed

    def drop_next(
        self,
        times: int = 1,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        accept_when: threading.Event | None = None,
    ) -> threading.Event:
        """Close the connection of the next ``times`` matching requests without an answer; with
        ``accept_when``, make their change all the same once it is set. Returns an event set
        once the change is made."""
        routed = threading.Event()
        with self._lock:
            rule = _FailRule(0, times, method, path_contains, "drop", 3600.0, until=accept_when)
            rule.routed = routed
            self._fail_rules.append(rule)
        return routed

    def cut_next(self, times: int = 1, *, method: str | None = None, path_contains: str | None = None) -> None:
        """Answer the next ``times`` matching requests with half of their body, then close the connection."""
        with self._lock:
            self._fail_rules.append(_FailRule(0, times, method, path_contains, "cut"))

    def fail_operation_next(self, status: int, message: str, *, operation_type: str | None = None) -> None:
        """The next operation (of ``operation_type``: insert, delete, setLabels, deprecate) is accepted,
        then finishes DONE with this error, and its change is never made."""
        with self._lock:
            self._operation_failures.append((operation_type, GceError(status, message)))

    def pace_groups(self, clock: Callable[[], float], step: float) -> None:
        """Move the managed instance groups by `clock` (a simulated one makes their pace exact, however
        busy the machine is), a tick every `step` of its seconds, counted from now."""
        with self._lock:
            self.settle()
            self._mig_clock, self.mig_step = clock, step
            self.groups.restart_ticks()

    def finish_operations(self) -> None:
        """Wait until every operation now running is due, and finish them."""
        with self._lock:
            due = max((p.due for p in self._pending), default=0.0)
        time.sleep(max(0.0, due - time.monotonic()))
        self.settle()

    def settle(self) -> None:
        """Finish every operation whose time has come (every request does this first)."""
        with self._lock:
            now = time.monotonic()
            for pending in [p for p in self._pending if p.due <= now]:
                self._pending.remove(pending)
                self._finish(pending)
            self.groups.advance(self._mig_clock(), self.mig_step)

    def add_image(
        self,
        project: str,
        name: str,
        *,
        family: str | None = None,
        labels: dict[str, str] | None = None,
        description: str = "",
        status: str = "READY",
        creation_timestamp: str | dt.datetime | None = None,
    ) -> JsonDict:
        """Seed an image directly (no request recorded, no operation). Returns a copy of the stored JSON."""
        body: JsonDict = {"name": name, "description": description, "status": status}
        if family is not None:
            body["family"] = family
        if labels is not None:
            body["labels"] = dict(labels)
        if isinstance(creation_timestamp, dt.datetime):
            creation_timestamp = _rfc3339(creation_timestamp)
        with self._lock:
            self.settle()
            if name in self._images.get(project, {}):
                raise ValueError(f"image {project}/{name} already exists")
            image = self._make_image(project, body, creation_timestamp=creation_timestamp)
            return copy.deepcopy(image)

    def share_image(self, project: str, name: str, member: str, role: str = "roles/compute.imageUser") -> None:
        """Grant `member` ("user:a@example.com", "serviceAccount:...@other.iam.gserviceaccount.com")
        `role` on the image: shared beyond its project."""
        with self._lock:
            policy = self.iam_policies.setdefault((project, name), {"etag": "ACAB", "version": 1, "bindings": []})
            policy["bindings"].append({"role": role, "members": [member]})

    def image(self, project: str, name: str) -> JsonDict:
        with self._lock:
            self.settle()
            return copy.deepcopy(self._images[project][name])

    # ----------------------------------------------------------------------------------- internals

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _now(self) -> str:
        """A strictly increasing RFC 3339 timestamp (millisecond precision, UTC offset like GCP)."""
        now = dt.datetime.now(dt.UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_ts is not None and now <= self._last_ts:
            now = self._last_ts + dt.timedelta(milliseconds=1)
        self._last_ts = now
        return _rfc3339(now)

    def _fingerprint(self, labels: dict[str, str], *, initial: bool = False) -> str:
        """A new opaque fingerprint; it changes on every setLabels, even to the same labels."""
        if initial and not labels:
            return "42WmSpB8rSM="  # what GCP reports for a resource that never had labels
        raw = json.dumps([sorted(labels.items()), next(self._label_generation)]).encode()
        return base64.b64encode(hashlib.sha256(raw).digest()[:8]).decode()

    def _make_image(self, project: str, body: JsonDict, *, creation_timestamp: str | None = None) -> JsonDict:
        name = body.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise GceError(
                400,
                f"Invalid value for field 'resource.name': '{name}'. "
                "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
                "invalid",
            )
        project_images = self._images.setdefault(project, {})
        if name in project_images:
            raise GceError(409, f"The resource 'projects/{project}/global/images/{name}' already exists")
        labels = {str(k): str(v) for k, v in (body.get("labels") or {}).items()}
        image: JsonDict = {
            "kind": "compute#image",
            "id": self._next_id(),
            "creationTimestamp": creation_timestamp or self._now(),
            "name": name,
            "description": body.get("description", ""),
            "sourceType": body.get("sourceType", "RAW"),
            "status": body.get("status", "READY"),
            "archiveSizeBytes": str(body.get("archiveSizeBytes", 1_234_567_890)),
            "diskSizeGb": str(body.get("diskSizeGb", 10)),
            "selfLink": f"{API_ROOT}/projects/{project}/global/images/{name}",
            "labels": labels,
            "labelFingerprint": self._fingerprint(labels, initial=True),
            "storageLocations": body.get("storageLocations", ["us"]),
            "architecture": body.get("architecture", "X86_64"),
        }
        if not labels:
            del image["labels"]
        for key in (
            "family",
            "sourceDisk",
            "sourceImage",
            "sourceSnapshot",
            "rawDisk",
            "guestOsFeatures",
            "licenses",
            "deprecated",
        ):
            if body.get(key):
                image[key] = copy.deepcopy(body[key])
        if "sourceDisk" in image:
            image["sourceDiskId"] = self._next_id()
        project_images[name] = image
        return image

    def _get_image(self, project: str, name: str) -> JsonDict:
        image = self._images.get(project, {}).get(name)
        if image is None:
            raise GceError(404, f"The resource 'projects/{project}/global/images/{name}' was not found")
        return image

    def _operation(
        self,
        project: str,
        op_type: str,
        image: JsonDict,
        apply: Callable[[], None] | None,
        *,
        scope: str = "global",
        undo: Callable[[], None] | None = None,
    ) -> JsonDict:
        """A RUNNING operation on `image` (any resource) in `scope` ("global", "zones/z", "regions/r");
        `apply` makes its change once it is DONE."""
        now = self._now()
        name = f"operation-{int(dt.datetime.now(dt.UTC).timestamp() * 1000)}-{secrets.token_hex(6)}"
        op: JsonDict = {
            "kind": "compute#operation",
            "id": self._next_id(),
            "name": name,
            "operationType": op_type,
            "targetLink": image["selfLink"],
            "targetId": image["id"],
            "status": "RUNNING",
            "user": "fake@example.com",
            "progress": 0,
            "insertTime": now,
            "startTime": now,
            "selfLink": f"{API_ROOT}/projects/{project}/{scope}/operations/{name}",
        }
        if scope != "global":
            op[scope.split("/")[0][:-1]] = f"{API_ROOT}/projects/{project}/{scope}"
        error = None
        for failure in self._operation_failures:
            if failure[0] in (None, op_type):
                self._operation_failures.remove(failure)
                error = failure[1]
                break
        self._operations.setdefault(project, {})[name] = op
        self._pending.append(_Pending(op, time.monotonic() + self.operation_delay, apply, error, undo))
        return copy.deepcopy(op)

    def _finish(self, pending: _Pending) -> None:
        op = pending.op
        if pending.error is not None:
            error = pending.error
            op["error"] = {"errors": [{"code": error.reason.upper(), "message": error.message}]}
            op["httpErrorStatusCode"] = error.status
            op["httpErrorMessage"] = error.reason.upper()
            if pending.undo is not None:
                pending.undo()
        elif pending.apply is not None:
            pending.apply()
        op["status"] = "DONE"
        op["progress"] = 100
        op["endTime"] = self._now()

    def _due(self, project: str, operation: str, scope: str = "global") -> float | None:
        """When a RUNNING operation will be done (time.monotonic()), None if it is not running."""
        with self._lock:
            for pending in self._pending:
                if pending.op["name"] == operation and pending.op["selfLink"].endswith(
                    f"/projects/{project}/{scope}/operations/{operation}"
                ):
                    return pending.due
        return None

    def _take_failure(self, method: str, target: str) -> _FailRule | None:
        for rule in self._fail_rules:
            if rule.matches(method, target):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._fail_rules.remove(rule)
                return rule
        return None

    def handle(self, method: str, target: str, body: bytes) -> _Answer:
        """Route one request. Raises _Drop for a connection to close without an answer."""
        with self._lock:
            self.settle()
            self.requests.append((method, target))
            self.request_times.append(self.clock())
            rule = self._take_failure(method, target)
        if rule is not None and rule.on_arrival is not None:
            rule.on_arrival()
        if rule is not None and rule.mode == "drop":
            if rule.until is not None:
                threading.Thread(target=self._route_later, args=(rule, method, target, body), daemon=True).start()
            raise _Drop
        routed = rule.routed if rule is not None else None
        if rule is not None and rule.mode in ("hang", "cut"):
            if rule.mode == "hang":
                self._hold(rule)
            cut = rule.mode == "cut"
            rule = None
        else:
            cut = False
        if rule is not None:
            if rule.mode == "html":
                page = _HTML_PAGE.format(status=rule.status).encode()
                return _Answer(rule.status, page, "text/html; charset=UTF-8")
            msg = rule.message or _DEFAULT_MESSAGES.get(rule.status, f"Injected failure {rule.status}")
            return _json(rule.status, GceError(rule.status, msg).body())
        path = urlsplit(target).path
        if method == "POST" and path.startswith(_PREFIX) and path.endswith("/wait"):
            parts = path[len(_PREFIX) :].split("/")
            scope = "/".join(parts[1:-3])
            waits = len(parts) in (5, 6) and parts[-3] == "operations"
            due = self._due(parts[0], unquote(parts[-2]), scope) if waits else None
            if due is not None:  # as GCE's does: return when done, or at its time limit
                self._stopping.wait(min(max(due - time.monotonic(), 0.0), WAIT_LIMIT))
        with self._lock:
            self.settle()
            try:
                answer = _json(200, self._route(method, target, body))
            except GceError as e:
                answer = _json(e.status, e.body())
            watchers = list(self.answered)
        if routed is not None:
            routed.set()
        for watch in watchers:
            watch(method, target, answer.status)
        return _Answer(answer.status, answer.body, answer.content_type, cut=cut)

    def _hold(self, rule: _FailRule) -> None:
        """Until the rule's `until` is set (or its seconds pass, or the server stops)."""
        deadline = time.monotonic() + rule.seconds
        while not self._stopping.is_set() and time.monotonic() < deadline:
            if rule.until is not None and rule.until.wait(0.01):
                return
            if rule.until is None:
                self._stopping.wait(max(0.0, deadline - time.monotonic()))

    def _route_later(self, rule: _FailRule, method: str, target: str, body: bytes) -> None:
        """Make a dropped request's change once its rule's `until` is set."""
        self._hold(rule)
        with self._lock:
            self.settle()
            with contextlib.suppress(GceError):
                self._route(method, target, body)
        if rule.routed is not None:
            rule.routed.set()

    def _route(self, method: str, target: str, raw_body: bytes) -> JsonDict:
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        path = split.path
        if not path.startswith(_PREFIX):
            raise GceError(404, f"Not Found: {path}")
        parts = [unquote(p) for p in path[len(_PREFIX) :].split("/")]
        if len(parts) >= 3 and parts[1] == "global":
            project, scope, collection, rest = parts[0], "global", parts[2], parts[3:]
        elif len(parts) >= 4 and parts[1] in ("zones", "regions"):
            project, scope, collection, rest = parts[0], f"{parts[1]}/{parts[2]}", parts[3], parts[4:]
        elif len(parts) == 3 and parts[1] == "aggregated":
            project, scope, collection, rest = parts[0], "aggregated", parts[2], []
        else:
            raise GceError(404, f"Not Found: {path}")
        body: JsonDict = {}
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError as e:
                raise GceError(400, f"Invalid JSON payload received. {e}", "parseError") from e

        if collection == "images" and scope == "global":
            match (method, rest):
                case ("GET", []):
                    return self._list(project, query)
                case ("POST", []):
                    return self._insert(project, body, query)
                case ("GET", ["family", family]):
                    return self._get_from_family(project, family)
                case ("GET", [name]):
                    return copy.deepcopy(self._get_image(project, name))
                case ("DELETE", [name]):
                    return self._delete(project, name)
                case ("POST", [name, "setLabels"]):
                    return self._set_labels(project, name, body)
                case ("POST", [name, "deprecate"]):
                    return self._deprecate(project, name, body)
                case ("GET", [name, "getIamPolicy"]):
                    self._get_image(project, name)
                    return copy.deepcopy(self.iam_policies.get((project, name), {"etag": "ACAB", "version": 1}))
        elif collection == "operations":
            match (method, rest):
                case ("GET", [name]) | ("POST", [name, "wait"]):
                    op = self._operations.get(project, {}).get(name)
                    if op is None or not op["selfLink"].endswith(f"/{scope}/operations/{name}"):
                        raise GceError(
                            404, f"The resource 'projects/{project}/{scope}/operations/{name}' was not found"
                        )
                    return copy.deepcopy(op)
        else:
            return self.groups.route(method, project, scope, collection, rest, query, body)
        raise GceError(404, f"Not Found: {method} {path}")

    def _list(self, project: str, query: dict[str, str]) -> JsonDict:
        pred = compile_filter(query.get("filter", ""))
        items = [img for img in self._images.get(project, {}).values() if pred(img)]
        order_by = query.get("orderBy", "").strip()
        if order_by in ("", "name"):
            items.sort(key=lambda img: img["name"])
        elif order_by == "creationTimestamp desc":
            items.sort(key=lambda img: _parse_ts(img["creationTimestamp"]), reverse=True)
        else:
            raise GceError(400, f"Invalid value for field 'orderBy': '{order_by}'.", "invalid")
        try:
            max_results = int(query.get("maxResults", "500"))
            start = int(query.get("pageToken") or "0")
        except ValueError as e:
            raise GceError(400, "Invalid value for field 'maxResults' or 'pageToken'.", "invalid") from e
        if not 0 <= max_results <= 500 or start < 0:
            raise GceError(400, f"Invalid value for field 'maxResults': '{max_results}'.", "invalid")
        max_results = max_results or 500
        page = items[start : start + max_results]
        result: JsonDict = {
            "kind": "compute#imageList",
            "id": f"projects/{project}/global/images",
            "selfLink": f"{API_ROOT}/projects/{project}/global/images",
        }
        if page:
            result["items"] = copy.deepcopy(page)
        if start + max_results < len(items):
            result["nextPageToken"] = str(start + max_results)
        return result

    def _insert(self, project: str, body: JsonDict, query: dict[str, str]) -> JsonDict:
        request_id = query.get("requestId")
        if request_id and request_id in self._request_ids:
            return copy.deepcopy(self._request_ids[request_id])
        body = {k: v for k, v in body.items() if k not in ("id", "creationTimestamp", "selfLink", "status")}
        image = self._make_image(project, {**body, "status": "PENDING"})  # the name is taken at once

        def ready() -> None:
            image["status"] = "READY"

        op = self._operation(project, "insert", image, ready)
        if request_id:
            self._request_ids[request_id] = op
        return op

    def _delete(self, project: str, name: str) -> JsonDict:
        image = self._get_image(project, name)
        image["status"] = "DELETING"

        def gone() -> None:
            self._images.get(project, {}).pop(name, None)

        return self._operation(project, "delete", image, gone)

    def _deprecate(self, project: str, name: str, body: JsonDict) -> JsonDict:
        image = self._get_image(project, name)

        def deprecate() -> None:
            if body.get("state") in (None, "", "ACTIVE"):
                image.pop("deprecated", None)
            else:
                image["deprecated"] = body

        return self._operation(project, "deprecate", image, deprecate)

    def _get_from_family(self, project: str, family: str) -> JsonDict:
        candidates = [
            img
            for img in self._images.get(project, {}).values()
            if img.get("family") == family
            and img.get("status") == "READY"
            and (img.get("deprecated") or {}).get("state") not in _DEPRECATED_STATES
        ]
        if not candidates:
            raise GceError(404, f"The resource 'projects/{project}/global/images/family/{family}' was not found")
        newest = max(candidates, key=lambda img: _parse_ts(img["creationTimestamp"]))
        return copy.deepcopy(newest)

    def _set_labels(self, project: str, name: str, body: JsonDict) -> JsonDict:
        image = self._get_image(project, name)
        if body.get("labelFingerprint") != image["labelFingerprint"]:
            raise GceError(
                412,
                "Labels fingerprint either invalid or resource labels have changed",
                "conditionNotMet",
            )
        labels = {str(k): str(v) for k, v in (body.get("labels") or {}).items()}

        def relabel() -> None:
            if labels:
                image["labels"] = labels
            else:
                image.pop("labels", None)
            image["labelFingerprint"] = self._fingerprint(labels)

        return self._operation(project, "setLabels", image, relabel)


def _json(status: int, payload: JsonDict) -> _Answer:
    return _Answer(status, json.dumps(payload).encode())


def _rfc3339(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.isoformat(timespec="milliseconds")


def _parse_ts(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class _Handler(BaseHTTPRequestHandler):
    gce: FakeGce
    protocol_version = "HTTP/1.1"
    server_version = "FakeGce/1.0"
    # one buffered write per response (flushed by handle_one_request) + TCP_NODELAY: avoids the
    # ~40 ms Nagle/delayed-ACK stall between a separate header write and body write on keep-alive
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.gce._lock:
            self.gce._connections.add(self.connection)

    def finish(self) -> None:
        with self.gce._lock:
            self.gce._connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client may have gone (a timeout, a dropped answer)
            super().finish()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            answer = self.gce.handle(self.command, self.path, body)
        except _Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body[: len(answer.body) // 2] if answer.cut else answer.body)
            if answer.cut:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:  # the client gave up waiting
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass
