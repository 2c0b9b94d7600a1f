"""What the fake's resource modules share: Google-style errors, GCE's name rule, JSON merge patch
and paginated lists."""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.fakes.gce_migs import API_ROOT, JsonDict

_NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")


def error(status: int, message: str, reason: str | None = None) -> Exception:
    from tests.fakes.gce import GceError  # gce.py imports the resource modules

    return GceError(status, message, reason)


def not_found(what: str) -> Exception:
    return error(404, f"The resource '{what}' was not found")


def checked_name(name: Any, field: str = "resource.name") -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise error(
            400, f"Invalid value for field '{field}': '{name}'. Must be a match of regex '[a-z]([-a-z0-9]*[a-z0-9])?'"
        )
    return name


def merge(into: JsonDict, patch: JsonDict) -> None:
    """JSON merge patch (RFC 7396): objects merge, everything else (lists too) replaces."""
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def page(items: list[JsonDict], query: dict[str, str], kind: str, path: str) -> JsonDict:
    """A list answer: `items` that match the query's filter, by name, one page of them."""
    from tests.fakes.gce import compile_filter

    pred = compile_filter(query.get("filter", ""))
    items = sorted((i for i in items if pred(i)), key=lambda i: i["name"])
    size = int(query.get("maxResults") or 500) or 500
    start = int(query.get("pageToken") or 0)
    out: JsonDict = {"kind": kind, "id": path, "selfLink": f"{API_ROOT}/{path}"}
    if items[start : start + size]:
        out["items"] = copy.deepcopy(items[start : start + size])
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    return out


def insert_once(gce: Any, query: dict[str, str], create: Any) -> JsonDict:
    """An insert that answers a repeated requestId with the first answer, as GCE does."""
    request_id = query.get("requestId")
    if request_id and request_id in gce._request_ids:
        return copy.deepcopy(gce._request_ids[request_id])
    op: JsonDict = create()
    if request_id:
        gce._request_ids[request_id] = op
    return op
