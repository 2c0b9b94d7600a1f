"""What needs baking: each image x target as up to date, stale (and why) or new, parents first.

The plan reads each target's catalog once (one paginated list per region or project), resolves
each root image's base once per distinct source, and compares the bake key it would have now with
the newest recorded version's. Reasons come from that version's provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from bakery.bake import inputs, render, tools
from bakery.config.load import Project
from bakery.core.catalog import ImageRecord, newest
from bakery.errors import BakeryError, ProviderError, UsageError
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, ClientFactory, Prepared, Provider, get_provider
from bakery.workspace import Workspace

UP_TO_DATE, STALE, NEW = "up-to-date", "stale", "new"


@dataclass(frozen=True)
class PlanItem:
    image: str
    target: str
    status: str
    reasons: list[str]
    inputs_digest: str | None
    current: str | None  # the newest recorded version, image@version
    parent: str | None  # the parent image's name (from:)
    depends_on: list[str] = field(default_factory=list)  # keys of plan items to bake first

    @property
    def key(self) -> str:
        return f"{self.image}@{self.target}"

    @property
    def needs_bake(self) -> bool:
        return self.status != UP_TO_DATE


@dataclass(frozen=True)
class Plan:
    items: list[PlanItem]
    # target -> why it could not be read (no credentials, endpoint down); only a partial plan has them
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def stale(self) -> list[PlanItem]:
        return [i for i in self.items if i.needs_bake]

    def waves(self) -> list[list[PlanItem]]:
        """Stale bakes grouped so that each wave only needs the waves before it (CI fan-out)."""
        stale = {item.key: item for item in self.stale}
        order = list(stale)
        sorter = TopologicalSorter({key: [d for d in item.depends_on if d in stale] for key, item in stale.items()})
        sorter.prepare()
        waves: list[list[PlanItem]] = []
        while sorter.is_active():  # each round: what only needs the rounds before it, in plan order
            ready = sorted(sorter.get_ready(), key=order.index)
            waves.append([stale[key] for key in ready])
            sorter.done(*ready)
        return waves


class Planner:
    def __init__(
        self,
        project: Project,
        workspace: Workspace,
        reporter: Reporter,
        clients: ClientFactory | None = None,
        provider: Provider | None = None,
    ) -> None:
        self.project = project
        self.ws = workspace
        self.reporter = reporter
        self.clients = clients
        self._provider = provider  # one provider for every kind (tests hand in a fake), as Baker takes
        self._providers: dict[str, Provider] = {}
        self._catalog: dict[str, dict[str, list[ImageRecord]]] = {}
        self._files: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}

    def files(self, eff: Any) -> dict[str, str]:
        """Input files of a bake, hashed once per (builder, playbooks) in this plan."""
        key = (eff.kind, eff.playbooks)
        if key not in self._files:
            self._files[key] = render.input_files(self.project, eff)
        return self._files[key]

    def provider(self, kind: str) -> Provider:
        if self._provider is not None:
            return self._provider
        if kind not in self._providers:
            self._providers[kind] = get_provider(
                kind, self.ws, self.reporter, self.clients, targets=self.project.config.targets
            )
        return self._providers[kind]

    def catalog(self, target: str) -> dict[str, list[ImageRecord]]:
        """Every recorded version on `target`, by image: one listing per target."""
        if target not in self._catalog:
            kind = self.project.config.targets[target].kind
            by_image: dict[str, list[ImageRecord]] = {}
            for record in self.provider(kind).images(target, None):
                by_image.setdefault(record.name, []).append(record)
            self._catalog[target] = by_image
        return self._catalog[target]

    def plan(self, images: list[str] | None = None, target: str | None = None, *, partial: bool = False) -> Plan:
        """Each image x target, parents first. A target that cannot be read (a ProviderError: no
        credentials, endpoint down, a refusal) fails the plan, unless `partial`: then the plan holds
        every other target's items and names it in `unreadable`, with none of its own items."""
        if target is not None and target not in self.project.config.targets:
            raise UsageError(f"unknown target '{target}'; known: {', '.join(sorted(self.project.config.targets))}")
        for name in images or []:
            self.project.image(name)
        wanted = set(images) if images else None
        versions = tools.versions()
        items: dict[str, PlanItem] = {}
        unreadable: dict[str, str] = {}
        for name in self.project.order(None):
            for tname in self.project.targets_of(name):
                if (target is not None and tname != target) or tname in unreadable:
                    continue
                try:
                    item = self._item(name, tname, items, versions)
                except ProviderError as exc:
                    if not partial:
                        raise
                    unreadable[tname] = exc.message
                    continue
                items[item.key] = item
        items = {key: item for key, item in items.items() if item.target not in unreadable}
        if wanted is None:
            return Plan(list(items.values()), unreadable)
        needed = {a for name in wanted for a in self.project.lineage(name)}
        return Plan(
            [
                i
                for i in items.values()
                if i.image in wanted or _descends(i, wanted, items) or (i.image in needed and i.needs_bake)
            ],
            unreadable,
        )

    def _item(self, name: str, target: str, done: dict[str, PlanItem], versions: dict[str, str]) -> PlanItem:
        eff = self.project.effective(name, target)
        records = self.catalog(target).get(name, [])
        current = newest(records)
        parent_name = eff.image.parent
        depends = [f"{parent_name}@{target}"] if parent_name else []
        parent_record = None
        if parent_name:
            parent_item = done.get(f"{parent_name}@{target}")
            parent_record = newest(self.catalog(target).get(parent_name, []))
            if (parent_item is not None and parent_item.needs_bake) or parent_record is None:
                status = STALE if current else NEW
                why = f"parent {parent_name} will be baked first"
                return PlanItem(
                    name, target, status, [why], None, current.ref if current else None, parent_name, depends
                )
        provider = self.provider(eff.kind)
        request = BakeRequest(self.project, eff, "0.0.0", self.ws.builds, parent_record)
        prepared = provider.resolve(request)
        values = render.variables(self.project, eff, "0.0.0", prepared)
        digest = inputs.bake_key(self.project, eff, values, prepared, versions, self.files(eff))
        if current is None:
            return PlanItem(name, target, NEW, ["no version on this target yet"], digest, None, parent_name, depends)
        if any(r.inputs_digest == digest for r in records):
            return PlanItem(name, target, UP_TO_DATE, [], digest, current.ref, parent_name, depends)
        reasons = self._reasons(eff, current, prepared, versions, provider)
        return PlanItem(name, target, STALE, reasons, digest, current.ref, parent_name, depends)

    def _reasons(
        self, eff: Any, current: ImageRecord, prepared: Prepared, versions: dict[str, str], provider: Provider
    ) -> list[str]:
        reasons: list[str] = []
        if current.base != prepared.base and not prepared.parent:
            reasons.append(f"base {_short(current.base)} → {_short(prepared.base)}")
        if prepared.parent is not None and current.parent != prepared.parent.ref:
            reasons.append(f"parent {current.parent or '-'} → {prepared.parent.ref}")
        try:
            statement = provider.provenance(current)
        except BakeryError as exc:
            # The digest comparison stands; only what changed is unknown (not "every file added").
            return reasons or [f"inputs changed (the provenance of {current.ref} is unreadable: {exc.message})"]
        build = statement.get("predicate", {}).get("buildDefinition", {})
        now = self.files(eff)
        recorded = {
            d["name"]: d.get("digest", {}).get("sha256")
            for d in build.get("resolvedDependencies", [])
            if d.get("name") in now or _is_file_dependency(d.get("name", ""))
        }
        for path in sorted(set(now) | set(recorded)):
            if path not in recorded:
                reasons.append(f"{path} added")
            elif path not in now:
                reasons.append(f"{path} removed")
            elif recorded[path] != now[path]:
                reasons.append(f"{path} changed")
        entry_name = f"{self.project.path.name}#images.{eff.name}"
        old_entry = next((d for d in build.get("resolvedDependencies", []) if d.get("name") == entry_name), None)
        if old_entry and old_entry.get("annotations", {}).get("entry") != inputs.resolved_entry(self.project, eff):
            reasons.append(f"images.yaml entry of {eff.name} changed")
        old_tools = statement.get("predicate", {}).get("runDetails", {}).get("builder", {}).get("version", {})
        for tool in ("packer", "ansible"):
            if old_tools.get(tool) and old_tools[tool] != versions[tool]:
                reasons.append(f"{tool} {old_tools[tool]} → {versions[tool]}")
        return reasons or ["inputs changed (rendered variables)"]


def _is_file_dependency(name: str) -> bool:
    """Input files are named by their path in the project, or bakery:PATH for bakery's own
    templates (render.input_files). Every other dependency has a name of another form: "git", a
    scheme of the provider's ("ami:", "base-disk:", "parent:"), or the images.yaml entry's '#'."""
    scheme, colon, _ = name.partition(":")
    return name != "git" and "#" not in name and (not colon or scheme == "bakery")


def _short(text: str) -> str:
    if text.startswith("unbuilt:"):
        return "a new base disk (its recipe or overlay changed)"
    return text[:19] if text.startswith("sha256:") else text


def _descends(item: PlanItem, wanted: set[str], items: dict[str, PlanItem]) -> bool:
    """Children of asked-for images are part of their plan: a new parent makes them stale."""
    parent = item.parent
    while parent is not None:
        if parent in wanted:
            return True
        parent_item = items.get(f"{parent}@{item.target}")
        parent = parent_item.parent if parent_item else None
    return False
