"""The fake's instance templates, managed instance groups and backend services (see gce.py).

Paths served, as the google-cloud-compute REST transports call them (``{scope}`` is ``global``,
``zones/{zone}`` or ``regions/{region}``)::

    GET|POST        /projects/{p}/global/instanceTemplates                    list, insert
    GET|DELETE      /projects/{p}/global/instanceTemplates/{name}             get, delete
    GET|POST        /projects/{p}/regions/{r}/instanceTemplates               (regional templates)
    GET|DELETE      /projects/{p}/regions/{r}/instanceTemplates/{name}
    GET|POST        /projects/{p}/{zones|regions}/{z}/instanceGroupManagers   list, insert
    GET|PATCH|DELETE /projects/{p}/{zones|regions}/{z}/instanceGroupManagers/{name}
    POST            .../instanceGroupManagers/{name}/resize?size=N
    POST            .../instanceGroupManagers/{name}/listManagedInstances
    GET|PATCH       /projects/{p}/global/backendServices/{name}               get, patch (fingerprint)
    POST            /projects/{p}/global/backendServices/{name}/getHealth

Every change answers with a RUNNING operation in the resource's scope (zone, region or global)
and is made when it is DONE, as GCE does. MIGs move over time (tests/fakes/gce_migs.py).
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from tests.fakes.gce_migs import API_ROOT, Fault, JsonDict, Mig, Updater, Vm, calculated

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce

_NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_TEMPLATE_PATH = re.compile(r"projects/([^/]+)/(global|regions/[^/]+)/instanceTemplates/([^/]+)$")
_IMAGE_PATH = re.compile(r"projects/([^/]+)/global/images/(?:family/)?([^/]+)$")
_GROUP_PATH = re.compile(r"projects/([^/]+)/(zones/[^/]+|regions/[^/]+)/instanceGroups/([^/]+)$")
ZONES_OF_REGION = ("b", "c", "d")


def _error(status: int, message: str, reason: str | None = None) -> Exception:
    from tests.fakes.gce import GceError

    return GceError(status, message, reason)


def _not_found(what: str) -> Exception:
    return _error(404, f"The resource '{what}' was not found")


def _checked_name(name: Any, field: str = "resource.name") -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _error(
            400, f"Invalid value for field '{field}': '{name}'. Must be a match of regex '[a-z]([-a-z0-9]*[a-z0-9])?'"
        )
    return name


def _merge(into: JsonDict, patch: JsonDict) -> None:
    """JSON merge patch (RFC 7396): objects merge, everything else (lists too) replaces."""
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


class FakeGroups:
    """State and handlers for templates, MIGs and backend services; owned by a FakeGce."""

    def __init__(self, gce: FakeGce) -> None:
        self.gce = gce
        self.templates: dict[tuple[str, str], dict[str, JsonDict]] = {}  # (project, scope) -> name -> JSON
        self.migs: dict[tuple[str, str], dict[str, Mig]] = {}
        self.backends: dict[str, dict[str, JsonDict]] = {}
        self.faults: list[Fault] = []
        self.updater = Updater(self.faults, self._names_of, self._make_vm)
        self._last_tick: float | None = None
        self._fingerprints = 0

    # ------------------------------------------------------------------------------- test API

    def add_template(
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
            return copy.deepcopy(self.make_template(project, f"regions/{region}" if region else "global", body))

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
    ) -> JsonDict:
        """Seed a stable managed instance group whose `size` VMs run `template` (a URL) already."""
        body: JsonDict = {"name": name, "instanceTemplate": template, "targetSize": size}
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

    def clear_faults(self) -> None:
        with self.gce._lock:
            self.faults.clear()

    def add_backend_service(
        self, project: str, name: str, *, health_checks: tuple[str, ...] = (), groups: tuple[str, ...] = ()
    ) -> JsonDict:
        """Seed a global backend service with the instance groups `groups` (URLs) as its backends."""
        with self.gce._lock:
            backend = self.make_backend(project, name, list(health_checks))
            backend["backends"] = [{"group": g, "balancingMode": "UTILIZATION", "capacityScaler": 1.0} for g in groups]
            return copy.deepcopy(backend)

    def backend_service(self, project: str, name: str) -> JsonDict:
        with self.gce._lock:
            self.gce.settle()
            return copy.deepcopy(self._backend(project, name))

    def template(self, project: str, name: str, *, region: str | None = None) -> JsonDict:
        with self.gce._lock:
            self.gce.settle()
            return copy.deepcopy(self._template(project, f"regions/{region}" if region else "global", name))

    def template_names(self, project: str, *, region: str | None = None) -> list[str]:
        with self.gce._lock:
            self.gce.settle()
            return sorted(self.templates.get((project, f"regions/{region}" if region else "global"), {}))

    # ------------------------------------------------------------------------------- routing

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
        if collection == "instanceTemplates" and (scope == "global" or scope.startswith("regions/")):
            match (method, rest):
                case ("GET", []):
                    return self._page(
                        list(self.templates.get((project, scope), {}).values()),
                        query,
                        "compute#instanceTemplateList",
                        f"projects/{project}/{scope}/instanceTemplates",
                    )
                case ("POST", []):
                    return self._insert_template(project, scope, body, query)
                case ("GET", [name]):
                    return copy.deepcopy(self._template(project, scope, name))
                case ("DELETE", [name]):
                    return self._delete_template(project, scope, name)
        if collection == "instanceGroupManagers" and scope != "global":
            match (method, rest):
                case ("GET", []):
                    return self._page(
                        [m.view() for m in self.migs.get((project, scope), {}).values()],
                        query,
                        "compute#instanceGroupManagerList",
                        f"projects/{project}/{scope}/instanceGroupManagers",
                    )
                case ("POST", []):
                    return self._insert_mig(project, scope, body, query)
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
        if collection == "backendServices" and scope == "global":
            match (method, rest):
                case ("GET", [name]):
                    return copy.deepcopy(self._backend(project, name))
                case ("PATCH", [name]):
                    return self._patch_backend(project, name, body)
                case ("POST", [name, "getHealth"]):
                    return self._health(project, name, body)
        raise _error(404, f"Not Found: {method} projects/{project}/{scope}/{collection}/{'/'.join(rest)}")

    def _page(self, items: list[JsonDict], query: dict[str, str], kind: str, path: str) -> JsonDict:
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

    # ------------------------------------------------------------------------------- templates

    def _template(self, project: str, scope: str, name: str) -> JsonDict:
        found = self.templates.get((project, scope), {}).get(name)
        if found is None:
            raise _not_found(f"projects/{project}/{scope}/instanceTemplates/{name}")
        return found

    def template_by_url(self, url: str) -> JsonDict:
        found = _TEMPLATE_PATH.search(url or "")
        if found is None:
            raise _error(400, f"Invalid value for field 'instanceTemplate': '{url}'. The URL is malformed.")
        return self._template(found.group(1), found.group(2), found.group(3))

    def make_template(self, project: str, scope: str, body: JsonDict) -> JsonDict:
        name = _checked_name(body.get("name"))
        if name in self.templates.get((project, scope), {}):
            raise _error(409, f"The resource 'projects/{project}/{scope}/instanceTemplates/{name}' already exists")
        properties = copy.deepcopy(body.get("properties") or {})
        boot = [d for d in properties.get("disks", []) if d.get("boot")]
        if len(boot) != 1:
            raise _error(400, "Invalid value for field 'resource.properties.disks': exactly one boot disk is required.")
        source = (boot[0].get("initializeParams") or {}).get("sourceImage", "")
        image = _IMAGE_PATH.search(source)
        if image is None:
            raise _error(
                400, f"Invalid value for field 'resource.properties.disks[0].initializeParams.sourceImage': '{source}'."
            )
        if "/family/" not in source and image.group(2) not in self.gce._images.get(image.group(1), {}):
            raise _not_found(f"projects/{image.group(1)}/global/images/{image.group(2)}")
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
        self.templates.setdefault((project, scope), {})[name] = template
        return template

    def _insert_template(self, project: str, scope: str, body: JsonDict, query: dict[str, str]) -> JsonDict:
        request_id = query.get("requestId")
        if request_id and request_id in self.gce._request_ids:
            return copy.deepcopy(self.gce._request_ids[request_id])
        template = self.make_template(project, scope, body)  # the name is taken at once
        op = self.gce._operation(project, "insert", template, None, scope=scope)
        if request_id:
            self.gce._request_ids[request_id] = op
        return op

    def _delete_template(self, project: str, scope: str, name: str) -> JsonDict:
        template = self._template(project, scope, name)
        for mig in (m for migs in self.migs.values() for m in migs.values()):
            if template["selfLink"] in {v["instanceTemplate"] for v in mig.versions()} | {
                mig.body.get("instanceTemplate")
            }:
                raise _error(
                    400,
                    f"The instance_template resource 'projects/{project}/{scope}/instanceTemplates/{name}' is already "
                    f"being used by 'projects/{mig.project}/{mig.scope}/instanceGroupManagers/{mig.name}'",
                    "resourceInUseByAnotherResource",
                )

        def gone() -> None:
            self.templates.get((project, scope), {}).pop(name, None)

        return self.gce._operation(project, "delete", template, gone, scope=scope)

    def _names_of(self, template_url: str) -> set[str]:
        """The names a fault may match for VMs of this template: the template's and its image's."""
        found = _TEMPLATE_PATH.search(template_url)
        names = {found.group(3)} if found else set()
        try:
            template = self.template_by_url(template_url)
        except Exception:  # a template deleted under a running VM: only its name is known
            return names
        names.add(_image_of(template).rpartition("/")[2])
        return names

    # ------------------------------------------------------------------------------- MIGs

    def _mig(self, project: str, scope: str, name: str) -> Mig:
        found = self.migs.get((project, scope), {}).get(name)
        if found is None:
            raise _not_found(f"projects/{project}/{scope}/instanceGroupManagers/{name}")
        return found

    def _check_versions(self, body: JsonDict, size: int) -> None:
        versions = body.get("versions")
        if versions is not None:
            if sum(1 for v in versions if "targetSize" not in v) != 1:
                raise _error(
                    400, "Invalid value for field 'resource.versions': exactly one version must have no targetSize."
                )
            for version in versions:
                self.template_by_url(version.get("instanceTemplate", ""))
        policy = body.get("updatePolicy") or {}
        for key in ("maxSurge", "maxUnavailable"):
            if "percent" in policy.get(key, {}) and size < 10:
                raise _error(
                    400,
                    f"Invalid value for field 'resource.updatePolicy.{key}.percent': "
                    "a percentage needs 10 or more instances.",
                )

    def make_mig(self, project: str, scope: str, body: JsonDict, *, ready: bool) -> Mig:
        name = _checked_name(body.get("name"))
        if name in self.migs.get((project, scope), {}):
            raise _error(409, f"The resource 'projects/{project}/{scope}/instanceGroupManagers/{name}' already exists")
        size = int(body.get("targetSize", 0))
        self._check_versions(body, size)
        template = body.get("instanceTemplate") or (body.get("versions") or [{}])[-1].get("instanceTemplate", "")
        self.template_by_url(template)
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
            "fingerprint": self._fingerprint(),
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

    def _insert_mig(self, project: str, scope: str, body: JsonDict, query: dict[str, str]) -> JsonDict:
        request_id = query.get("requestId")
        if request_id and request_id in self.gce._request_ids:
            return copy.deepcopy(self.gce._request_ids[request_id])
        mig = self.make_mig(project, scope, body, ready=False)
        op = self.gce._operation(project, "insert", mig.body, None, scope=scope)
        if request_id:
            self.gce._request_ids[request_id] = op
        return op

    def _patch_mig(self, project: str, scope: str, name: str, body: JsonDict) -> JsonDict:
        mig = self._mig(project, scope, name)
        size = int(body.get("targetSize", mig.size))
        self._check_versions(body, size)
        allowed = {"versions", "updatePolicy", "targetSize", "autoHealingPolicies", "instanceTemplate", "namedPorts"}
        extra = sorted(set(body) - allowed - {"name", "fingerprint"})
        if extra:
            raise _error(400, f"Invalid value for field 'resource': the fake cannot patch {', '.join(extra)}")

        def patch() -> None:
            _merge(mig.body, {k: v for k, v in body.items() if k in allowed})
            if "versions" in body and "instanceTemplate" not in body:
                base = [v for v in mig.body["versions"] if "targetSize" not in v]
                mig.body["instanceTemplate"] = base[0]["instanceTemplate"]
            mig.body["fingerprint"] = self._fingerprint()

        if body.get("updatePolicy"):
            policy = {**mig.body.get("updatePolicy", {}), **body["updatePolicy"]}
            if calculated(policy.get("maxSurge", {}), size) == 0 == calculated(policy.get("maxUnavailable", {}), size):
                raise _error(
                    400,
                    "Invalid value for field 'resource.updatePolicy': maxSurge and maxUnavailable cannot both be 0.",
                )
        return self.gce._operation(project, "patch", mig.body, patch, scope=scope)

    def _resize(self, project: str, scope: str, name: str, query: dict[str, str]) -> JsonDict:
        mig = self._mig(project, scope, name)
        try:
            size = int(query["size"])
        except (KeyError, ValueError):
            raise _error(400, "Invalid value for field 'size'.") from None
        if size < 0:
            raise _error(400, f"Invalid value for field 'size': '{size}'. Must be greater than or equal to 0")

        def resize() -> None:
            mig.body["targetSize"] = size

        return self.gce._operation(project, "compute.instanceGroupManagers.resize", mig.body, resize, scope=scope)

    def _delete_mig(self, project: str, scope: str, name: str) -> JsonDict:
        mig = self._mig(project, scope, name)

        def gone() -> None:
            self.migs.get((project, scope), {}).pop(name, None)
            for backend in (b for bs in self.backends.values() for b in bs.values()):
                backend["backends"] = [
                    b for b in backend.get("backends", []) if b.get("group") != mig.body["instanceGroup"]
                ]

        return self.gce._operation(project, "delete", mig.body, gone, scope=scope)

    def _make_vm(self, mig: Mig, template_url: str) -> Vm:
        template = self.template_by_url(template_url)
        mig.serial += 1
        suffix = format(mig.serial * 7919 % 46656, "04x")[-4:]  # a stable, name-like suffix
        return Vm(
            name=f"{mig.body.get('baseInstanceName') or mig.name}-{suffix}",
            zone=mig.zones[mig.serial % len(mig.zones)],
            template=template_url,
            image=_image_of(template),
            labels=dict(template["properties"].get("labels") or {}),
            id=self.gce._next_id(),
        )

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

    # ------------------------------------------------------------------------------- backend services

    def _fingerprint(self) -> str:
        self._fingerprints += 1
        return f"fp-{self._fingerprints:06d}="

    def make_backend(self, project: str, name: str, health_checks: list[str]) -> JsonDict:
        backend: JsonDict = {
            "kind": "compute#backendService",
            "id": self.gce._next_id(),
            "creationTimestamp": self.gce._now(),
            "name": _checked_name(name),
            "healthChecks": list(health_checks),
            "backends": [],
            "protocol": "HTTP",
            "loadBalancingScheme": "EXTERNAL_MANAGED",
            "fingerprint": self._fingerprint(),
            "selfLink": f"{API_ROOT}/projects/{project}/global/backendServices/{name}",
        }
        self.backends.setdefault(project, {})[name] = backend
        return backend

    def _backend(self, project: str, name: str) -> JsonDict:
        found = self.backends.get(project, {}).get(name)
        if found is None:
            raise _not_found(f"projects/{project}/global/backendServices/{name}")
        return found

    def _patch_backend(self, project: str, name: str, body: JsonDict) -> JsonDict:
        backend = self._backend(project, name)
        if body.get("fingerprint") != backend["fingerprint"]:
            raise _error(412, "Supplied fingerprint does not match current fingerprint.", "conditionNotMet")
        for entry in body.get("backends") or []:
            if self._group_mig(entry.get("group", "")) is None:
                raise _not_found(entry.get("group", ""))

        def patch() -> None:
            _merge(backend, {k: v for k, v in body.items() if k not in ("fingerprint", "selfLink", "id")})
            backend["fingerprint"] = self._fingerprint()

        return self.gce._operation(project, "patch", backend, patch, scope="global")

    def _group_mig(self, group_url: str) -> Mig | None:
        found = _GROUP_PATH.search(group_url)
        if found is None:
            return None
        return self.migs.get((found.group(1), found.group(2)), {}).get(found.group(3))

    def _health(self, project: str, name: str, body: JsonDict) -> JsonDict:
        backend = self._backend(project, name)
        group = body.get("group", "")
        if group not in {b.get("group") for b in backend.get("backends", [])}:
            raise _error(400, f"Invalid value for field 'resource.group': '{group}'. Not a backend of {name}.")
        mig = self._group_mig(group)
        states = []
        for vm in mig.vms if mig else []:
            if vm.status != "RUNNING" or vm.action == "DELETING":
                continue
            fault = self.updater.fault_for(vm)
            state = fault.health if fault is not None else "HEALTHY"
            states.append({"instance": vm.url(mig.project if mig else project), "healthState": state, "port": 80})
        return (
            {"kind": "compute#backendServiceGroupHealth", "healthStatus": states}
            if states
            else {"kind": "compute#backendServiceGroupHealth"}
        )


def _scope(zone: str | None, region: str | None) -> str:
    if (zone is None) == (region is None):
        raise ValueError("give exactly one of zone or region")
    return f"zones/{zone}" if zone else f"regions/{region}"


def _image_of(template: JsonDict) -> str:
    for disk in template["properties"].get("disks", []):
        if disk.get("boot"):
            return str((disk.get("initializeParams") or {}).get("sourceImage", ""))
    return ""
