"""What is inside an image: `bakery sbom IMAGE@VERSION` (its signed SBOM) and `bakery diff A B`
(the packages and inputs that changed between two images)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import typer

from bakery.cli.common import FileOpt, JsonOpt, TerminalReporter, emit, handled
from bakery.cli.trust import TargetOpt, _trust
from bakery.errors import UsageError

FORMATS = ("table", "cyclonedx")


def _sboms(file: Path | None) -> Any:
    from bakery.sbom.service import Sboms
    from bakery.trust.verify import Verifier

    project, trust, provider_for = _trust(file, TerminalReporter(), creates_key=False)
    return Sboms(Verifier(project, trust, provider_for))


@handled
def sbom(
    ref: str = typer.Argument(..., metavar="IMAGE[@VERSION]", help="The image (its newest version when none)."),
    target: str | None = TargetOpt,
    output: str = typer.Option(
        "table", "--format", help="table (the packages) or cyclonedx (the CycloneDX 1.6 JSON document itself)."
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The packages inside an image: its SBOM, made by its bake from the built system's package
    database, signed and bound to its provenance. Exit 1 when it has none, or its SBOM or
    provenance does not verify."""
    if output not in FORMATS:
        raise UsageError(f"--format {output!r}: one of {', '.join(FORMATS)}")
    if as_json and output != "table":
        raise UsageError("--json and --format cyclonedx each print JSON: say one")
    found = _sboms(file).show(ref, target)
    if output == "cyclonedx":
        sys.stdout.write(json.dumps(found.document, indent=2, ensure_ascii=False) + "\n")
        return
    body = dataclasses.asdict(found)
    body.pop("document")
    emit("sbom", body, as_json=as_json, text=lambda: _sbom_text(found))


def _sbom_text(found: Any) -> str:
    lines = [
        f"{found.ref} on {found.target}: {len(found.packages)} packages ({found.system or 'unknown system'})",
        f"  signed by {', '.join(found.signed_by)}, bound to provenance {found.provenance}",
        "",
    ]
    rows = [("PACKAGE", "ARCH", "VERSION", "SOURCE", "STATE")]
    for p in found.packages:
        source = p.source if p.source_version == p.version else f"{p.source} ({p.source_version})"
        rows.append((p.name, p.arch, p.version, source, p.status))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4] for row in rows]
    return "\n".join(line.rstrip() for line in lines)


@handled
def diff(
    before: str = typer.Argument(..., metavar="IMAGE@A", help="The image before."),
    after: str = typer.Argument(..., metavar="IMAGE@B", help="The image after."),
    target: str | None = TargetOpt,
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """What changed between two images: packages added, removed, up- or downgraded (Debian version
    order), and the inputs of their bakes (files, images.yaml entry, base, tools), from both
    images' verified provenance and signed SBOMs. Exit 1 when either does not verify."""
    result = _sboms(file).diff(before, after, target)
    emit("diff", result, as_json=as_json, text=lambda: _diff_text(result))


def _diff_text(result: Any) -> str:
    packages = result.packages
    lines = [f"{result.before} -> {result.after} on {result.target}"]
    if packages.empty:
        lines.append("packages: no change")
    else:
        counts = (len(packages.added), len(packages.removed), len(packages.changed))
        lines.append("packages: {} added, {} removed, {} changed".format(*counts))
        lines += [f"  + {p.name}:{p.arch} {p.version}" for p in packages.added]
        lines += [f"  - {p.name}:{p.arch} {p.version}" for p in packages.removed]
        lines += [f"  ~ {c.name}:{c.arch} {c.before} -> {c.after} ({c.change})" for c in packages.changed]
    if not result.inputs:
        lines.append("inputs: no change")
    else:
        lines.append(f"inputs: {len(result.inputs)} changed")
        for change in result.inputs:
            before = "(none)" if change.before is None else json.dumps(change.before, ensure_ascii=False)
            after = "(none)" if change.after is None else json.dumps(change.after, ensure_ascii=False)
            lines.append(f"  {change.kind} {change.name}: {before} -> {after}")
    return "\n".join(lines)


COMMANDS = (sbom, diff)
