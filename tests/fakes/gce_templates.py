"""The fake's instance templates, global and regional (see gce_groups.py for the paths served).

A template is checked as GCE checks it on insert (a name, one boot disk from an image that exists)
and cannot be deleted while a managed instance group uses it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.fakes.gce_common import checked_name, error, insert_once, not_found, page
from tests.fakes.gce_migs import API_ROOT, JsonDict

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce

TEMPLATE_PATH = re.compile(r"projects/([^/]+)/(global|regions/[^/]+)/instanceTemplates/([^/]+)$")
_IMAGE_PATH = re.compile(r"projects/([^/]+)/global/images/(?:family/)?([^/]+)$")


class FakeTemplates:
    def __init__(self, gce: FakeGce, user_of: Callable[[str], str | None]) -> None:
        """`user_of(template URL)` names the managed instance group that uses it, if any."""
        self.gce = gce
        self.user_of = user_of
        self.stored: dict[tuple[str, str], dict[str, JsonDict]] = {}  # (project, scope) -> name -> JSON

    # --- test API --------------------------------------------------------------------------------

    def add(
        self,
        project: str,
        name: str,
        *,
        image: str,
        labels: dict[str, str] | None = None,
        description: str = "",
        region: str | None = None,
        machine_type: str = "e2-small",
    ) -> JsonDict:
        """Seed an instance template booting `image` ("project/name" or a URL). Returns a copy."""
        source = image if "/global/images/" in image else "projects/{}/global/images/{}".format(*image.split("/"))
        body = {
            "name": name,
            "description": description,
            "properties": {
                "machineType": machine_type,
                "labels": dict(labels or {}),
                "disks": [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": source}}],
                "networkInterfaces": [{"network": f"projects/{project}/global/networks/default"}],
            },
        }
        with self.gce._lock:
            return copy.deepcopy(self.make(project, _scope(region), body))

    def get(self, project: str, name: str, *, region: str | None = None) -> JsonDict:
        with self.gce._lock:
            self.gce.settle()
            return copy.deepcopy(self._template(project, _scope(region), name))

    def names(self, project: str, *, region: str | None = None) -> list[str]:
        with self.gce._lock:
            self.gce.settle()
            return sorted(self.stored.get((project, _scope(region)), {}))

    # --- handlers --------------------------------------------------------------------------------

    def route(
        self, method: str, project: str, scope: str, rest: list[str], query: dict[str, str], body: JsonDict
    ) -> JsonDict | None:
        match (method, rest):
            case ("GET", []):
                items = list(self.stored.get((project, scope), {}).values())
                return page(
                    items, query, "compute#instanceTemplateList", f"projects/{project}/{scope}/instanceTemplates"
                )
            case ("POST", []):
                return insert_once(self.gce, query, lambda: self._insert(project, scope, body))
            case ("GET", [name]):
                return copy.deepcopy(self._template(project, scope, name))
            case ("DELETE", [name]):
                return self._delete(project, scope, name)
        return None

    def _template(self, project: str, scope: str, name: str) -> JsonDict:
        found = self.stored.get((project, scope), {}).get(name)
        if found is None:
            raise not_found(f"projects/{project}/{scope}/instanceTemplates/{name}")
        return found

    def by_url(self, url: str) -> JsonDict:
        found = TEMPLATE_PATH.search(url or "")
        if found is None:
            raise error(400, f"Invalid value for field 'instanceTemplate': '{url}'. The URL is malformed.")
        return self._template(found.group(1), found.group(2), found.group(3))

    def make(self, project: str, scope: str, body: JsonDict) -> JsonDict:
        name = checked_name(body.get("name"))
        if name in self.stored.get((project, scope), {}):
            raise error(409, f"The resource 'projects/{project}/{scope}/instanceTemplates/{name}' already exists")
        properties = copy.deepcopy(body.get("properties") or {})
        boot = [d for d in properties.get("disks", []) if d.get("boot")]
        if len(boot) != 1:
            raise error(400, "Invalid value for field 'resource.properties.disks': exactly one boot disk is required.")
        source = (boot[0].get("initializeParams") or {}).get("sourceImage", "")
        image = _IMAGE_PATH.search(source)
        if image is None:
            raise error(
                400, f"Invalid value for field 'resource.properties.disks[0].initializeParams.sourceImage': '{source}'."
            )
        if "/family/" not in source and image.group(2) not in self.gce._images.get(image.group(1), {}):
            raise not_found(f"projects/{image.group(1)}/global/images/{image.group(2)}")
        template: JsonDict = {
            "kind": "compute#instanceTemplate",
            "id": self.gce._next_id(),
            "creationTimestamp": self.gce._now(),
            "name": name,
            "description": body.get("description", ""),
            "properties": properties,
            "selfLink": f"{API_ROOT}/projects/{project}/{scope}/instanceTemplates/{name}",
        }
        if scope != "global":
            template["region"] = f"{API_ROOT}/projects/{project}/{scope}"
        self.stored.setdefault((project, scope), {})[name] = template
        return template

    def _insert(self, project: str, scope: str, body: JsonDict) -> JsonDict:
        template = self.make(project, scope, body)  # the name is taken at once, and freed if the insert fails
        forget = lambda: self.stored.get((project, scope), {}).pop(template["name"], None)  # noqa: E731
        return self.gce._operation(project, "insert", template, None, scope=scope, undo=forget)

    def _delete(self, project: str, scope: str, name: str) -> JsonDict:
        template = self._template(project, scope, name)
        user = self.user_of(template["selfLink"])
        if user is not None:
            raise error(
                400,
                f"The instance_template resource 'projects/{project}/{scope}/instanceTemplates/{name}' is already "
                f"being used by '{user}'",
                "resourceInUseByAnotherResource",
            )

        def gone() -> None:
            self.stored.get((project, scope), {}).pop(name, None)

        return self.gce._operation(project, "delete", template, gone, scope=scope)

    def names_of(self, template_url: str) -> set[str]:
        """The names a fault may match for VMs of this template: the template's and its image's."""
        found = TEMPLATE_PATH.search(template_url)
        names = {found.group(3)} if found else set()
        if found and found.group(3) in self.stored.get((found.group(1), found.group(2)), {}):
            names.add(image_of(self.by_url(template_url)).rpartition("/")[2])
        return names


def image_of(template: JsonDict) -> str:
    for disk in template["properties"].get("disks", []):
        if disk.get("boot"):
            return str((disk.get("initializeParams") or {}).get("sourceImage", ""))
    return ""


def _scope(region: str | None) -> str:
    return f"regions/{region}" if region else "global"
