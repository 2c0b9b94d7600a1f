"""The bytes of a vulnerability feed, from where the user named it and nowhere else: a regular
file (no symlink followed, its size bounded) or an http(s) URL (fetched once, with a timeout and
the same size bound; redirects only to http(s), and from https only to https; a body cut short is
refused). What comes back is untrusted: formats.py parses it."""

from __future__ import annotations

import http.client
import os
import stat
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bakery.core.jcs import sha256
from bakery.errors import BakeryError

CHUNK = 1 << 20


class FeedError(BakeryError):
    """A feed that cannot be read, or is not one (exit 1: the scan did not happen)."""


@dataclass(frozen=True)
class Raw:
    where: str  # the path or URL as named
    data: bytes
    digest: str  # "sha256:<hex>" of the bytes


def is_url(name: str) -> bool:
    return name.startswith(("http://", "https://"))


def read(name: str, *, base: Path, timeout: float, max_bytes: int) -> Raw:
    """The feed `name` names: a URL, or a path (relative to `base`). Raises FeedError."""
    data = _fetch(name, timeout, max_bytes) if is_url(name) else _file(base / name, max_bytes)
    return Raw(name, data, sha256(data))


def _file(path: Path, max_bytes: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        why = "it is a symlink (not followed)" if path.is_symlink() else exc.strerror or str(exc)
        raise FeedError(f"feed {path}: cannot be read: {why}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FeedError(f"feed {path}: not a regular file")
        raise FeedError(f"feed {path}: {info.st_size} bytes, more than the {max_bytes} allowed (scan.max_mib)")
    with os.fdopen(fd, "rb") as handle:
        return _bounded(handle.read, str(path), max_bytes)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not is_url(newurl):
            raise FeedError(f"feed {req.full_url}: redirected to {newurl!r}, which is not http(s)")
        if req.full_url.startswith("https://") and not newurl.startswith("https://"):
            raise FeedError(f"feed {req.full_url}: redirected from https to {newurl!r}, which is not https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch(url: str, timeout: float, max_bytes: int) -> bytes:
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    request = urllib.request.Request(url, headers={"User-Agent": "bakery-scan"})
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise FeedError(f"feed {url}: {length} bytes, more than the {max_bytes} allowed (scan.max_mib)")
            data = _bounded(response.read, url, max_bytes)
            if length is not None and length.isdigit() and len(data) != int(length):
                raise FeedError(f"feed {url}: the connection closed after {len(data)} of its {length} bytes")
            return data
    except urllib.error.HTTPError as exc:
        raise FeedError(f"feed {url}: the server answered {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead:
        raise FeedError(f"feed {url}: the connection closed before the end of its body") from None
    except http.client.HTTPException as exc:  # a malformed answer (bad status line, headers)
        raise FeedError(f"feed {url}: not a valid HTTP answer: {exc!r}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FeedError(f"feed {url}: cannot be fetched: {reason}") from None


def _bounded(read_chunk: Callable[[int], bytes], where: str, max_bytes: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = read_chunk(CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > max_bytes:
            raise FeedError(f"feed {where}: more than the {max_bytes} bytes allowed (scan.max_mib)")
        parts.append(chunk)
