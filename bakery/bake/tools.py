"""Versions of the tools a bake uses, and the state of the project's git checkout."""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

from bakery import packer, runner
from bakery.errors import BuildError
from bakery.packer import parse_version


@functools.cache
def packer_version() -> str:
    """'1.6.6' for the packer on PATH. Raises BuildError if it is missing."""
    result = runner.run(packer.version_argv(), what="packer version")
    try:
        return ".".join(map(str, parse_version(result.output)))
    except ValueError:
        raise BuildError(f"cannot read Packer's version from {result.output!r}") from None


def ansible_version() -> str:
    try:
        return metadata.version("ansible-core")
    except metadata.PackageNotFoundError:
        raise BuildError("ansible-core is not installed beside bakery", hint="run `make setup`") from None


def versions() -> dict[str, str]:
    return {"packer": packer_version(), "ansible": ansible_version()}


def git_state(root: Path) -> dict[str, str | bool | None]:
    """Commit of the checkout holding `root` and whether its tree has uncommitted changes."""
    try:
        head = runner.run(["git", "-C", str(root), "rev-parse", "HEAD"], what="git rev-parse", check=False)
    except BuildError:  # git is not installed: no commit to trace to
        return {"uri": f"file://{root}", "commit": None, "dirty": True}
    if head.returncode != 0:
        return {"uri": f"file://{root}", "commit": None, "dirty": True}
    status = runner.run(["git", "-C", str(root), "status", "--porcelain"], what="git status", check=False)
    top = runner.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], what="git rev-parse", check=False)
    return {
        "uri": f"git+file://{top.output.strip()}",
        "commit": head.output.strip(),
        "dirty": bool(status.output.strip()),
    }
