"""The offline render: an image's Packer directory for a target from images.yaml alone, for review
and for `packer validate` in a pull-request check, with no cloud account.

Nothing is looked up, so no provider is made and no cloud client either. The source is what
images.yaml pins (an AMI id, an image), or is left to Packer where nothing is (amazon-ebs's
`source_ami_filter`, googlecompute's `source_image_family`; a child image: its parent's newest
image, by name or family); a local target gets stand-ins for its base disk and build key, and
what a cloud build of it would make is tagged or labelled as a preview (the kind's `preview`).
The catalog is not read, so the next version is unknown: the version is the declared
MAJOR.MINOR marked `-preview` (`1.0-preview`), in every variable that carries it (the image's
version, the AMI or GCP image name, Ansible's `bakery_version`), in the default directory's name
and in `bakery-preview.json`. bakery never builds such a directory (`refuse_preview`), and a
hand-built one carries none of a bake's marks, so it is never recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bakery.bake import render, tools
from bakery.config.load import EffectiveImage, Project
from bakery.errors import UsageError
from bakery.providers.base import Preview, preview_of
from bakery.workspace import Workspace, remove_tree

PREVIEW_FILE = "bakery-preview.json"
PREVIEW_SUFFIX = "-preview"


def preview_version(declared: str) -> str:
    """'1.0' -> '1.0-preview': the patch comes from the target's catalog, which is not read."""
    return f"{declared}{PREVIEW_SUFFIX}"


def default_directory(workspace: Workspace, image: str, target: str) -> Path:
    return workspace.root / "render" / f"{image}-{target}{PREVIEW_SUFFIX}"


def render_preview(project: Project, eff: EffectiveImage, *, out: Path, packer_version: str) -> render.Rendered:
    """Write the preview directory `out` (created; must not hold a Packer build). Raises
    ConfigError (a template missing, a value the target cannot take) or UsageError (an unknown kind)."""
    render.fresh_directory(out)
    spec = project.config.targets[eff.target]
    stand_ins = preview_of(spec.kind)
    found = stand_ins(eff, spec, out) if stand_ins is not None else Preview()
    version = preview_version(eff.image.version)
    rendered = render.render(
        project,
        eff,
        version=version,
        packer_version=packer_version,
        out=out,
        prepared=found.prepared,
        marks=found.marks,
    )
    manifest = {
        "schema_version": 1,
        "preview": True,
        "image": eff.name,
        "target": eff.target,
        "version": version,
        "why": "rendered offline (bakery render --offline): the source, the version and the bake's marks "
        "were not resolved; bakery does not build or record this directory (bakery build does both)",
    }
    (out / PREVIEW_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return rendered


def render_offline(
    project: Project, workspace: Workspace, name: str, target: str, out: Path | None, packer_version: str | None
) -> render.RenderResult:
    """`bakery render --offline`: the preview of `name` on `target` in `out` (default
    .bakery/render/IMAGE-TARGET-preview, replacing an earlier preview there), for `packer_version`
    (default: the installed Packer's). Raises UsageError, ConfigError, BuildError (no packer)."""
    eff = project.effective(name, target)
    if out is None:
        workspace.ensure()
        out = default_directory(workspace, name, target)
        remove_tree(out)
    rendered = render_preview(project, eff, out=out, packer_version=packer_version or tools.packer_version())
    return render.RenderResult(
        directory=str(rendered.directory),
        image=name,
        target=target,
        version=preview_version(eff.image.version),
        builder=rendered.builder,
        files=sorted([*rendered.files, PREVIEW_FILE]),
        preview=True,
    )


def refuse_preview(directory: Path) -> None:
    """UsageError if `directory` is a preview render: it is never built or recorded by bakery."""
    if os.path.lexists(directory / PREVIEW_FILE):
        raise UsageError(
            f"{directory} is a preview render (bakery render --offline): it names no resolved source, "
            "version or bake mark, so bakery does not build or record it",
            hint="bakery build IMAGE --target T renders, builds and records it (bakery render without "
            "--offline writes what a bake would build)",
        )
