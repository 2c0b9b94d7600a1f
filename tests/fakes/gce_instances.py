"""The fake's zonal instances, as far as a test instance needs them.

    GET|POST    /projects/{p}/zones/{z}/instances           list (filter on labels), insert
    GET|DELETE  /projects/{p}/zones/{z}/instances/{name}    get, delete

An insert is checked as GCE checks it (a name, one boot disk from an image that exists) and
answers a zone operation; the instance exists, STAGING, from the insert on (its name is taken),
and is RUNNING, with an internal and (given an access config) an external address, once the
operation is DONE (with `appear_when_done`, it shows only then, as the slowest GCE might). Those
addresses exist nowhere: nothing may connect to them. A test adds an instance as it stands with
`add()` (one that a killed run left, long ago).
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import TYPE_CHECKING

from tests.fakes.gce_common import checked_name, error, insert_once, not_found, page
from tests.fakes.gce_migs import API_ROOT, JsonDict

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce

_IMAGE_PATH = re.compile(r"projects/([^/]+)/global/images/([^/]+)$")


class FakeInstances:
    def __init__(self, gce: FakeGce) -> None:
        self.gce = gce
        self.stored: dict[tuple[str, str], dict[str, JsonDict]] = {}  # (project, zone scope) -> name -> JSON
        self.deleted: list[str] = []  # names, in the order their deletion was DONE
        self.appear_when_done = False
        self._addresses = itertools.count(2)

    # --- test API --------------------------------------------------------------------------------

    def all(self) -> list[JsonDict]:
        with self.gce._lock:
            self.gce.settle()
            return [copy.deepcopy(i) for found in self.stored.values() for i in found.values()]

    def add(self, project: str, zone: str, name: str, *, created: str, **fields: object) -> None:
        """An instance, RUNNING, made at `created` (RFC 3339), with these fields (labels, scheduling...)."""
        with self.gce._lock:
            scope = f"zones/{zone}"
            self.stored.setdefault((project, scope), {})[name] = {
                **copy.deepcopy(fields),
                "kind": "compute#instance",
                "name": name,
                "id": self.gce._next_id(),
                "creationTimestamp": created,
                "status": "RUNNING",
                "zone": f"{API_ROOT}/projects/{project}/{scope}",
                "selfLink": f"{API_ROOT}/projects/{project}/{scope}/instances/{name}",
            }

    # --- handlers --------------------------------------------------------------------------------

    def route(
        self, method: str, project: str, scope: str, rest: list[str], query: dict[str, str], body: JsonDict
    ) -> JsonDict | None:
        match (method, rest):
            case ("GET", []):
                items = list(self.stored.get((project, scope), {}).values())
                return page(items, query, "compute#instanceList", f"projects/{project}/{scope}/instances")
            case ("POST", []):
                return insert_once(self.gce, query, lambda: self._insert(project, scope, body))
            case ("GET", [name]):
                return copy.deepcopy(self._instance(project, scope, name))
            case ("DELETE", [name]):
                return self._delete(project, scope, name)
        return None

    def _instance(self, project: str, scope: str, name: str) -> JsonDict:
        found = self.stored.get((project, scope), {}).get(name)
        if found is None:
            raise not_found(f"projects/{project}/{scope}/instances/{name}")
        return found

    def _insert(self, project: str, scope: str, body: JsonDict) -> JsonDict:
        name = checked_name(body.get("name"))
        if name in self.stored.get((project, scope), {}):
            raise error(409, f"The resource 'projects/{project}/{scope}/instances/{name}' already exists")
        boot = [d for d in body.get("disks", []) if d.get("boot")]
        if len(boot) != 1:
            raise error(400, "Invalid value for field 'resource.disks': exactly one boot disk is required.")
        source = (boot[0].get("initializeParams") or {}).get("sourceImage", "")
        image = _IMAGE_PATH.search(source)
        if image is None:
            raise error(400, f"Invalid value for field 'resource.disks[0].initializeParams.sourceImage': '{source}'.")
        if image.group(2) not in self.gce._images.get(image.group(1), {}):
            raise not_found(f"projects/{image.group(1)}/global/images/{image.group(2)}")
        instance: JsonDict = {
            **copy.deepcopy(body),
            "kind": "compute#instance",
            "id": self.gce._next_id(),
            "creationTimestamp": self.gce._now(),
            "status": "STAGING",
            "zone": f"{API_ROOT}/projects/{project}/{scope}",
            "selfLink": f"{API_ROOT}/projects/{project}/{scope}/instances/{name}",
        }
        number = next(self._addresses)
        for interface in instance.get("networkInterfaces", []):
            interface["networkIP"] = f"10.128.0.{number}"
            for access in interface.get("accessConfigs", []):
                access["natIP"] = f"203.0.113.{number}"  # TEST-NET-3: an address that exists nowhere
        late = self.appear_when_done
        if not late:
            self.stored.setdefault((project, scope), {})[name] = instance

        def running() -> None:
            instance["status"] = "RUNNING"
            if late:
                self.stored.setdefault((project, scope), {})[name] = instance

        def forget() -> None:
            self.stored.get((project, scope), {}).pop(name, None)

        return self.gce._operation(project, "insert", instance, running, scope=scope, undo=forget)

    def _delete(self, project: str, scope: str, name: str) -> JsonDict:
        instance = self._instance(project, scope, name)
        instance["status"] = "STOPPING"

        def gone() -> None:
            if self.stored.get((project, scope), {}).pop(name, None) is not None:
                self.deleted.append(name)

        return self.gce._operation(project, "delete", instance, gone, scope=scope)
