"""Reading one GCP group: which MIG serves it, what its templates run, who is moving it.

The images.yaml group names a MIG (`mig:`). A blue-green rollout replaces that MIG by a second
one, `<mig>-<rollout id>`, in the same zone or region, and swaps them in the group's backend
service. So for a group with a `backend_service`, the MIG that serves is found there: the first
backend that is the group's MIG or one of its successors, and has instances; images.yaml never
needs editing after a swap. Without a backend service it is always the MIG images.yaml names.

What a template runs comes from its boot image's labels (bakery's stamp); a template bakery made
also says, in its description, which rollout made it, who started it, where and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bakery.config.models import Group
from bakery.config.targets.gcp import GcpGroup
from bakery.core import provenance
from bakery.errors import ConfigError, ProviderError
from bakery.groups.base import ActiveRollout, Instance, Release
from bakery.groups.gcp.api import GroupApi
from bakery.groups.gcp.requests import (
    TEMPLATE_MARKER,
    Where,
    boot_image,
    facts_of,
    image_path,
    is_successor,
    name_of,
    resource_path,
    successors_filter,
    versions_of,
)
from bakery.groups.gcp.watch import health_of, ready, state_of


@dataclass
class Site:
    """One images.yaml group on GCP and the API to its project, with what was read once."""

    name: str
    group: Group
    gcp: GcpGroup
    where: Where
    api: GroupApi
    _templates: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _releases: dict[str, Release] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The group's identity in what bakery writes: project, zone or region, and its MIG."""
        return f"{self.where.project}/{self.where.location}/{self.gcp.mig}"

    # --- MIGs ----------------------------------------------------------------------------------

    def _found(self, found: dict[str, Any] | None, what: str, keys: str) -> dict[str, Any]:
        if found is None:
            raise ProviderError(
                f"GCP: {what} does not exist in project {self.where.project}",
                hint=f"check groups.{self.name}.gcp {keys} in images.yaml",
            )
        return found

    def mig(self, name: str) -> dict[str, Any]:
        return self._found(self.api.mig(name), self.where.mig(name), "(mig, zone or region)")

    def is_ours(self, name: str) -> bool:
        """The images.yaml MIG, or a successor a blue-green rollout of this group made."""
        return name == self.gcp.mig or is_successor(self.gcp.mig, name)

    def backends(self) -> dict[str, Any]:
        name = str(self.gcp.backend_service)
        return self._found(self.api.backend(name), f"backend service {name}", "backend_service")

    def attached(self, backend: dict[str, Any]) -> list[str]:
        """The group's MIGs among the backend service's backends, in its order."""
        out = []
        for entry in backend.get("backends", []):
            group = resource_path(entry.get("group", ""))
            if f"/{self.where.scope}/instanceGroups/" in f"/{group}" and self.is_ours(name_of(group)):
                out.append(name_of(group))
        return out

    def live(self) -> dict[str, Any]:
        """The MIG that serves the group now (see the module's docstring)."""
        if self.gcp.backend_service:
            for name in self.attached(self.backends()):
                found = self.api.mig(name)
                if found is not None and int(found.get("target_size", 0)) > 0:
                    return found
        return self.mig(self.gcp.mig)

    def family(self) -> list[dict[str, Any]]:
        """The images.yaml MIG and every successor of it that exists (blue-green groups only)."""
        if not self.gcp.backend_service:
            return [self.mig(self.gcp.mig)]
        found = self.api.migs(successors_filter(self.gcp.mig))
        first = self.api.mig(self.gcp.mig)
        return ([first] if first else []) + [m for m in found if self.is_ours(m["name"])]

    # --- templates and what they run ------------------------------------------------------------

    def template(self, path: str) -> dict[str, Any] | None:
        path = resource_path(path)
        if path not in self._templates:
            self._templates[path] = self.api.template(path)
        return self._templates[path]

    def forget(self, path: str) -> None:
        """Read the template at `path` again next time (it was just made)."""
        self._templates.pop(resource_path(path), None)
        self._releases.pop(resource_path(path), None)

    def facts(self, path: str) -> dict[str, Any] | None:
        """What bakery wrote on a template it made (None for one it did not make)."""
        template = self.template(path)
        facts = facts_of(template.get("description"), TEMPLATE_MARKER) if template else None
        return facts if facts and facts.get("group") == self.key else None

    def release_calls(self, path: str) -> int:
        """At most how many calls release(path) makes: none once known, else the template (unless
        read already) and its boot image."""
        path = resource_path(path)
        if path in self._releases:
            return 0
        return 1 + (0 if path in self._templates else 1)

    def release(self, path: str) -> Release:
        """What instances from the template at `path` run."""
        path = resource_path(path)
        if path not in self._releases:
            template = self.template(path)
            source = boot_image(template) if template else None
            if source is None:
                self._releases[path] = Release(None, "unknown (template gone or without a boot image)", path)
            else:
                self._releases[path] = self._image_release(image_path(source, self.where.project), path)
        return self._releases[path]

    def _image_release(self, image_id: str, template: str) -> Release:
        image = self.api.image(image_id)
        if image is None:
            return Release(None, image_id, template)
        stamp, _problems = provenance.gcp_stamp(image.get("labels") or {})
        if stamp.get("state") != "complete" or not stamp.get("image") or not stamp.get("version"):
            return Release(None, image_id, template)
        return Release(f"{stamp['image']}@{stamp['version']}", image_id, template, stamp.get("inputs-digest"))

    def intended(self, mig: dict[str, Any]) -> Release | None:
        """What the group's base version (the one without a target size) says instances run."""
        versions = versions_of(mig)
        base = next((path for path, size in versions if size is None), versions[0][0] if versions else None)
        return self.release(base) if base else None

    def instances(self, mig: dict[str, Any], managed: list[dict[str, Any]]) -> tuple[Instance, ...]:
        checked = bool(self.gcp.health_check)
        out = []
        for entry in managed:
            release = self.release(entry.get("version", {}).get("instance_template", "") or "unknown")
            health = health_of(entry)
            if ready(entry, checked=True):
                verdict = "healthy"
            elif health in ("UNHEALTHY", "TIMEOUT"):
                verdict = "unhealthy"
            else:
                verdict = "unknown" if not checked or health is None else "unhealthy"
            out.append(
                Instance(
                    id=name_of(entry.get("instance", "")),
                    image=release.image,
                    image_id=release.image_id,
                    state=state_of(entry),
                    health=verdict,  # type: ignore[arg-type]
                    detail=f"{health} by health check" if health and verdict == "unhealthy" else "",
                )
            )
        return tuple(out)

    # --- who is moving it ----------------------------------------------------------------------

    def active(
        self,
        live: dict[str, Any],
        family: list[dict[str, Any]] | None = None,
        managed: list[dict[str, Any]] | None = None,
    ) -> ActiveRollout | None:
        """The move under way: the live MIG between versions, or (blue-green) another MIG of the
        group with instances. None when the group is at rest. `managed` (the live MIG's
        instances) gives the percentage done."""
        versions = versions_of(live)
        reached = bool(live.get("status", {}).get("version_target", {}).get("is_reached"))
        if len(versions) > 1 or not reached:
            stopped = live.get("update_policy", {}).get("type_") == "OPPORTUNISTIC"
            step = "stopped (OPPORTUNISTIC)" if stopped else ("canary" if len(versions) > 1 else "replacing")
            target = versions[-1][0]
            percent = None
            if managed is not None and int(live.get("target_size", 0)):
                on = [m for m in managed if resource_path(m.get("version", {}).get("instance_template", "")) == target]
                percent = min(100, len(on) * 100 // int(live["target_size"]))
            return self._move(target, step, percent, live["name"])
        for other in family or []:
            if other["name"] != live["name"] and int(other.get("target_size", 0)) > 0:
                step = f"blue-green: {other['name']} beside {live['name']}"
                return self._move(versions_of(other)[-1][0], step, None, other["name"])
        return None

    def _move(self, template: str, step: str, percent: int | None, mig: str) -> ActiveRollout:
        facts = self.facts(template) or {}
        made = self.template(template) or {}
        return ActiveRollout(
            id=str(facts.get("rollout", "")),
            to=self.release(template).describe(),
            step=step,
            percent=percent,
            started=str(facts.get("started") or made.get("creation_timestamp", "")),
            who=str(facts.get("who") or "someone else (not a bakery rollout)"),
            where=str(facts.get("where") or self.where.mig(mig)),
        )

    def require_health_check(self, mig: dict[str, Any]) -> None:
        """The group's health_check must be the MIG's autohealing check, or no instance would ever
        report healthy. Raises ConfigError."""
        check = self.gcp.health_check
        if not check:
            return
        policies = [resource_path(p.get("health_check", "")) for p in mig.get("auto_healing_policies", [])]
        if not any(name_of(p) == name_of(check) for p in policies):
            raise ConfigError(
                f"groups.{self.name}.gcp.health_check is {check}, but {self.where.mig(mig['name'])} "
                f"autoheals with {', '.join(name_of(p) for p in policies) or 'no health check'}",
                hint="name the MIG's autohealing health check, or add it to the MIG",
            )
