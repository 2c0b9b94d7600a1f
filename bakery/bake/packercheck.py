"""`bakery validate --packer`: every image x target rendered offline (bake/preview.py), then
`packer validate` and `packer fmt -check` on each: the pull-request check, with no cloud account.

The renders go to a temporary directory outside the project, removed afterwards; nothing is
written beside images.yaml. Packer >= 1.7 gets `packer init` first, as a bake does (it installs
the plugins the render declares).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bakery import packer, runner
from bakery.bake import preview, tools
from bakery.config.load import Project
from bakery.errors import UsageError
from bakery.progress import Reporter

FMT_CHANGES = 3  # `packer fmt -check`: some file is not formatted


@dataclass(frozen=True)
class PackerCheck:
    """One image on one target: what Packer said of its offline render."""

    image: str
    target: str
    version: str  # the preview version rendered ("1.0-preview")
    valid: bool  # `packer validate` accepted it
    formatted: bool  # `packer fmt -check` found nothing to change
    problems: list[str]  # Packer's lines where it refused ("packer validate: ..."), else []

    @property
    def ok(self) -> bool:
        return self.valid and self.formatted


@dataclass(frozen=True)
class PackerReport:
    packer: str  # the version that checked
    checks: list[PackerCheck]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def rejected(self) -> list[PackerCheck]:
        return [check for check in self.checks if not check.ok]


def check_project(project: Project, reporter: Reporter) -> PackerReport:
    """Render every image x target offline and ask Packer about each. Raises UsageError when
    packer is not installed, ConfigError when a render refuses a value of images.yaml."""
    if shutil.which(packer.PACKER, path=runner.child_env()["PATH"]) is None:
        raise UsageError(
            "packer is not installed or not on PATH: `bakery validate --packer` runs packer validate "
            "and packer fmt -check on every render",
            hint="install Packer (make setup does), or run `bakery validate` without --packer",
        )
    version = tools.packer_version()
    checks: list[PackerCheck] = []
    scratch = Path(tempfile.mkdtemp(prefix="bakery-validate-"))
    try:
        for name in project.order(None):
            for target in project.targets_of(name):
                reporter.phase("packer validate", f"{name} on {target}")
                out = scratch / f"{name}-{target}"
                eff = project.effective(name, target)
                preview.render_preview(project, eff, out=out, packer_version=version)
                check = _check(out, version)
                checks.append(PackerCheck(name, target, preview.preview_version(eff.image.version), *check))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return PackerReport(packer=version, checks=checks)


def _check(out: Path, packer_version: str) -> tuple[bool, bool, list[str]]:
    """(packer validate accepted it, packer fmt -check did, what Packer said where it refused)."""
    problems: list[str] = []
    if packer.wants_required_plugins(packer_version):
        init = runner.run(packer.init_argv(out), what="packer init", check=False)
        if init.returncode != 0:
            problems += [f"packer init: {line}" for line in _lines(init.output, out)]
    validated = runner.run(packer.validate_argv(out), what="packer validate", check=False)
    if validated.returncode != 0:
        problems += [f"packer validate: {line}" for line in _lines(validated.output, out)]
    formatted = runner.run(packer.fmt_check_argv(out), what="packer fmt", check=False)
    if formatted.returncode == FMT_CHANGES:  # it names the files it would change
        problems += [
            f"packer fmt -check: {name} is not as packer fmt writes it" for name in _lines(formatted.output, out)
        ]
    elif formatted.returncode != 0:
        problems += [f"packer fmt -check: {line}" for line in _lines(formatted.output, out)]
    return validated.returncode == 0, formatted.returncode == 0, problems


def _lines(output: str, out: Path) -> list[str]:
    """Packer's output without blank lines, the scratch directory shown as the render's own name."""
    return [line.replace(f"{out}/", "").rstrip() for line in output.splitlines() if line.strip()]
