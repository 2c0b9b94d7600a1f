"""The fake's global backend services: get, patch of their backends (with the fingerprint GCE
requires) and getHealth, whose answer follows the fault hook of the groups' VMs."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.fakes.gce_common import checked_name, error, merge, not_found
from tests.fakes.gce_migs import API_ROOT, Fault, JsonDict, Mig, Vm

if TYPE_CHECKING:
    from tests.fakes.gce import FakeGce

_GROUP_PATH = re.compile(r"projects/([^/]+)/(zones/[^/]+|regions/[^/]+)/instanceGroups/([^/]+)$")


class FakeBackends:
    def __init__(
        self, gce: FakeGce, migs: dict[tuple[str, str], dict[str, Mig]], fault_for: Callable[[Vm], Fault | None]
    ) -> None:
        self.gce = gce
        self.migs = migs  # the groups' own table: an instance group is its MIG's
        self.fault_for = fault_for
        self.stored: dict[str, dict[str, JsonDict]] = {}  # project -> name -> JSON
        self._fingerprints = 0

    # --- test API --------------------------------------------------------------------------------

    def add(
        self, project: str, name: str, *, health_checks: tuple[str, ...] = (), groups: tuple[str, ...] = ()
    ) -> JsonDict:
        """Seed a backend service with the instance groups `groups` (URLs) as its backends."""
        with self.gce._lock:
            backend: JsonDict = {
                "kind": "compute#backendService",
                "id": self.gce._next_id(),
                "creationTimestamp": self.gce._now(),
                "name": checked_name(name),
                "healthChecks": list(health_checks),
                "backends": [{"group": g, "balancingMode": "UTILIZATION", "capacityScaler": 1.0} for g in groups],
                "protocol": "HTTP",
                "loadBalancingScheme": "EXTERNAL_MANAGED",
                "fingerprint": self.fingerprint(),
                "selfLink": f"{API_ROOT}/projects/{project}/global/backendServices/{name}",
            }
            self.stored.setdefault(project, {})[name] = backend
            return copy.deepcopy(backend)

    def get(self, project: str, name: str) -> JsonDict:
        with self.gce._lock:
            self.gce.settle()
            return copy.deepcopy(self._backend(project, name))

    def forget(self, group: str) -> None:
        """A deleted group leaves every backend service."""
        for backend in (b for bs in self.stored.values() for b in bs.values()):
            backend["backends"] = [b for b in backend.get("backends", []) if b.get("group") != group]

    # --- handlers --------------------------------------------------------------------------------

    def route(self, method: str, project: str, rest: list[str], body: JsonDict) -> JsonDict | None:
        match (method, rest):
            case ("GET", [name]):
                return copy.deepcopy(self._backend(project, name))
            case ("PATCH", [name]):
                return self._patch(project, name, body)
            case ("POST", [name, "getHealth"]):
                return self._health(project, name, body)
        return None

    def fingerprint(self) -> str:
        self._fingerprints += 1
        return f"fp-{self._fingerprints:06d}="

    def _backend(self, project: str, name: str) -> JsonDict:
        found = self.stored.get(project, {}).get(name)
        if found is None:
            raise not_found(f"projects/{project}/global/backendServices/{name}")
        return found

    def _patch(self, project: str, name: str, body: JsonDict) -> JsonDict:
        backend = self._backend(project, name)
        if body.get("fingerprint") != backend["fingerprint"]:
            raise error(412, "Supplied fingerprint does not match current fingerprint.", "conditionNotMet")
        for entry in body.get("backends") or []:
            entry["group"] = self._mig(entry.get("group", "")).body["instanceGroup"]

        def patch() -> None:
            merge(backend, {k: v for k, v in body.items() if k not in ("fingerprint", "selfLink", "id")})
            backend["fingerprint"] = self.fingerprint()

        return self.gce._operation(project, "patch", backend, patch, scope="global")

    def _mig(self, group_url: str) -> Mig:
        found = _GROUP_PATH.search(group_url)
        mig = self.migs.get((found.group(1), found.group(2)), {}).get(found.group(3)) if found else None
        if mig is None:
            raise not_found(group_url)
        return mig

    def _health(self, project: str, name: str, body: JsonDict) -> JsonDict:
        backend = self._backend(project, name)
        mig = self._mig(body.get("group", ""))
        if mig.body["instanceGroup"] not in {b.get("group") for b in backend.get("backends", [])}:
            raise error(
                400, f"Invalid value for field 'resource.group': '{body.get('group')}'. Not a backend of {name}."
            )
        states = []
        for vm in mig.vms:
            if vm.status != "RUNNING" or vm.action == "DELETING":
                continue
            fault = self.fault_for(vm)
            state = fault.health if fault is not None else "HEALTHY"
            states.append({"instance": vm.url(mig.project), "healthState": state, "port": 80})
        out: JsonDict = {"kind": "compute#backendServiceGroupHealth"}
        if states:
            out["healthStatus"] = states
        return out
