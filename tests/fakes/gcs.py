"""A small fake of the Cloud Storage JSON API, standard library only, for bakery's registry tests.

gcp-storage-emulator (on PyPI) ignores preconditions: an upload with ifGenerationMatch=0 over an
existing object succeeds there, so it cannot show that two writers racing for one key leave one
winner. This server enforces them, atomically under one lock, and serves exactly what
google-cloud-storage calls for bakery's store (bakery/registry/gcs.py)::

    POST   /storage/v1/b?project=P                       create a bucket (409 if it exists)
    GET    /storage/v1/b/{bucket}                        a bucket's metadata
    POST   /upload/storage/v1/b/{bucket}/o?uploadType=multipart|media   upload an object
    GET    /storage/v1/b/{bucket}/o/{object}             an object's metadata
    GET    /storage/v1/b/{bucket}/o/{object}?alt=media   its bytes (also /download/storage/v1/...)
    GET    /storage/v1/b/{bucket}/o?prefix=&pageToken=&maxResults=   list, in name order
    DELETE /storage/v1/b/{bucket}/o/{object}             delete

Every object call honours ifGenerationMatch (0: the object must not exist), ifGenerationNotMatch,
ifMetagenerationMatch and ifMetagenerationNotMatch, answering 412 conditionNotMet as GCS does.
Each write gets a new generation (one counter for the whole server, so a name deleted and
written again never repeats one); metageneration starts at 1. Downloads carry x-goog-generation
and x-goog-hash (crc32c, md5), which the client reads; uploads that send a crc32c or md5Hash
are checked against the bytes received. Errors are Google's JSON error bodies. A bucket's
retention policy (`add_bucket(name, retention_seconds=...)`) keeps an object younger than its
period from deletion and overwriting (403 retentionPolicyNotMet), as GCS does. Usage::

    with serve("registry") as endpoint:        # in-process, on a free loopback port
        client = storage.Client(project="p", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": endpoint})

    python -m tests.fakes.gcs --port 4443 --bucket registry
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import google_crc32c

__all__ = ["FakeGcs", "serve"]

PAGE_SIZE = 1000
_BUCKET = re.compile(r"^/storage/v1/b/([^/]+)$")
_OBJECTS = re.compile(r"^/storage/v1/b/([^/]+)/o$")
_OBJECT = re.compile(r"^(?:/download)?/storage/v1/b/([^/]+)/o/(.+)$")
_UPLOAD = re.compile(r"^/upload/storage/v1/b/([^/]+)/o$")


class GcsError(Exception):
    """An answer other than success: its status, Google's reason and a message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass(frozen=True)
class _Object:
    data: bytes
    generation: int
    metageneration: int
    content_type: str
    created: str
    born: float = 0.0  # time.time() at its write, for the bucket's retention policy


class FakeGcs:
    """The server and its state. `with FakeGcs() as gcs:` runs it on a free loopback port."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self.buckets: dict[str, dict[str, _Object]] = {}
        self.retention: dict[str, int] = {}  # bucket -> retention period, seconds
        self._generations = itertools.count(int(time.time() * 1_000_000))
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_bucket(self, name: str, *, retention_seconds: int | None = None) -> None:
        with self._lock:
            self.buckets.setdefault(name, {})
            self.retention.update({name: retention_seconds} if retention_seconds is not None else {})

    def __enter__(self) -> FakeGcs:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    # The API, called by the handler with the lock NOT held; each takes it once, so a check and
    # the write it guards are one atomic step.

    def create_bucket(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name in self.buckets:
                raise GcsError(409, "conflict", f"Your previous request to create the named bucket succeeded: {name}")
            self.buckets[name] = {}
        return _bucket_resource(name)

    def get_bucket(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._objects(name)
            period = self.retention.get(name)
        policy = {"retentionPeriod": str(period), "effectiveTime": _now(), "isLocked": True}
        return _bucket_resource(name) | ({"retentionPolicy": policy} if period is not None else {})

    def upload(self, bucket: str, name: str, data: bytes, content_type: str, conditions: dict[str, int]) -> _Object:
        with self._lock:
            objects = self._objects(bucket)
            _check(objects.get(name), conditions)
            self._retained(bucket, name, objects.get(name))
            made = _Object(data, next(self._generations), 1, content_type, _now(), time.time())
            objects[name] = made
            return made

    def read(self, bucket: str, name: str, conditions: dict[str, int]) -> _Object:
        with self._lock:
            found = self._objects(bucket).get(name)
            if found is None:
                raise GcsError(404, "notFound", f"No such object: {bucket}/{name}")
            _check(found, conditions)
            return found

    def delete(self, bucket: str, name: str, conditions: dict[str, int]) -> None:
        with self._lock:
            objects = self._objects(bucket)
            if name not in objects:
                raise GcsError(404, "notFound", f"No such object: {bucket}/{name}")
            _check(objects[name], conditions)
            self._retained(bucket, name, objects[name])
            del objects[name]

    def list_objects(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> tuple[list[tuple[str, _Object]], str | None]:
        with self._lock:
            names = sorted(n for n in self._objects(bucket) if n.startswith(prefix) and n > after)
            page = [(n, self.buckets[bucket][n]) for n in names[:limit]]
        return page, (page[-1][0] if len(names) > limit else None)

    def _retained(self, bucket: str, name: str, found: _Object | None) -> None:  # the lock held
        period = self.retention.get(bucket)
        if found is not None and period is not None and time.time() - found.born < period:
            message = f"Object '{bucket}/{name}' is subject to bucket's retention policy and cannot be deleted or"
            raise GcsError(403, "retentionPolicyNotMet", f"{message} overwritten until its retention period passed")

    def _objects(self, bucket: str) -> dict[str, _Object]:
        if bucket not in self.buckets:
            raise GcsError(404, "notFound", "The specified bucket does not exist.")
        return self.buckets[bucket]


def _check(found: _Object | None, conditions: dict[str, int]) -> None:
    """Raise 412 unless every precondition holds for `found` (None: no live object; reads and
    deletes of nothing are 404s, raised before)."""
    generation, metageneration = (found.generation, found.metageneration) if found else (0, 0)
    failed = (
        ("ifGenerationMatch" in conditions and conditions["ifGenerationMatch"] != generation)
        or ("ifGenerationNotMatch" in conditions and conditions["ifGenerationNotMatch"] == generation)
        or ("ifMetagenerationMatch" in conditions and conditions["ifMetagenerationMatch"] != metageneration)
        or ("ifMetagenerationNotMatch" in conditions and conditions["ifMetagenerationNotMatch"] == metageneration)
    )
    if failed:
        raise GcsError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bucket_resource(name: str) -> dict[str, Any]:
    return {"kind": "storage#bucket", "id": name, "name": name, "location": "US", "storageClass": "STANDARD"}


def _hashes(data: bytes) -> tuple[str, str]:
    """(crc32c, md5) of `data` as GCS gives them: base64 of the big-endian checksum, of the digest."""
    crc = google_crc32c.value(data).to_bytes(4, "big")
    return base64.b64encode(crc).decode(), base64.b64encode(hashlib.md5(data).digest()).decode()


def _object_resource(base: str, bucket: str, name: str, found: _Object) -> dict[str, Any]:
    crc32c, md5 = _hashes(found.data)
    path = f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}"
    return {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{found.generation}",
        "selfLink": f"{base}{path}",
        "mediaLink": f"{base}/download{path}?generation={found.generation}&alt=media",
        "name": name,
        "bucket": bucket,
        "generation": str(found.generation),
        "metageneration": str(found.metageneration),
        "contentType": found.content_type,
        "storageClass": "STANDARD",
        "size": str(len(found.data)),
        "md5Hash": md5,
        "crc32c": crc32c,
        "etag": base64.b64encode(f"{found.generation}/{found.metageneration}".encode()).decode(),
        "timeCreated": found.created,
        "updated": found.created,
    }


def _conditions(query: dict[str, list[str]]) -> dict[str, int]:
    names = ("ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch", "ifMetagenerationNotMatch")
    try:
        return {name: int(query[name][0]) for name in names if name in query}
    except ValueError:
        raise GcsError(400, "invalid", "preconditions must be integers") from None


def _multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], bytes, str]:
    """(metadata, media, media content type) of a multipart/related upload body."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not found:
        raise GcsError(400, "invalid", "a multipart upload needs a boundary")
    parts = body.split(b"--" + found.group(1).encode())
    if len(parts) < 4:
        raise GcsError(400, "invalid", "a multipart upload has a metadata part and a media part")
    (_, meta_part), (media_headers, media) = (_part(parts[1]), _part(parts[2]))
    media_type = re.search(rb"content-type:\s*([^\r\n]+)", media_headers, re.IGNORECASE)
    return json.loads(meta_part), media, (media_type.group(1).decode() if media_type else "application/octet-stream")


def _part(raw: bytes) -> tuple[bytes, bytes]:
    headers, _, content = raw.removeprefix(b"\r\n").partition(b"\r\n\r\n")
    return headers, content.removesuffix(b"\r\n")


def _handler(fake: FakeGcs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client's connection pool reuses connections
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms wait between

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def do_DELETE(self) -> None:
            self._answer("DELETE")

        def _answer(self, method: str) -> None:
            split = urlsplit(self.path)
            query = parse_qs(split.query)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                try:
                    self._route(method, split.path, query, body)
                except (ValueError, KeyError) as exc:  # a body or a parameter this fake cannot read
                    raise GcsError(400, "invalid", f"cannot read the request: {exc}") from exc
            except GcsError as exc:
                reasons = [{"message": exc.message, "domain": "global", "reason": exc.reason}]
                error = {"code": exc.status, "message": exc.message, "errors": reasons}
                self._send(exc.status, json.dumps({"error": error}).encode(), "application/json")

        def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
            base = f"http://{self.headers.get('Host', fake.endpoint.removeprefix('http://'))}"
            if method == "POST" and path == "/storage/v1/b":
                self._json(fake.create_bucket(json.loads(body or b"{}").get("name", "")))
            elif method == "GET" and (found := _BUCKET.match(path)):
                self._json(fake.get_bucket(unquote(found.group(1))))
            elif method == "POST" and (found := _UPLOAD.match(path)):
                self._upload(base, unquote(found.group(1)), query, body)
            elif method == "GET" and (found := _OBJECTS.match(path)):
                self._list(base, unquote(found.group(1)), query)
            elif found := _OBJECT.match(path):
                bucket, name = unquote(found.group(1)), unquote(found.group(2))
                if method == "DELETE":
                    fake.delete(bucket, name, _conditions(query))
                    self._send(204, b"", None)
                elif method == "GET":
                    self._object(
                        base, bucket, name, query, media=path.startswith("/download/") or query.get("alt") == ["media"]
                    )
                else:
                    raise GcsError(405, "methodNotAllowed", f"{method} is not served on objects")
            else:
                raise GcsError(404, "notFound", f"this fake does not serve {method} {path}")

        def _upload(self, base: str, bucket: str, query: dict[str, list[str]], body: bytes) -> None:
            kind = query.get("uploadType", [""])[0]
            if kind == "multipart":
                metadata, data, content_type = _multipart(body, self.headers.get("Content-Type", ""))
            elif kind == "media":
                metadata, data = {"name": query.get("name", [""])[0]}, body
                content_type = self.headers.get("Content-Type", "application/octet-stream")
            else:
                raise GcsError(400, "invalid", f"uploadType={kind or '(none)'} is not served (multipart and media are)")
            name = metadata.get("name") or ""
            if not name:
                raise GcsError(400, "required", "an upload needs the object's name")
            crc32c, md5 = _hashes(data)
            for field, value in (("crc32c", crc32c), ("md5Hash", md5)):
                if metadata.get(field) not in (None, value):
                    raise GcsError(
                        400, "invalid", f"Provided {field} {metadata[field]} doesn't match calculated {value}."
                    )
            made = fake.upload(bucket, name, data, metadata.get("contentType") or content_type, _conditions(query))
            self._json(_object_resource(base, bucket, name, made))

        def _list(self, base: str, bucket: str, query: dict[str, list[str]]) -> None:
            prefix = query.get("prefix", [""])[0]
            after = base64.urlsafe_b64decode(query["pageToken"][0]).decode() if "pageToken" in query else ""
            limit = min(int(query.get("maxResults", [PAGE_SIZE])[0]), PAGE_SIZE)
            page, last = fake.list_objects(bucket, prefix, after, limit)
            answer: dict[str, Any] = {
                "kind": "storage#objects",
                "items": [_object_resource(base, bucket, n, o) for n, o in page],
            }
            if last is not None:
                answer["nextPageToken"] = base64.urlsafe_b64encode(last.encode()).decode()
            self._json(answer)

        def _object(self, base: str, bucket: str, name: str, query: dict[str, list[str]], *, media: bool) -> None:
            found = fake.read(bucket, name, _conditions(query))
            if "generation" in query and int(query["generation"][0]) != found.generation:
                raise GcsError(404, "notFound", f"No such object: {bucket}/{name}#{query['generation'][0]}")
            if not media:
                self._json(_object_resource(base, bucket, name, found))
                return
            crc32c, md5 = _hashes(found.data)
            self._send(
                200,
                found.data,
                found.content_type,
                {
                    "x-goog-generation": str(found.generation),
                    "x-goog-metageneration": str(found.metageneration),
                    "x-goog-hash": f"crc32c={crc32c},md5={md5}",
                    "x-goog-stored-content-length": str(len(found.data)),
                    "x-goog-stored-content-encoding": "identity",
                },
            )

        def _json(self, value: dict[str, Any]) -> None:
            self._send(200, json.dumps(value).encode(), "application/json")

        def _send(
            self, status: int, body: bytes, content_type: str | None, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def serve(*buckets: str) -> Iterator[str]:
    """Run a fake with `buckets` on a free loopback port until the block ends; yields its endpoint."""
    with FakeGcs() as fake:
        for bucket in buckets:
            fake.add_bucket(bucket)
        yield fake.endpoint


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.gcs", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--bucket", action="append", default=[], help="a bucket to create (repeatable)")
    args = parser.parse_args()
    fake = FakeGcs(args.port)
    for bucket in args.bucket:
        fake.add_bucket(bucket)
    print(fake.endpoint, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake.server.serve_forever()


if __name__ == "__main__":
    main()
