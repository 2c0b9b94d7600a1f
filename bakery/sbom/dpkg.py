"""The packages of a Debian system, read from its package database (`/var/lib/dpkg/status`) and
its `/etc/os-release`, exactly as `dpkg-query -W` would list them inside the running system.

What `dpkg-query -W` (no pattern) lists, and so what this lists: every status entry whose
status (the third word of `Status:`) is not `not-installed` (dpkg's showpackages() skips those,
and only those). So a package removed but not purged (`deinstall ok config-files`) is listed,
with the version its entry keeps; a half-installed or unpacked one is listed too; a purged one
(`purge ok not-installed`) is not. An entry without `Version:` is listed with an empty version,
as `${Version}` prints it. A Multi-Arch: same package installed for two architectures is two
entries, two packages.

The source package: `Source: foo (1.2-3)` names foo at 1.2-3; `Source: foo` names foo at the
binary's own version; no `Source:` means the source is named like the binary, at its version.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from debian.deb822 import Deb822

from bakery.errors import BakeryError

MAX_STATUS_BYTES = 64 * 1024 * 1024  # a large Debian system's status file is a few MiB
_SOURCE = re.compile(r"^(?P<name>[^\s(]+)(?:\s*\((?P<version>[^)\s]+)\))?$")
_FIELD = re.compile(r"^(?P<name>[^\s:#][^:\s]*):")


class PackageDbError(BakeryError):
    """A package database that cannot be read as one (exit 1)."""


@dataclass(frozen=True, order=True)
class Package:
    """One package as `dpkg-query -W` lists it, with its source package and state."""

    name: str
    arch: str
    version: str
    source: str
    source_version: str
    status: str  # dpkg's package state: installed, config-files, half-installed, unpacked, ...


@dataclass(frozen=True)
class OsRelease:
    id: str  # "debian"
    version_id: str  # "12" ('' on testing/sid)
    pretty_name: str
    version_codename: str


def parse_status(data: bytes) -> tuple[Package, ...]:
    """The packages `dpkg-query -W` lists from this status file, sorted by name and arch.
    Raises PackageDbError when it is too large, not UTF-8, an entry has no Package/Status or
    repeats a field (two entries without the blank line between them would merge)."""
    if len(data) > MAX_STATUS_BYTES:
        raise PackageDbError(f"the dpkg status file is {len(data)} bytes, more than {MAX_STATUS_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackageDbError(f"the dpkg status file is not UTF-8 ({exc})") from None
    lines = text.splitlines(keepends=True)
    _refuse_repeated_fields(lines)
    packages = []
    for number, paragraph in enumerate(Deb822.iter_paragraphs(lines), start=1):
        name, status = paragraph.get("Package", "").strip(), paragraph.get("Status", "").split()
        if not name or len(status) != 3:
            raise PackageDbError(f"entry {number} of the dpkg status file has no Package or no three-word Status")
        if status[2] == "not-installed":
            continue  # purged: dpkg-query -W does not list it
        version = paragraph.get("Version", "").strip()
        source, source_version = _source(paragraph.get("Source", "").strip(), name, version)
        arch = paragraph.get("Architecture", "").strip()
        packages.append(Package(name, arch, version, source, source_version, status[2]))
    return tuple(sorted(packages))


def _refuse_repeated_fields(lines: list[str]) -> None:
    """PackageDbError naming the line of a field its entry already has: dpkg refuses such a file,
    and a parser keeping the last value would merge two entries whose blank line is missing."""
    seen: dict[str, int] = {}  # field name (case-insensitive, as deb822) -> its line
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            seen = {}
            continue
        found = _FIELD.match(line)
        if found is None:
            continue  # a continuation line (or one dpkg would refuse for its own reasons)
        name = found["name"].lower()
        if name in seen:
            raise PackageDbError(
                f"line {number} of the dpkg status file repeats the field {found['name']!r} of line {seen[name]} "
                "in one entry (dpkg refuses this; a blank line missing between two entries?)"
            )
        seen[name] = number


def _source(field: str, name: str, version: str) -> tuple[str, str]:
    if not field:
        return name, version
    match = _SOURCE.match(field)
    if match is None:
        raise PackageDbError(f"package {name}: Source {field!r} is not 'NAME' or 'NAME (VERSION)'")
    return match["name"], match["version"] or version


def parse_os_release(data: bytes) -> OsRelease:
    """os-release(5): KEY=value lines, values possibly shell-quoted. Raises PackageDbError
    when it names no ID."""
    values: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").splitlines()[:200]:
        key, sep, raw = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(raw)
        except ValueError:
            continue  # an unbalanced quote: os-release(5) says to ignore the line
        values[key] = " ".join(words)
    if not values.get("ID"):
        raise PackageDbError("the os-release file names no ID")
    return OsRelease(
        id=values["ID"],
        version_id=values.get("VERSION_ID", ""),
        pretty_name=values.get("PRETTY_NAME", values["ID"]),
        version_codename=values.get("VERSION_CODENAME", ""),
    )
