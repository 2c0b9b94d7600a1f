"""What the fake's resource modules share: Google-style errors, GCE's name rule, JSON merge patch,
paginated lists, a collection kept per project and scope, and the check of a boot disk's image."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from tests.fakes.gce_migs import API_ROOT, JsonDict

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce

_NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_IMAGE_PATH = re.compile(r"projects/([^/]+)/global/images/([^/]+)$")
_IMAGE_OR_FAMILY_PATH = re.compile(r"projects/([^/]+)/global/images/(?:family/)?([^/]+)$")


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


def boot_image(gce: FakeGce, disks: list[JsonDict], field: str, *, families: bool = False) -> None:
    """Refuse, as GCE does, `disks` (the resource's `field`) without exactly one boot disk, or whose
    boot disk's source image is no image that exists; with `families`, an image family
    (".../global/images/family/NAME") is taken as it is."""
    boot = [d for d in disks if d.get("boot")]
    if len(boot) != 1:
        raise error(400, f"Invalid value for field '{field}': exactly one boot disk is required.")
    source = (boot[0].get("initializeParams") or {}).get("sourceImage", "")
    image = (_IMAGE_OR_FAMILY_PATH if families else _IMAGE_PATH).search(source)
    if image is None:
        raise error(400, f"Invalid value for field '{field}[0].initializeParams.sourceImage': '{source}'.")
    if not (families and "/family/" in source) and image.group(2) not in gce._images.get(image.group(1), {}):
        raise not_found(f"projects/{image.group(1)}/global/images/{image.group(2)}")


class Collection:
    """Resources of one kind kept per (project, scope: "zones/Z", "regions/R" or "global") and
    served as GCE serves them: list (filtered, in pages), insert (once per requestId), get, delete.
    A subclass names the kind and makes (`_insert`) and removes (`_delete`) one."""

    PATH = ""  # the collection in a URL: "instances"
    LIST_KIND = ""  # a list answer's kind: "compute#instanceList"

    def __init__(self, gce: FakeGce) -> None:
        self.gce = gce
        self.stored: dict[tuple[str, str], dict[str, JsonDict]] = {}  # (project, scope) -> name -> JSON

    def route(
        self, method: str, project: str, scope: str, rest: list[str], query: dict[str, str], body: JsonDict
    ) -> JsonDict | None:
        match (method, rest):
            case ("GET", []):
                items = list(self.stored.get((project, scope), {}).values())
                return page(items, query, self.LIST_KIND, f"projects/{project}/{scope}/{self.PATH}")
            case ("POST", []):
                return insert_once(self.gce, query, lambda: self._insert(project, scope, body))
            case ("GET", [name]):
                return copy.deepcopy(self._found(project, scope, name))
            case ("DELETE", [name]):
                return self._delete(project, scope, name)
        return None

    def _found(self, project: str, scope: str, name: str) -> JsonDict:
        found = self.stored.get((project, scope), {}).get(name)
        if found is None:
            raise not_found(f"projects/{project}/{scope}/{self.PATH}/{name}")
        return found

    def _new_name(self, project: str, scope: str, body: JsonDict) -> str:
        """The name of the resource `body` would insert: checked as GCE checks it, and free."""
        name = checked_name(body.get("name"))
        if name in self.stored.get((project, scope), {}):
            raise error(409, f"The resource 'projects/{project}/{scope}/{self.PATH}/{name}' already exists")
        return name

    def _insert(self, project: str, scope: str, body: JsonDict) -> JsonDict:
        raise NotImplementedError

    def _delete(self, project: str, scope: str, name: str) -> JsonDict:
        raise NotImplementedError
