"""The fake's managed instance groups: their instances and the MIG updater that moves them.

A group holds VMs, each created from one instance template. Time passes in ticks (FakeGce's
``mig_step`` seconds each; with 0, every request runs ticks until nothing moves). Each tick:

- a VM being created (``CREATING``, ``PROVISIONING``) boots (``RUNNING``); with an autohealing
  health check it is ``VERIFYING`` for a tick, then ``HEALTHY`` (``NONE``) or, when a fault
  matches it, ``UNHEALTHY`` (it stays ``VERIFYING``: autohealing never gets it through);
  a fault with ``stuck`` keeps it ``CREATING`` for ever;
- a VM being deleted (``DELETING``) is gone;
- the updater (``PROACTIVE`` only; ``OPPORTUNISTIC`` moves nothing, except for a resize) creates
  VMs of the templates short of their version's target, at most ``maxSurge`` above the group's
  size, and deletes VMs of templates over their target (or in no version) while at least
  ``targetSize - maxUnavailable`` VMs stay available (RUNNING, HEALTHY at least once when the
  group has a health check), as GCE's does.

``status.isStable`` is true when no VM has an action and the group has its size;
``status.versionTarget.isReached`` when every VM runs the template its version says.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]

API_ROOT = "https://www.googleapis.com/compute/v1"


@dataclass
class Fault:
    """VMs whose template (or whose template's boot image) has this name go unhealthy or never boot."""

    match: str
    health: str = "UNHEALTHY"
    stuck: bool = False


@dataclass
class Vm:
    name: str
    zone: str
    template: str  # the instance template URL it was created from
    image: str  # its boot disk's image URL
    labels: dict[str, str]
    id: str
    status: str = "PROVISIONING"
    action: str = "CREATING"
    health: str | None = None  # HEALTHY, UNHEALTHY; None before it is checked (or without a check)
    was_healthy: bool = False

    def url(self, project: str) -> str:
        return f"{API_ROOT}/projects/{project}/zones/{self.zone}/instances/{self.name}"


@dataclass
class Mig:
    """One managed instance group: its JSON (as stored, without the computed status) and its VMs."""

    project: str
    scope: str  # "zones/z" or "regions/r"
    body: JsonDict
    zones: tuple[str, ...]
    vms: list[Vm] = field(default_factory=list)
    serial: int = 0

    @property
    def name(self) -> str:
        return str(self.body["name"])

    @property
    def size(self) -> int:
        return int(self.body.get("targetSize", 0))

    @property
    def checked(self) -> bool:
        return bool(self.body.get("autoHealingPolicies"))

    def versions(self) -> list[JsonDict]:
        return list(self.body.get("versions") or [{"instanceTemplate": self.body["instanceTemplate"]}])

    def desired(self) -> dict[str, int]:
        """Instances wanted per template: versions with a targetSize first, the rest to the one without."""
        wanted: dict[str, int] = {}
        left = self.size
        base = None
        for version in self.versions():
            target = version.get("targetSize")
            if target is None:
                base = version["instanceTemplate"]
                continue
            count = min(left, calculated(target, self.size))
            wanted[version["instanceTemplate"]] = wanted.get(version["instanceTemplate"], 0) + count
            left -= count
        if base is not None:
            wanted[base] = wanted.get(base, 0) + left
        return wanted

    def available(self, vm: Vm) -> bool:
        return vm.status == "RUNNING" and vm.action == "NONE" and (vm.was_healthy or not self.checked)

    def stable(self) -> bool:
        live = [vm for vm in self.vms if vm.action != "DELETING"]
        return all(vm.action == "NONE" for vm in self.vms) and len(live) == self.size

    def reached(self) -> bool:
        live = Counter(vm.template for vm in self.vms if vm.action != "DELETING")
        wanted = {t: n for t, n in self.desired().items() if n}
        return dict(live) == wanted

    def actions(self) -> JsonDict:
        counts = Counter(vm.action.lower() for vm in self.vms)
        names = ("abandoning", "creating", "creatingWithoutRetries", "deleting", "none", "recreating")
        names += ("refreshing", "restarting", "resuming", "starting", "stopping", "suspending", "verifying")
        return {name: counts.get(name.lower(), 0) for name in names}

    def view(self) -> JsonDict:
        """The group as GET answers it: the stored fields and what is computed from its VMs."""
        out = dict(self.body)
        out["currentActions"] = self.actions()
        out["status"] = {
            "isStable": self.stable(),
            "versionTarget": {"isReached": self.reached()},
            "stateful": {"hasStatefulConfig": False, "perInstanceConfigs": {"allEffective": True}},
            "allInstancesConfig": {"effective": True},
        }
        policy = out.get("updatePolicy")
        if policy:
            policy = dict(policy)
            for key in ("maxSurge", "maxUnavailable"):
                if key in policy:
                    policy[key] = {**policy[key], "calculated": calculated(policy[key], self.size)}
            out["updatePolicy"] = policy
        out["versions"] = [
            {**v, "targetSize": {**v["targetSize"], "calculated": calculated(v["targetSize"], self.size)}}
            if "targetSize" in v
            else v
            for v in self.body.get("versions", [])
        ]
        return out

    def managed(self) -> list[JsonDict]:
        """listManagedInstances' answer, one entry per VM."""
        names = {v["instanceTemplate"]: v.get("name", "") for v in self.versions()}
        out = []
        for vm in self.vms:
            entry: JsonDict = {
                "instance": vm.url(self.project),
                "id": vm.id,
                "name": vm.name,
                "instanceStatus": vm.status,
                "currentAction": vm.action,
                "version": {"instanceTemplate": vm.template, "name": names.get(vm.template, "")},
            }
            if self.checked and vm.status == "RUNNING":
                check = self.body["autoHealingPolicies"][0].get("healthCheck", "")
                entry["instanceHealth"] = [{"healthCheck": check, "detailedHealthState": vm.health or "UNKNOWN"}]
            out.append(entry)
        return out


def calculated(value: JsonDict, size: int) -> int:
    """A FixedOrPercent as a number of instances (a percentage rounded up, as GCE documents)."""
    if "fixed" in value:
        return int(value["fixed"])
    return math.ceil(int(value.get("percent", 0)) * size / 100)


class Updater:
    """Moves groups one tick at a time. `make_vm(mig, template)` creates a VM record."""

    def __init__(self, faults: list[Fault], images_of: Any, make_vm: Any) -> None:
        self.faults = faults
        self.images_of = images_of  # template URL -> (template name, image name)
        self.make_vm = make_vm

    def fault_for(self, vm: Vm) -> Fault | None:
        names = self.images_of(vm.template)
        return next((f for f in reversed(self.faults) if f.match in names), None)

    def tick(self, mig: Mig) -> bool:
        """One step of `mig`; True when anything changed."""
        moved = self._lifecycle(mig)
        return self._update(mig) or moved

    def _lifecycle(self, mig: Mig) -> bool:
        moved = False
        for vm in list(mig.vms):
            fault = self.fault_for(vm)
            if vm.action == "DELETING":
                mig.vms.remove(vm)
                moved = True
            elif vm.action == "CREATING":
                if fault is not None and fault.stuck:
                    continue
                vm.status = "RUNNING"
                vm.action = "VERIFYING" if mig.checked else "NONE"
                moved = True
            elif mig.checked and vm.status == "RUNNING":
                health = fault.health if fault is not None else "HEALTHY"
                if health == "HEALTHY":
                    moved = moved or vm.action != "NONE" or vm.health != health
                    vm.health, vm.action, vm.was_healthy = "HEALTHY", "NONE", True
                elif vm.health != health:
                    vm.health, vm.action = health, "VERIFYING"
                    moved = True
        return moved

    def _update(self, mig: Mig) -> bool:
        policy = mig.body.get("updatePolicy") or {}
        proactive = policy.get("type", "PROACTIVE") == "PROACTIVE"
        surge = calculated(policy.get("maxSurge", {"fixed": len(mig.zones)}), mig.size)
        unavailable = calculated(policy.get("maxUnavailable", {"fixed": len(mig.zones)}), mig.size)
        wanted = mig.desired()
        moved = False
        while True:
            live = [vm for vm in mig.vms if vm.action != "DELETING"]
            have = Counter(vm.template for vm in live)
            short = [t for t, n in wanted.items() if have[t] < n]
            over = [vm for vm in live if have[vm.template] > wanted.get(vm.template, 0)]
            ceiling = mig.size + (surge if proactive else 0)
            if short and len(live) < ceiling and (proactive or len(live) < mig.size):
                mig.vms.append(self.make_vm(mig, short[0]))
                moved = True
                continue
            if not over or (not proactive and len(live) <= mig.size):
                return moved
            available = sum(1 for vm in live if mig.available(vm))
            # Never-ready and not-yet-ready VMs go first; a ready one only while enough stay ready.
            over.sort(key=lambda vm: (mig.available(vm), vm.name))
            victim = over[0]
            if mig.available(victim) and available - 1 < mig.size - unavailable:
                return moved
            victim.action = "DELETING"
            victim.status = "STOPPING"
            moved = True
