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
from typing import TYPE_CHECKING

from tests.fakes.gce_common import Collection, boot_image
from tests.fakes.gce_migs import API_ROOT, JsonDict

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce


class FakeInstances(Collection):
    PATH = "instances"
    LIST_KIND = "compute#instanceList"

    def __init__(self, gce: FakeGce) -> None:
        super().__init__(gce)  # stored: (project, zone scope) -> name -> JSON
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

    # --- handlers (route: Collection's) ----------------------------------------------------------

    def _insert(self, project: str, scope: str, body: JsonDict) -> JsonDict:
        name = self._new_name(project, scope, body)
        boot_image(self.gce, body.get("disks", []), "resource.disks")
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
        instance = self._found(project, scope, name)
        instance["status"] = "STOPPING"

        def gone() -> None:
            if self.stored.get((project, scope), {}).pop(name, None) is not None:
                self.deleted.append(name)

        return self.gce._operation(project, "delete", instance, gone, scope=scope)
