"""Packer command lines (pure, tested by equality) and parsing of its machine-readable output."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PACKER = "packer"


def version_argv() -> list[str]:
    return [PACKER, "version"]


def init_argv(directory: Path) -> list[str]:
    """Install the plugins a render declares (Packer >= 1.7 only)."""
    return [PACKER, "init", str(directory)]


def validate_argv(directory: Path) -> list[str]:
    return [PACKER, "validate", str(directory)]


def fmt_check_argv(directory: Path) -> list[str]:
    """Exit 0 when every HCL file in `directory` is as `packer fmt` writes it; 3 (and the names
    of the files it would change) when one is not."""
    return [PACKER, "fmt", "-check", str(directory)]


def build_argv(directory: Path, *, force: bool = False) -> list[str]:
    """`packer build` of a rendered directory.

    -on-error=cleanup: a failed bake leaves no VM, disk or cloud resource behind.
    -machine-readable: bakery parses artifacts from it and shows the ui lines as progress.
    """
    argv = [PACKER, "build", "-machine-readable", "-color=false", "-on-error=cleanup"]
    if force:
        argv.append("-force")
    return [*argv, str(directory)]


@dataclass(frozen=True)
class Event:
    """One line of `packer -machine-readable`: timestamp,target,type,data..."""

    timestamp: str
    target: str
    type: str
    data: tuple[str, ...]


def _unescape(field: str) -> str:
    return field.replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_line(line: str) -> Event | None:
    """Parse one machine-readable line; None for anything else (Packer prints a few plain lines)."""
    parts = line.split(",")
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    return Event(parts[0], parts[1], parts[2], tuple(_unescape(p) for p in parts[3:]))


def ui_text(event: Event) -> str | None:
    """The human line of a `ui` event (say/message/error), else None."""
    if event.type == "ui" and len(event.data) >= 2:
        return event.data[1]
    return None


def artifact_ids(events: list[Event]) -> list[str]:
    """Artifact ids ('us-east-1:ami-0abc,eu-west-1:ami-0def' for AMIs; a path for qemu)."""
    return [e.data[2] for e in events if e.type == "artifact" and len(e.data) >= 3 and e.data[1] == "id"]


def parse_version(text: str) -> tuple[int, ...]:
    """'Packer v1.6.6' or '1.10.0' -> (1, 6, 6)."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise ValueError(f"no version in {text!r}")
    return tuple(int(p) for p in match.groups())


def wants_required_plugins(packer_version: str) -> bool:
    """Packer 1.7 and later take (and need) a required_plugins block; 1.6 rejects it."""
    return parse_version(packer_version) >= (1, 7, 0)
