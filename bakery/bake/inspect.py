"""Reading the catalog: every version on every target, and one version's provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bakery.config.load import Project
from bakery.core import catalog
from bakery.core.catalog import ImageRecord, version_key
from bakery.errors import BakeryError, UsageError
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory, get_provider
from bakery.workspace import Workspace


def _targets(project: Project, target: str | None) -> list[str]:
    if target is None:
        return sorted(project.config.targets)
    if target not in project.config.targets:
        raise UsageError(f"unknown target '{target}'; known: {', '.join(sorted(project.config.targets))}")
    return [target]


@dataclass(frozen=True)
class Listing:
    images: list[ImageRecord]
    errors: dict[str, str]  # target -> why it could not be listed
    read: list[str]  # targets that were listed
    conflicts: list[str]  # "web@1.0.3 on aws: ami-1 (bake a), ami-2 (bake b)": one version, two images


def conflicts(records: list[ImageRecord]) -> list[str]:
    """Versions that more than one image claims (bakes that raced on one version)."""
    claims: dict[tuple[str, str, str], list[ImageRecord]] = {}
    for record in records:
        claims.setdefault((record.target, record.name, record.version), []).append(record)
    out = []
    for (target, _name, _version), rivals in sorted(claims.items()):
        if len(rivals) > 1:
            images = ", ".join(
                f"{' '.join(r.locations)} (bake {r.extra.get('invocation') or '?'}, created {r.created})"
                for r in rivals
            )
            out.append(f"{rivals[0].ref} on {target} is claimed by {len(rivals)} images: {images}")
    return out


def list_images(
    project: Project,
    workspace: Workspace,
    reporter: Reporter,
    *,
    image: str | None,
    target: str | None,
    clients: ClientFactory | None = None,
) -> Listing:
    """Every recorded version (of `image`, on `target`), read from each target's source of truth.

    A target that cannot be read (no credentials, endpoint down) is reported, not fatal: the
    others are still listed.
    """
    if image is not None:
        project.image(image)
    records: list[ImageRecord] = []
    errors: dict[str, str] = {}
    read: list[str] = []
    providers: dict[str, Any] = {}
    for name in _targets(project, target):
        kind = project.config.targets[name].kind
        if kind not in providers:
            providers[kind] = get_provider(kind, workspace, reporter, clients, targets=project.config.targets)
        try:
            records += providers[kind].images(name, image)
        except BakeryError as exc:  # providers report no credentials, endpoint down, refusals
            errors[name] = exc.message
        else:
            read.append(name)
    ordered = sorted(records, key=lambda r: (r.name, r.target, version_key(r.version), r.created))
    return Listing(ordered, errors, read, conflicts(ordered))


def show_image(
    project: Project,
    workspace: Workspace,
    reporter: Reporter,
    *,
    ref: str,
    target: str | None,
    clients: ClientFactory | None = None,
) -> tuple[ImageRecord, dict[str, Any]]:
    name, version = catalog.parse_ref(ref)
    project.image(name)
    found: list[tuple[ImageRecord, Any]] = []
    for tname in _targets(project, target):
        provider = get_provider(
            project.config.targets[tname].kind, workspace, reporter, clients, targets=project.config.targets
        )
        try:
            found.append((catalog.select(provider.images(tname, name), name=name, version=version), provider))
        except UsageError:
            continue
        except BakeryError as exc:
            if target is not None:
                raise
            reporter.note(f"{tname}: not searched: {exc.message}")
    if not found:
        what = f"{name}@{version}" if version else name
        raise UsageError(
            f"no baked image {what}" + (f" on {target}" if target else ""), hint="`bakery images` lists what exists"
        )
    if len(found) > 1 and target is None:
        raise UsageError(
            f"{ref} exists on several targets: {', '.join(r.target for r, _ in found)}", hint="pick one with --target"
        )
    record, provider = found[0]
    return record, provider.provenance(record)
