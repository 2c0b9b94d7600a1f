"""The fake's managed instance groups, zonal and regional, and the front door of its other
group resources: instance templates (gce_templates.py) and backend services (gce_backends.py).

Paths served, as the google-cloud-compute REST transports call them::

    GET|POST         /projects/{p}/global/instanceTemplates                    list, insert
    GET|DELETE       /projects/{p}/global/instanceTemplates/{name}             get, delete
    GET|POST|DELETE  /projects/{p}/regions/{r}/instanceTemplates[/{name}]      (regional templates)
    GET|POST         /projects/{p}/{zones|regions}/{z}/instanceGroupManagers   list, insert
    GET|PATCH|DELETE /projects/{p}/{zones|regions}/{z}/instanceGroupManagers/{name}
    POST             .../instanceGroupManagers/{name}/resize?size=N
    POST             .../instanceGroupManagers/{name}/listManagedInstances
    GET|PATCH        /projects/{p}/global/backendServices/{name}               get, patch (fingerprint)
    GET|POST|DELETE  /projects/{p}/zones/{z}/instances[/{name}]                (instances: gce_instances.py)
    GET              /projects/{p}/zones/{z}/disks[/{name}], /projects/{p}/aggregated/{instances|disks}
    POST             /projects/{p}/global/backendServices/{name}/getHealth

Every change answers with a RUNNING operation in the resource's scope (zone, region or global)
and is made when it is DONE, as GCE does. Groups move over time (gce_migs.py).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from tests.fakes.gce_backends import FakeBackends
from tests.fakes.gce_common import checked_name, error, insert_once, merge, not_found, page
from tests.fakes.gce_instances import FakeInstances
from tests.fakes.gce_migs import API_ROOT, Fault, JsonDict, Mig, Updater, Vm, calculated
from tests.fakes.gce_templates import FakeTemplates, image_of

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce

ZONES_OF_REGION = ("b", "c", "d")


class FakeGroups:
    """State and handlers of the group resources; owned by a FakeGce (its `groups`). Tests seed and
    read through `templates`, `backends` and the methods below."""

    def __init__(self, gce: FakeGce) -> None:
        self.gce = gce
        self.migs: dict[tuple[str, str], dict[str, Mig]] = {}
        self.faults: list[Fault] = []
        self.templates = FakeTemplates(gce, self._user_of)
        self.updater = Updater(self.faults, self.templates.names_of, self._make_vm)
        self.backends = FakeBackends(gce, self.migs, self.updater.fault_for)
        self.instances = FakeInstances(gce)  # test instances (bakery test), apart from the groups' VMs
        self._last_tick: float | None = None

    # --- test API --------------------------------------------------------------------------------

    def add_mig(
        self,
        project: str,
        name: str,
        *,
        template: str,
        size: int,
        zone: str | None = None,
        region: str | None = None,
        health_check: str | None = None,
        update_policy: JsonDict | None = None,
    ) -> JsonDict:
        """Seed a stable managed instance group whose `size` VMs run `template` (a URL) already,
        with `update_policy` (REST names) over the default one."""
        body: JsonDict = {"name": name, "instanceTemplate": template, "targetSize": size}
        if update_policy:
            body["updatePolicy"] = update_policy
        if health_check:
            body["autoHealingPolicies"] = [{"healthCheck": health_check, "initialDelaySec": 60}]
        with self.gce._lock:
            self.gce.settle()
            return copy.deepcopy(self.make_mig(project, _scope(zone, region), body, ready=True).view())

    def mig(self, project: str, name: str, *, zone: str | None = None, region: str | None = None) -> JsonDict:
        """The group as GET answers it now."""
        with self.gce._lock:
            self.gce.settle()
            return copy.deepcopy(self._mig(project, _scope(zone, region), name).view())

    def set_policy(
        self, project: str, name: str, policy: JsonDict, *, zone: str | None = None, region: str | None = None
    ) -> None:
        """Give the group another update policy (REST names), as its owner would."""
        with self.gce._lock:
            mig = self._mig(project, _scope(zone, region), name)
            self._check_policy(policy, mig.size, mig.zones, regional=mig.scope.startswith("regions/"))
            mig.body["updatePolicy"] = copy.deepcopy(policy)

    def vms(self, project: str, name: str, *, zone: str | None = None, region: str | None = None) -> list[JsonDict]:
        """The group's VMs now: name, zone, template and image (URLs), labels, status, action, health."""
        with self.gce._lock:
            self.gce.settle()
            return [copy.deepcopy(vars(vm)) for vm in self._mig(project, _scope(zone, region), name).vms]

    def fault(self, match: str, *, health: str = "UNHEALTHY", stuck: bool = False) -> None:
        """From now on, VMs whose template or boot image is named `match` answer their health check
        with `health` (the backend service's too), or never finish booting (`stuck`)."""
        with self.gce._lock:
            self.faults.append(Fault(match, health, stuck))

    # --- routing ---------------------------------------------------------------------------------

    def route(
        self,
        method: str,
        project: str,
        scope: str,
        collection: str,
        rest: list[str],
        query: dict[str, str],
        body: JsonDict,
    ) -> JsonDict:
        answer = None
        if collection == "instanceTemplates" and not scope.startswith("zones/"):
            answer = self.templates.route(method, project, scope, rest, query, body)
        elif collection == "instanceGroupManagers" and scope != "global":
            answer = self._route_migs(method, project, scope, rest, query, body)
        elif collection == "backendServices" and scope == "global":
            answer = self.backends.route(method, project, rest, body)
        elif collection == "instances" and scope.startswith("zones/"):
            answer = self.instances.route(method, project, scope, rest, query, body)
        elif collection == "disks" and scope.startswith("zones/"):
            answer = self.instances.route_disks(method, project, scope, rest, query)
        elif scope == "aggregated" and method == "GET":
            answer = self.instances.aggregated(project, collection, query)
        if answer is None:
            raise error(404, f"Not Found: {method} projects/{project}/{scope}/{collection}/{'/'.join(rest)}")
        return answer

    def _route_migs(
        self, method: str, project: str, scope: str, rest: list[str], query: dict[str, str], body: JsonDict
    ) -> JsonDict | None:
        match (method, rest):
            case ("GET", []):
                items = [m.view() for m in self.migs.get((project, scope), {}).values()]
                path = f"projects/{project}/{scope}/instanceGroupManagers"
                return page(items, query, "compute#instanceGroupManagerList", path)
            case ("POST", []):
                return insert_once(self.gce, query, lambda: self._insert_mig(project, scope, body))
            case ("GET", [name]):
                return copy.deepcopy(self._mig(project, scope, name).view())
            case ("PATCH", [name]):
                return self._patch_mig(project, scope, name, body)
            case ("DELETE", [name]):
                return self._delete_mig(project, scope, name)
            case ("POST", [name, "resize"]):
                return self._resize(project, scope, name, query)
            case ("POST", [name, "listManagedInstances"]):
                managed = self._mig(project, scope, name).managed()
                return {"managedInstances": managed} if managed else {}
        return None

    def _user_of(self, template_url: str) -> str | None:
        for mig in (m for migs in self.migs.values() for m in migs.values()):
            if template_url in {v["instanceTemplate"] for v in mig.versions()} | {mig.body.get("instanceTemplate")}:
                return f"projects/{mig.project}/{mig.scope}/instanceGroupManagers/{mig.name}"
        return None

    # --- MIGs ------------------------------------------------------------------------------------

    def _mig(self, project: str, scope: str, name: str) -> Mig:
        found = self.migs.get((project, scope), {}).get(name)
        if found is None:
            raise not_found(f"projects/{project}/{scope}/instanceGroupManagers/{name}")
        return found

    def _check_versions(self, body: JsonDict, size: int) -> None:
        """Refuse what GCE refuses; template references become full URLs, as GCE stores them."""
        if body.get("instanceTemplate"):
            body["instanceTemplate"] = self.templates.by_url(body["instanceTemplate"])["selfLink"]
        versions = body.get("versions")
        if versions is not None:
            for version in versions:
                version["instanceTemplate"] = self.templates.by_url(version.get("instanceTemplate", ""))["selfLink"]
            if sum(1 for v in versions if "targetSize" not in v) != 1:
                raise error(
                    400, "Invalid value for field 'resource.versions': exactly one version must have no targetSize."
                )
        policy = body.get("updatePolicy") or {}
        for key in ("maxSurge", "maxUnavailable"):
            if "percent" in policy.get(key, {}) and size < 10:
                raise error(
                    400,
                    f"Invalid value for field 'resource.updatePolicy.{key}.percent': "
                    "a percentage needs 10 or more instances.",
                )

    def _check_policy(self, policy: JsonDict, size: int, zones: tuple[str, ...], *, regional: bool) -> None:
        """GCE's rules for the update policy a group would have: maxSurge and maxUnavailable not
        both 0; for a regional group, a fixed value 0 or at least its number of zones."""
        for key in ("maxSurge", "maxUnavailable"):
            fixed = policy.get(key, {}).get("fixed")
            if regional and fixed is not None and 0 < int(fixed) < len(zones):
                raise error(
                    400,
                    f"Invalid value for field 'resource.updatePolicy.{key}.fixed': '{fixed}'. Fixed "
                    f"updatePolicy.{key} for regional managed instance group has to be either 0 or at least "
                    "equal to the number of zones.",
                )
        if calculated(policy.get("maxSurge", {}), size) == 0 == calculated(policy.get("maxUnavailable", {}), size):
            raise error(
                400, "Invalid value for field 'resource.updatePolicy': maxSurge and maxUnavailable cannot both be 0."
            )

    def make_mig(self, project: str, scope: str, body: JsonDict, *, ready: bool) -> Mig:
        name = checked_name(body.get("name"))
        if name in self.migs.get((project, scope), {}):
            raise error(409, f"The resource 'projects/{project}/{scope}/instanceGroupManagers/{name}' already exists")
        size = int(body.get("targetSize", 0))
        self._check_versions(body, size)
        template = body.get("instanceTemplate") or (body.get("versions") or [{}])[-1].get("instanceTemplate", "")
        self.templates.by_url(template)
        kind, where = scope.split("/")
        zones = (where,) if kind == "zones" else tuple(f"{where}-{z}" for z in ZONES_OF_REGION)
        stored: JsonDict = {
            **copy.deepcopy(body),
            "kind": "compute#instanceGroupManager",
            "id": self.gce._next_id(),
            "creationTimestamp": self.gce._now(),
            "instanceTemplate": template,
            "targetSize": size,
            "baseInstanceName": body.get("baseInstanceName") or name,
            "fingerprint": self.backends.fingerprint(),
            "instanceGroup": f"{API_ROOT}/projects/{project}/{scope}/instanceGroups/{name}",
            "selfLink": f"{API_ROOT}/projects/{project}/{scope}/instanceGroupManagers/{name}",
            "updatePolicy": {
                "type": "OPPORTUNISTIC",
                "minimalAction": "REPLACE",
                "maxSurge": {"fixed": len(zones)},
                "maxUnavailable": {"fixed": len(zones)},
                **copy.deepcopy(body.get("updatePolicy") or {}),
            },
        }
        stored.setdefault("versions", [{"instanceTemplate": template}])
        stored[kind[:-1]] = f"{API_ROOT}/projects/{project}/{scope}"
        if kind == "regions":
            stored["distributionPolicy"] = {
                "zones": [{"zone": f"{API_ROOT}/projects/{project}/zones/{z}"} for z in zones]
            }
        self._check_policy(stored["updatePolicy"], size, zones, regional=kind == "regions")
        mig = Mig(project, scope, stored, zones)
        self.migs.setdefault((project, scope), {})[name] = mig
        if ready:  # seeded by a test: its VMs run already
            for _ in range(size):
                vm = self._make_vm(mig, template)
                vm.status, vm.action = "RUNNING", "NONE"
                if mig.checked:
                    vm.health, vm.was_healthy = "HEALTHY", True
                mig.vms.append(vm)
        return mig

    def _insert_mig(self, project: str, scope: str, body: JsonDict) -> JsonDict:
        mig = self.make_mig(project, scope, body, ready=False)
        return self.gce._operation(project, "insert", mig.body, None, scope=scope)

    def _patch_mig(self, project: str, scope: str, name: str, body: JsonDict) -> JsonDict:
        mig = self._mig(project, scope, name)
        size = int(body.get("targetSize", mig.size))
        self._check_versions(body, size)
        allowed = {"versions", "updatePolicy", "targetSize", "autoHealingPolicies", "instanceTemplate", "namedPorts"}
        extra = sorted(set(body) - allowed - {"name", "fingerprint"})
        if extra:
            raise error(400, f"Invalid value for field 'resource': the fake cannot patch {', '.join(extra)}")
        if "fingerprint" in body and body["fingerprint"] != mig.body.get("fingerprint"):
            raise error(412, "Supplied fingerprint does not match current fingerprint.", "conditionNotMet")

        def patch() -> None:
            merge(mig.body, {k: v for k, v in body.items() if k in allowed})
            if "versions" in body and "instanceTemplate" not in body:
                base = [v for v in mig.body["versions"] if "targetSize" not in v]
                mig.body["instanceTemplate"] = base[0]["instanceTemplate"]
            mig.body["fingerprint"] = self.backends.fingerprint()

        if body.get("updatePolicy"):
            policy = {**mig.body.get("updatePolicy", {}), **body["updatePolicy"]}
            self._check_policy(policy, size, mig.zones, regional=mig.scope.startswith("regions/"))
        return self.gce._operation(project, "patch", mig.body, patch, scope=scope)

    def _resize(self, project: str, scope: str, name: str, query: dict[str, str]) -> JsonDict:
        mig = self._mig(project, scope, name)
        try:
            size = int(query["size"])
        except (KeyError, ValueError):
            raise error(400, "Invalid value for field 'size'.") from None
        if size < 0:
            raise error(400, f"Invalid value for field 'size': '{size}'. Must be greater than or equal to 0")

        def resize() -> None:
            mig.body["targetSize"] = size

        return self.gce._operation(project, "compute.instanceGroupManagers.resize", mig.body, resize, scope=scope)

    def _delete_mig(self, project: str, scope: str, name: str) -> JsonDict:
        mig = self._mig(project, scope, name)

        def gone() -> None:
            self.migs.get((project, scope), {}).pop(name, None)
            self.backends.forget(mig.body["instanceGroup"])

        return self.gce._operation(project, "delete", mig.body, gone, scope=scope)

    def _make_vm(self, mig: Mig, template_url: str) -> Vm:
        template = self.templates.by_url(template_url)
        mig.serial += 1
        suffix = format(mig.serial * 7919 % 46656, "04x")[-4:]  # a stable, name-like suffix
        return Vm(
            name=f"{mig.body.get('baseInstanceName') or mig.name}-{suffix}",
            zone=mig.zones[mig.serial % len(mig.zones)],
            template=template_url,
            image=image_of(template),
            labels=dict(template["properties"].get("labels") or {}),
            id=self.gce._next_id(),
        )

    def restart_ticks(self) -> None:
        """Count ticks afresh from the next `advance` (its clock changed)."""
        self._last_tick = None

    def advance(self, now: float, step: float) -> None:
        """Run the ticks due by `now` (all until nothing moves when `step` is 0)."""
        if self._last_tick is None:
            self._last_tick = now
        if step > 0:
            ticks = int((now - self._last_tick) / step)
            if ticks <= 0:
                return
            self._last_tick += ticks * step
            ticks = min(ticks, 200)
        else:
            ticks = 200
        for _ in range(ticks):
            moved = False
            for mig in [m for migs in self.migs.values() for m in migs.values()]:
                moved = self.updater.tick(mig) or moved
            if not moved:
                return


def _scope(zone: str | None, region: str | None) -> str:
    if (zone is None) == (region is None):
        raise ValueError("give exactly one of zone or region")
    return f"zones/{zone}" if zone else f"regions/{region}"
