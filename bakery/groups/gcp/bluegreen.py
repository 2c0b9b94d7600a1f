"""Blue-green for a managed instance group: a second MIG from the new template, swapped in the
group's backend service only once it is healthy there.

    check, template   as for rolling (gcp_steps)
    green     the second MIG, `<mig>-<rollout>`, from the new template at the serving MIG's size; or,
              for a rollback after completion, the retained MIG that still has the old template
    ready     until every instance of it runs the template, ready (the gate)
    attach    added to the backend service (the serving MIG's balancing settings); until the
              backend service reports every instance of it HEALTHY (the gate)
    detach    the old MIG removed from the backend service, after the new one's health is read again
    retire    the old MIG resized to 0: kept, so that a rollback is immediate, until `bakery prune`
              deletes it after strategy.retention_seconds (never the MIG images.yaml names)

The rollback reverses: the old MIG back at its size and healthy, in the backend service, then the
new one out of it and deleted (a retained MIG that was reused goes back to 0 instead).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from bakery import runner
from bakery import steps as engine
from bakery.errors import BakeryError, GateFailed, ProviderError
from bakery.groups.gcp.requests import TEMPLATE_MARKER, describe, name_of, resource_path, successor_name, versions_of
from bakery.groups.gcp.steps import MIG, PREVIOUS, SIZE, TEMPLATE, Mover
from bakery.groups.gcp.watch import Goal
from bakery.steps import Step

GREEN, GREEN_MADE = "gcp.green", "gcp.green-made"
_PATCH_ATTEMPTS = 5


class BlueGreen(Mover):
    def steps(self) -> list[Step]:
        return [
            Step("check", self.check, "the group is at rest, and its settings are GCE's"),
            Step("template", self.template, "the instance template with the new image"),
            Step("green", self._green, "a second MIG from the new template"),
            Step("ready", self._ready, "every instance of the new MIG ready"),
            Step("attach", self._attach, "the new MIG healthy in the backend service"),
            Step("detach", self._detach, "the old MIG out of the backend service"),
            Step("retire", self._retire, "the old MIG at size 0, kept for a rollback"),
        ]

    def rollback_steps(self) -> list[Step]:
        return [Step("revert", self._revert, "the old MIG serving again, the new one gone")]

    @property
    def service(self) -> str:
        if not self.site.gcp.backend_service:
            raise ProviderError(
                f"group {self.site.name}: blue-green swaps MIGs in a backend service, "
                "and gcp.backend_service is not set",
                hint=f"set groups.{self.site.name}.gcp.backend_service, or use strategy rolling or canary",
            )
        return self.site.gcp.backend_service

    # --- forward ----------------------------------------------------------------------------------

    def _green(self, journal: engine.Journal) -> None:
        _ = self.service
        size, template, blue = int(journal.get(SIZE)), journal.get(TEMPLATE), journal.get(MIG)
        # GREEN is saved before the change it names, so that a rollback after a kill in between
        # still finds the MIG; a rerun finishes that change.
        made = self.site.api.mig(journal.get(GREEN)) if journal.get(GREEN) else None
        if made is not None:
            if not journal.get(GREEN_MADE) and int(made.get("target_size", 0)) != size:
                self.site.api.resize(made["name"], size)
            return
        for retained in self.site.family():
            if retained["name"] != blue and versions_of(retained) == [(template, None)]:
                self.reporter.note(f"{retained['name']} (retained, on {name_of(template)}) back to {size}")
                journal.put(GREEN_MADE, False)
                journal.put(GREEN, retained["name"])
                self.site.api.resize(retained["name"], size)
                return
        name = successor_name(self.site.gcp.mig, self.rollout.id)
        journal.put(GREEN_MADE, True)
        journal.put(GREEN, name)
        if self.site.api.mig(name) is None:
            old = self.site.mig(blue)
            body: dict[str, Any] = {
                "name": name,
                "description": describe(
                    f"bakery: group {self.site.name}, blue-green rollout {self.rollout.id} by {self.rollout.who}",
                    TEMPLATE_MARKER,
                    {"group": self.site.key, "rollout": self.rollout.id, "who": self.rollout.who},
                ),
                "instance_template": template,
                "target_size": size,
                "base_instance_name": name,
            }
            for key in ("auto_healing_policies", "named_ports", "distribution_policy"):
                if old.get(key):
                    body[key] = copy.deepcopy(old[key])
            self.reporter.note(f"creating {self.site.where.mig(name)} from {name_of(template)}, {size} instance(s)")
            self.site.api.insert_mig(body, self.rollout.id)

    def _ready(self, journal: engine.Journal) -> None:
        new = journal.get(TEMPLATE)
        self.watcher(journal.get(GREEN), new, "ready").until(Goal(new))

    def _attach(self, journal: engine.Journal) -> None:
        green = self.site.mig(journal.get(GREEN))
        blue_group = self.site.mig(journal.get(MIG))["instance_group"]

        self._backends(lambda backends: _joined(backends, green["instance_group"], like=blue_group))
        self._healthy_there(green, int(journal.get(SIZE)), gate=True)

    def _detach(self, journal: engine.Journal) -> None:
        green = self.site.mig(journal.get(GREEN))
        blue_group = self.site.mig(journal.get(MIG))["instance_group"]
        if not any(_same(b, blue_group) for b in self.site.backends().get("backends", [])):
            return
        self._healthy_there(green, int(journal.get(SIZE)), gate=True, wait=False)
        self._backends(lambda backends: [b for b in backends if not _same(b, blue_group)])

    def _retire(self, journal: engine.Journal) -> None:
        blue = journal.get(MIG)
        if int(self.site.mig(blue).get("target_size", 0)) > 0:
            self.reporter.note(
                f"{blue}: resized to 0 and kept for {self.site.group.strategy.retention_seconds}s "
                "(`bakery rollback` brings it back at once)"
            )
            self.site.api.resize(blue, 0)
        new = journal.get(TEMPLATE)
        self.watcher(blue, new, "retire", journal.get(PREVIOUS)).until(Goal(new, count=0, gate=False))

    # --- rollback ---------------------------------------------------------------------------------

    def _revert(self, journal: engine.Journal) -> None:
        blue, green, size = journal.get(MIG), journal.get(GREEN), journal.get(SIZE)
        if blue is None:
            self.reporter.note("this rollout never moved the group; nothing to return")
            return
        old = self.site.mig(blue)
        if int(old.get("target_size", 0)) != int(size):
            self.reporter.note(f"{blue}: back to {size} instance(s)")
            self.site.api.resize(blue, int(size))
        base = next((path for path, target in versions_of(old) if target is None), None)
        if base is None:
            shown = ", ".join(f"{name_of(path)} x{target}" for path, target in versions_of(old)) or "none"
            raise ProviderError(
                f"GCP: {self.site.where.mig(blue)} has no version without a target size (its versions: {shown}), "
                "so bakery cannot tell which template to bring back",
                hint=f"patch its versions to the template it ran before, then run `bakery rollback {self.site.name}`",
            )
        new = self.site.api.mig(green) if green else None
        self.watcher(blue, base, "revert").until(Goal(base, gate=False))
        group = old["instance_group"]
        self._backends(lambda backends: _joined(backends, group, like=new["instance_group"] if new else group))
        self._healthy_there(old, int(size), gate=False)
        if new is None:
            return
        self._backends(lambda bs: [b for b in bs if not _same(b, new["instance_group"])])
        if journal.get(GREEN_MADE):
            self.reporter.note(f"deleting {self.site.where.mig(green)}")
            self.site.api.delete_mig(green)
        elif int(new.get("target_size", 0)):
            self.site.api.resize(green, 0)

    # --- the backend service ----------------------------------------------------------------------

    def _backends(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        """Set the backend service's backends to `change(current)`, with its fingerprint; after a
        fingerprint race (412) read it again and decide again."""
        from google.api_core import exceptions

        for _ in range(_PATCH_ATTEMPTS):
            service = self.site.backends()
            current = list(service.get("backends", []))
            wanted = change(current)
            if wanted == current:
                return
            shown = ", ".join(name_of(b["group"]) for b in wanted) or "none"
            self.reporter.note(f"backend service {self.service}: backends {shown}")
            body = {"backends": wanted, "fingerprint": service["fingerprint"]}
            try:
                self.site.api.patch_backend(self.service, body)
            except exceptions.PreconditionFailed:
                self.reporter.note(f"backend service {self.service} changed meanwhile; reading it again")
        raise ProviderError(f"GCP: backend service {self.service} kept changing; its backends are not set")

    def _healthy_there(self, mig: dict[str, Any], size: int, *, gate: bool, wait: bool = True) -> None:
        """Until the backend service reports `size` instances of `mig`, all HEALTHY, within the
        gate's time (grace + timeout). Raises GateFailed (ProviderError when not `gate`) naming an
        instance that is not; with `wait` false, looks once."""
        watcher = self.watcher(mig["name"], "", "backend")
        deadline = watcher.clock() + watcher.limit
        while True:
            runner.check_interrupted(f"waiting for {mig['name']} in backend service {self.service}")
            watcher.budget.take(1, f"waiting for {mig['name']} in backend service {self.service}")
            states = self.site.api.backend_health(self.service, mig["instance_group"])
            bad = [s for s in states if s.get("health_state") != "HEALTHY"]
            if not bad and len(states) >= size:
                self.reporter.note(
                    f"{mig['name']}: {len(states)} instance(s) HEALTHY in backend service {self.service}"
                )
                return
            if not wait or watcher.clock() > deadline:
                where = f"{self.site.where.mig(mig['name'])} in backend service {self.service}"
                if bad:
                    instance, state = name_of(bad[0].get("instance", "")), str(bad[0].get("health_state", "UNKNOWN"))
                    message = f"{where}: instance {instance} is {state}"
                else:
                    instance, state = "", ""
                    message = f"{where}: {len(states)}/{size} instance(s) reported"
                error: BakeryError = (
                    GateFailed(message, instance=instance or None, answer=state or None)
                    if gate
                    else ProviderError(f"GCP: {message}")
                )
                raise error
            watcher.pause(watcher.interval)


def _same(backend: dict[str, Any], group: str) -> bool:
    return resource_path(backend.get("group", "")) == resource_path(group)


def _joined(backends: list[dict[str, Any]], group: str, *, like: str) -> list[dict[str, Any]]:
    """`backends` with instance group `group` among them, balanced as the backend of `like` is."""
    if any(_same(b, group) for b in backends):
        return backends
    model = next((b for b in backends if _same(b, like)), {"balancing_mode": "UTILIZATION"})
    return [*backends, {**copy.deepcopy(model), "group": group}]
