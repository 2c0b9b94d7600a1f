"""Everything a render needs, as a bake computes it (and `bakery render` with it): the request,
the parent image, the resolved base, the bake key, the provenance known before the build and the
provider's marks for what the build creates; then the render itself, with `packer init`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakery import packer, runner, steps
from bakery.bake import inputs, render, tools
from bakery.config import kinds
from bakery.config.load import EffectiveImage, Project
from bakery.core.catalog import ImageRecord, newest
from bakery.core.debris import Owner
from bakery.core.identity import who
from bakery.errors import UsageError
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, BuildMarks, Prepared, Provider


@dataclass(frozen=True)
class Staged:
    prepared: Prepared
    digest: str
    skeleton: dict[str, Any]
    marks: BuildMarks  # the provider's marks for what the build creates


def request_for(
    project: Project,
    eff: EffectiveImage,
    version: str,
    workdir: Path,
    parent: ImageRecord | None,
    *,
    log_path: Path,
    invocation: str,
    started: str,
) -> BakeRequest:
    return BakeRequest(
        project,
        eff,
        version,
        workdir,
        parent,
        log_path,
        tools.versions(),
        invocation=invocation,
        owner=Owner.current(invocation, started),
    )


def parent_of(eff: EffectiveImage, provider: Provider) -> ImageRecord | None:
    """The newest version of the image `eff` starts from (`from:`), None for a root image.
    Raises UsageError when it has none on the target yet."""
    if eff.image.parent is None:
        return None
    parent = newest(provider.images(eff.target, eff.image.parent))
    if parent is None:
        raise UsageError(
            f"image '{eff.name}' starts from '{eff.image.parent}', which has no version on {eff.target} yet",
            hint=f"bake it first: bakery build {eff.image.parent} --target {eff.target}",
        )
    return parent


def stage(project: Project, request: BakeRequest, provider: Provider) -> Staged:
    """What the render of `request` needs, resolved by `provider` (raises its BakeryError)."""
    eff = request.eff
    prepared = provider.prepare(request)
    values = render.variables(project, eff, request.version, prepared)
    files = render.input_files(project, eff)  # hashed once: the key and the provenance agree
    digest = inputs.bake_key(project, eff, values, prepared, request.tools, files)
    skeleton = inputs.statement_skeleton(
        project,
        eff,
        version=request.version,
        prepared=prepared,
        digest=digest,
        tools=request.tools,
        git=tools.git_state(project.root),
        invocation=request.invocation,
        started=request.owner.started if request.owner else steps.now(),
        builder=kinds.get(eff.kind).builder,
        files=files,
        built_by=who(),
    )
    extra = provider.before_build(request, skeleton)
    return Staged(prepared=prepared, digest=digest, skeleton=skeleton, marks=extra)


def render_staged(
    project: Project, request: BakeRequest, staged: Staged, *, out: Path, reporter: Reporter
) -> render.Rendered:
    """The Packer directory of `request` in `out`, its plugins installed when its Packer needs
    `packer init`. Raises BuildError."""
    packer_version = request.tools["packer"]
    rendered = render.render(
        project,
        request.eff,
        version=request.version,
        packer_version=packer_version,
        out=out,
        prepared=staged.prepared,
        marks=staged.marks,
    )
    if packer.wants_required_plugins(packer_version):
        runner.run(
            packer.init_argv(rendered.directory),
            what="packer init",
            log_path=request.log_path,
            on_line=lambda line: reporter.line("packer", line),
        )
    return rendered
