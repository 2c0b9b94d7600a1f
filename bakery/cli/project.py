"""The commands about images.yaml and the Packer directories it renders: validate, schema, render.

`validate --packer` and `render --offline` need no cloud account (the pull-request check)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import typer

from bakery.cli.common import (
    FileOpt,
    JsonOpt,
    TargetOpt,
    TerminalReporter,
    emit,
    err,
    handled,
    project_of,
    workspace_of,
)
from bakery.errors import EXIT_FAILED, EXIT_USAGE, UsageError


@handled
def validate(
    packer: bool = typer.Option(
        False,
        "--packer",
        help="Also render every image x target offline and run packer validate and packer fmt -check on each "
        "(no cloud account needed; exit 1 if Packer rejects one).",
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check images.yaml: shape, references, files, ancestry. Exit 0 if valid, 2 if not."""
    from bakery.config import load as config
    from bakery.errors import ConfigError

    path = config.find_config(str(file) if file else None)
    try:
        project = config.load(path)
    except ConfigError as exc:
        if as_json:
            emit(
                "validate",
                {"file": str(path), "valid": False, "problems": list(exc.problems) or [exc.message]},
                as_json=True,
                text=str,
            )
            err(exc.message)
            raise typer.Exit(EXIT_USAGE) from None
        raise
    cfg = project.config
    if cfg.trust.trusted:  # the public keys are files beside images.yaml: check they load
        from bakery.trust.keys import load_trusted

        load_trusted(cfg.trust, root=project.root, workspace=workspace_of(project))
    summary: dict[str, Any] = {
        "file": str(path),
        "valid": True,
        "images": sorted(cfg.images),
        "targets": sorted(cfg.targets),
        "groups": sorted(cfg.groups),
        "channels": sorted(cfg.channels),
    }
    head = (
        f"{path}: valid ({len(cfg.images)} images, {len(cfg.targets)} targets, "
        f"{len(cfg.groups)} groups, {len(cfg.channels)} channels)"
    )
    if not packer:
        emit("validate", summary, as_json=as_json, text=lambda: head)
        return
    from bakery.bake.packercheck import check_project

    report = check_project(project, TerminalReporter())
    summary["valid"] = report.ok
    summary["packer"] = {
        "version": report.packer,
        "checks": [{**vars(check), "ok": check.ok} for check in report.checks],
    }
    emit("validate", summary, as_json=as_json, text=lambda: head + "\n" + _packer_text(report))
    if not report.ok:
        for check in report.rejected:
            err(f"error: packer rejects the render of {check.image} on {check.target}")
        raise typer.Exit(EXIT_FAILED)


def _packer_text(report: Any) -> str:
    lines = []
    for check in report.checks:
        lines.append(f"{'ok' if check.ok else 'FAILED':<7} {check.image} on {check.target} ({check.version})")
        lines += [f"          {problem}" for problem in check.problems]
    rejected = len(report.rejected)
    verdict = f"{rejected} rejected" if rejected else "all valid and packer fmt clean"
    lines.append(f"packer {report.packer}: {len(report.checks)} offline renders checked, {verdict}")
    return "\n".join(lines)


@handled
def schema() -> None:
    """Print the JSON Schema of images.yaml (for yaml-language-server and other editors)."""
    from bakery.config.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@handled
def render(
    image: str = typer.Argument(..., help="Image name from images.yaml."),
    target: str = TargetOpt,
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory to write (default .bakery/render/IMAGE-TARGET[-preview])."
    ),
    offline: bool = typer.Option(
        False,
        "--offline",
        help="Read no cloud: the declared source (or Packer's filter/family), version MAJOR.MINOR-preview. "
        "For review and packer validate; never built or recorded by bakery.",
    ),
    packer_version: str | None = typer.Option(
        None, "--packer-version", help="Render for this Packer version instead of the installed one."
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write a self-contained Packer build directory; `packer build DIR` runs it without bakery."""
    if packer_version is not None and not re.fullmatch(r"v?\d+\.\d+\.\d+", packer_version):
        raise UsageError(f"--packer-version takes a version such as 1.11.2, got {packer_version!r}")
    project = project_of(file)
    where = out.resolve() if out else None
    if offline:
        from bakery.bake.preview import render_offline

        result = render_offline(project, workspace_of(project), image, target, where, packer_version)
    else:
        from bakery.bake.service import Baker

        result = Baker(project, workspace_of(project), TerminalReporter()).render_only(
            image, target, where, packer_version
        )
    emit("render", result, as_json=as_json, text=lambda: _render_text(result))


def _render_text(result: Any) -> str:
    head = f"rendered {result.image} {result.version} for {result.target} ({result.builder}) into {result.directory}"
    if result.preview:
        return (
            f"{head}\n"
            "a preview: nothing was read from the target (source as declared or left to Packer, no next version); "
            f"check it with: packer validate {result.directory}"
        )
    return f"{head}\nrun it with: packer build {result.directory}"


COMMANDS = (validate, schema, render)
