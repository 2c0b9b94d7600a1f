"""The fake's zonal instances and their disks, as far as a test instance (and a prune's look at
what uses an image) needs them.

    GET|POST    /projects/{p}/zones/{z}/instances           list (filter on labels), insert
    GET|DELETE  /projects/{p}/zones/{z}/instances/{name}    get, delete
    GET         /projects/{p}/zones/{z}/disks[/{name}]      list, get
    GET         /projects/{p}/aggregated/{instances|disks}  every zone's, by zone

An aggregated list names every zone, as GCE's does: one with nothing in it carries the warning
NO_RESULTS_ON_PAGE, and one a test made unreachable (`unreachable()`) either carries the warning
UNREACHABLE instead of its items, or is left out of the items and named in the list's
`unreachables` (what GCE answers a caller that opts in to partial results).

An insert is checked as GCE checks it (a name, one boot disk from an image that exists) and
answers a zone operation; the instance exists, STAGING, from the insert on (its name is taken),
and is RUNNING, with an internal and (given an access config) an external address, once the
operation is DONE (with `appear_when_done`, it shows only then, as the slowest GCE might). Those
addresses exist nowhere: nothing may connect to them. A test adds an instance as it stands with
`add()` (one that a killed run left, long ago).

As in GCE, an instance does not say which image it booted: its disks name their disk (`source`),
and the disk the image it was created from (`sourceImage`) and its instances (`users`). The boot
disk an insert's initializeParams describe is made with the instance (named after it unless
diskName says otherwise) and goes with it (autoDelete). The VMs of managed groups are listed
among the instances (and their boot disks among the disks), as GCE lists them.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import TYPE_CHECKING

from tests.fakes.gce_common import checked_name, error, insert_once, not_found, page
from tests.fakes.gce_migs import API_ROOT, JsonDict, Mig, Vm

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce

_IMAGE_PATH = re.compile(r"projects/([^/]+)/global/images/([^/]+)$")  # group(0): the path from projects/ on
# The zones every aggregated list names (with what a test put elsewhere), as GCE names all of its own.
ZONES = ("europe-west1-b", "europe-west1-c", "europe-west1-d", "us-central1-a", "us-central1-b", "us-central1-f")


class FakeInstances:
    def __init__(self, gce: FakeGce) -> None:
        self.gce = gce
        self.stored: dict[tuple[str, str], dict[str, JsonDict]] = {}  # (project, zone scope) -> name -> JSON
        self.disks: dict[tuple[str, str], dict[str, JsonDict]] = {}  # (project, zone scope) -> name -> JSON
        self.deleted: list[str] = []  # names, in the order their deletion was DONE
        self.appear_when_done = False
        self.unreachables: dict[tuple[str, str], str] = {}  # (project, zone scope) -> how aggregated lists say so
        self._addresses = itertools.count(2)

    # --- test API --------------------------------------------------------------------------------

    def all(self) -> list[JsonDict]:
        with self.gce._lock:
            self.gce.settle()
            return [copy.deepcopy(i) for found in self.stored.values() for i in found.values()]

    def disk(self, url: str) -> JsonDict:
        """The disk at `url` (an attached disk's `source`) as GCE holds it now."""
        found = re.search(r"projects/([^/]+)/(zones/[^/]+)/disks/([^/]+)$", url)
        if found is None:
            raise ValueError(f"not a disk URL: {url}")
        with self.gce._lock:
            return copy.deepcopy(self.disks[(found.group(1), found.group(2))][found.group(3)])

    def unreachable(self, project: str, zone: str, *, listed: str = "warning") -> None:
        """From now on, aggregated lists of `project` cannot read `zone`: its scope carries the
        warning UNREACHABLE (`listed="warning"`), or it is named in `unreachables` ("unreachables")."""
        if listed not in ("warning", "unreachables"):
            raise ValueError(f"listed is 'warning' or 'unreachables', not {listed!r}")
        with self.gce._lock:
            self.unreachables[(project, f"zones/{zone}")] = listed

    def add(
        self, project: str, zone: str, name: str, *, created: str, image: str | None = None, **fields: object
    ) -> None:
        """An instance, RUNNING, made at `created` (RFC 3339), with these fields (labels,
        scheduling, status...); with `image` ("projects/p/global/images/i"), booted from a disk
        created from it."""
        with self.gce._lock:
            scope = f"zones/{zone}"
            instance: JsonDict = {
                "kind": "compute#instance",
                "name": name,
                "id": self.gce._next_id(),
                "creationTimestamp": created,
                "status": "RUNNING",
                "zone": f"{API_ROOT}/projects/{project}/{scope}",
                "selfLink": f"{API_ROOT}/projects/{project}/{scope}/instances/{name}",
                **copy.deepcopy(fields),
            }
            if image is not None:
                instance["disks"] = [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": image}}]
                self._attach(project, scope, instance)
            self.stored.setdefault((project, scope), {})[name] = instance

    # --- handlers --------------------------------------------------------------------------------

    def route(
        self, method: str, project: str, scope: str, rest: list[str], query: dict[str, str], body: JsonDict
    ) -> JsonDict | None:
        match (method, rest):
            case ("GET", []):
                items = self._listed(project, "instances").get(scope, [])
                return page(items, query, "compute#instanceList", f"projects/{project}/{scope}/instances")
            case ("POST", []):
                return insert_once(self.gce, query, lambda: self._insert(project, scope, body))
            case ("GET", [name]):
                return copy.deepcopy(self._instance(project, scope, name))
            case ("DELETE", [name]):
                return self._delete(project, scope, name)
        return None

    def route_disks(self, method: str, project: str, scope: str, rest: list[str], query: dict[str, str]) -> JsonDict:
        found = self._listed(project, "disks").get(scope, [])
        match (method, rest):
            case ("GET", []):
                return page(found, query, "compute#diskList", f"projects/{project}/{scope}/disks")
            case ("GET", [name]):
                for disk in found:
                    if disk["name"] == name:
                        return copy.deepcopy(disk)
                raise not_found(f"projects/{project}/{scope}/disks/{name}")
        raise error(404, f"Not Found: {method} projects/{project}/{scope}/disks/{'/'.join(rest)}")

    def aggregated(self, project: str, collection: str, query: dict[str, str]) -> JsonDict:
        """GET /projects/{p}/aggregated/{instances|disks}: every zone's items, by zone (one page)."""
        if collection not in ("instances", "disks") or query.get("filter") or query.get("pageToken"):
            raise error(400, f"the fake answers aggregated/{collection} unfiltered, in one page")
        kind = {"instances": "compute#instanceAggregatedList", "disks": "compute#diskAggregatedList"}[collection]
        listed = self._listed(project, collection)
        scopes = {*listed, *(f"zones/{zone}" for zone in ZONES), *(s for p, s in self.unreachables if p == project)}
        by_zone: JsonDict = {}
        unreachables: list[str] = []
        for scope in sorted(scopes):
            items = listed.get(scope, [])
            how = self.unreachables.get((project, scope))
            if how == "unreachables":
                unreachables.append(scope)
            elif how == "warning":
                by_zone[scope] = {"warning": _warning("UNREACHABLE", f"Scope '{scope}' is unreachable.", scope)}
            elif items:
                by_zone[scope] = {collection: sorted(copy.deepcopy(items), key=lambda i: i["name"])}
            else:
                message = f"There are no results for scope '{scope}' on this page."
                by_zone[scope] = {"warning": _warning("NO_RESULTS_ON_PAGE", message, scope)}
        path = f"projects/{project}/aggregated/{collection}"
        answer: JsonDict = {"kind": kind, "id": path, "items": by_zone, "selfLink": f"{API_ROOT}/{path}"}
        return answer | ({"unreachables": unreachables} if unreachables else {})

    def _listed(self, project: str, collection: str) -> dict[str, list[JsonDict]]:
        """The instances (or disks) of `project` by zone scope, the managed groups' VMs among them."""
        stored = self.stored if collection == "instances" else self.disks
        out: dict[str, list[JsonDict]] = {}
        for (where, scope), items in stored.items():
            if where == project:
                out.setdefault(scope, []).extend(items.values())
        for mig in (m for migs in self.gce.groups.migs.values() for m in migs.values() if m.project == project):
            for vm in mig.vms:
                out.setdefault(f"zones/{vm.zone}", []).append(_vm_view(mig, vm)[0 if collection == "instances" else 1])
        return out

    def _attach(self, project: str, scope: str, instance: JsonDict) -> list[str]:
        """Make the disks the instance's initializeParams describe (as GCE does with the instance);
        each attached disk then names its disk by `source`. The names of the disks made."""
        made = []
        for index, attached in enumerate(instance.get("disks", [])):
            params = attached.pop("initializeParams", None)
            if params is not None:
                named = instance["name"] if attached.get("boot") else f"{instance['name']}-{index}"
                name = params.get("diskName") or named
                image = _IMAGE_PATH.search(params.get("sourceImage", ""))
                self.disks.setdefault((project, scope), {})[name] = {
                    "kind": "compute#disk",
                    "name": name,
                    "id": self.gce._next_id(),
                    "creationTimestamp": self.gce._now(),
                    "sizeGb": str(params.get("diskSizeGb") or 10),
                    "status": "READY",
                    "zone": f"{API_ROOT}/projects/{project}/{scope}",
                    "selfLink": f"{API_ROOT}/projects/{project}/{scope}/disks/{name}",
                    **({"sourceImage": f"{API_ROOT}/{image.group(0)}"} if image else {}),
                    "users": [],
                }
                attached["source"] = f"{API_ROOT}/projects/{project}/{scope}/disks/{name}"
                made.append(name)
            attached.update(kind="compute#attachedDisk", type="PERSISTENT", mode="READ_WRITE", index=index)
            attached.setdefault("deviceName", f"persistent-disk-{index}")
            attached.setdefault("autoDelete", False)
            disk = self.disks.get((project, scope), {}).get(str(attached.get("source", "")).rsplit("/", 1)[-1])
            if disk is not None:
                disk["users"].append(instance["selfLink"])
        return made

    def _detach(self, project: str, scope: str, instance: JsonDict) -> None:
        for attached in instance.get("disks", []):
            disks = self.disks.get((project, scope), {})
            name = str(attached.get("source", "")).rsplit("/", 1)[-1]
            if name in disks:
                disks[name]["users"] = [u for u in disks[name]["users"] if u != instance["selfLink"]]
                if attached.get("autoDelete"):
                    disks.pop(name)

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
        self._attach(project, scope, instance)
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
            self._detach(project, scope, instance)

        return self.gce._operation(project, "insert", instance, running, scope=scope, undo=forget)

    def _delete(self, project: str, scope: str, name: str) -> JsonDict:
        instance = self._instance(project, scope, name)
        instance["status"] = "STOPPING"

        def gone() -> None:
            if self.stored.get((project, scope), {}).pop(name, None) is not None:
                self._detach(project, scope, instance)
                self.deleted.append(name)

        return self.gce._operation(project, "delete", instance, gone, scope=scope)


def _warning(code: str, message: str, scope: str) -> JsonDict:
    return {"code": code, "message": message, "data": [{"key": "scope", "value": scope}]}


def _vm_view(mig: Mig, vm: Vm) -> tuple[JsonDict, JsonDict]:
    """A managed group's VM as GCE lists it among the instances, and its boot disk."""
    zone = f"{API_ROOT}/projects/{mig.project}/zones/{vm.zone}"
    image = _IMAGE_PATH.search(vm.image)
    disk: JsonDict = {
        "kind": "compute#disk",
        "name": vm.name,
        "id": vm.id,
        "status": "READY",
        "zone": zone,
        "selfLink": f"{zone}/disks/{vm.name}",
        **({"sourceImage": f"{API_ROOT}/{image.group(0)}"} if image else {}),
        "users": [vm.url(mig.project)],
    }
    instance: JsonDict = {
        "kind": "compute#instance",
        "name": vm.name,
        "id": vm.id,
        "status": "STAGING" if vm.status == "PROVISIONING" else vm.status,
        "zone": zone,
        "selfLink": vm.url(mig.project),
        "labels": dict(vm.labels),
        "metadata": {"items": [{"key": "created-by", "value": mig.body["selfLink"]}]},
        "disks": [
            {
                "kind": "compute#attachedDisk",
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "source": disk["selfLink"],
                "deviceName": "persistent-disk-0",
                "index": 0,
                "boot": True,
                "autoDelete": True,
            }
        ],
    }
    return instance, disk
