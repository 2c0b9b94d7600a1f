"""Reading the catalog: every version on every target, and one version's provenance."""

from __future__ import annotations

from typing import Any

from bakery import catalog
from bakery.catalog import ImageRecord, version_key
from bakery.config import Project
from bakery.errors import UsageError
from bakery.progress import Reporter
from bakery.providers.base import available_kinds, get_provider
from bakery.workspace import Workspace


def _targets(project: Project, target: str | None) -> list[str]:
    if target is None:
        return sorted(project.config.targets)
    if target not in project.config.targets:
        raise UsageError(f"unknown target '{target}'; known: {', '.join(sorted(project.config.targets))}")
    return [target]


def list_images(project: Project, workspace: Workspace, reporter: Reporter, *, image: str | None,
                target: str | None) -> list[ImageRecord]:
    """Every recorded version (of `image`, on `target`), ordered by image, target and version."""
    if image is not None:
        project.image(image)
    records: list[ImageRecord] = []
    for name in _targets(project, target):
        if project.config.targets[name].kind not in available_kinds():
            continue
        provider = get_provider(project.config.targets[name].kind, workspace, reporter)
        records += provider.images(name, image)
    return sorted(records, key=lambda r: (r.name, r.target, version_key(r.version)))


def show_image(project: Project, workspace: Workspace, reporter: Reporter, *, ref: str,
               target: str | None) -> tuple[ImageRecord, dict[str, Any]]:
    name, version = catalog.parse_ref(ref)
    project.image(name)
    found: list[tuple[ImageRecord, Any]] = []
    for tname in _targets(project, target):
        if project.config.targets[tname].kind not in available_kinds():
            continue
        provider = get_provider(project.config.targets[tname].kind, workspace, reporter)
        try:
            found.append((catalog.select(provider.images(tname, name), name=name, version=version), provider))
        except UsageError:
            continue
    if not found:
        what = f"{name}@{version}" if version else name
        raise UsageError(f"no baked image {what}" + (f" on {target}" if target else ""),
                         hint="`bakery images` lists what exists")
    if len(found) > 1 and target is None:
        raise UsageError(f"{ref} exists on several targets: {', '.join(r.target for r, _ in found)}",
                         hint="pick one with --target")
    record, provider = found[0]
    return record, provider.provenance(record)
