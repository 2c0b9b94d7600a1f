"""The fake's instance templates, global and regional (see gce_groups.py for the paths served).

A template is checked as GCE checks it on insert (a name, one boot disk from an image that exists)
and cannot be deleted while a managed instance group uses it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.fakes.gce_common import Collection, boot_image, error
from tests.fakes.gce_migs import API_ROOT, JsonDict

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce

TEMPLATE_PATH = re.compile(r"projects/([^/]+)/(global|regions/[^/]+)/instanceTemplates/([^/]+)$")


class FakeTemplates(Collection):
    PATH = "instanceTemplates"
    LIST_KIND = "compute#instanceTemplateList"

    def __init__(self, gce: FakeGce, user_of: Callable[[str], str | None]) -> None:
        """`user_of(template URL)` names the managed instance group that uses it, if any."""
        super().__init__(gce)
        self.user_of = user_of

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
            return copy.deepcopy(self._found(project, _scope(region), name))

    def names(self, project: str, *, region: str | None = None) -> list[str]:
        with self.gce._lock:
            self.gce.settle()
            return sorted(self.stored.get((project, _scope(region)), {}))

    # --- handlers (route: Collection's) ----------------------------------------------------------

    def by_url(self, url: str) -> JsonDict:
        found = TEMPLATE_PATH.search(url or "")
        if found is None:
            raise error(400, f"Invalid value for field 'instanceTemplate': '{url}'. The URL is malformed.")
        return self._found(found.group(1), found.group(2), found.group(3))

    def make(self, project: str, scope: str, body: JsonDict) -> JsonDict:
        name = self._new_name(project, scope, body)
        properties = copy.deepcopy(body.get("properties") or {})
        boot_image(self.gce, properties.get("disks", []), "resource.properties.disks", families=True)
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
        template = self._found(project, scope, name)
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
