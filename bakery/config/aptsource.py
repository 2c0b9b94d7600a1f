"""The Debian archive this machine's apt already uses, read from its apt sources.

A local recipe without `mirror:` bootstraps from there, so bakery goes wherever apt goes (a proxy,
a company mirror, a local file tree) and no address is written into bakery itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# Where apt keeps its sources. Read at call time, so a test can point it at a fake tree.
# $BAKERY_APT_DIR: another apt configuration to read (a chroot, a test); /etc/apt otherwise.
ETC_APT = Path(os.environ.get("BAKERY_APT_DIR") or "/etc/apt")
# What apt last fetched: a source's Release file names its origin ("Debian", a vendor's name).
APT_LISTS = Path("/var/lib/apt/lists")
# mmdebstrap fetches from these; cdrom:, mirror+http: and the like are left to apt itself.
_SCHEMES = re.compile(r"^(https?://|file:)")


@dataclass(frozen=True)
class AptSource:
    """One `deb` source: a URI and the suites and components apt reads from it."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def debian_mirror(etc_apt: Path, suite: str | None = None, lists: Path | None = None) -> str | None:
    """The URI of the Debian archive among the apt sources under `etc_apt`, or None.

    Only archive suites count (a codename such as `bookworm`, not `bookworm-security`,
    `bookworm-updates` or `./`). A source whose Release file (in apt's `lists`) names another
    origin than Debian is a vendor's repository and never counts. Preferred, in order: a source that
    carries `suite`, one apt's lists prove Debian's, one with the `main` component, the first one
    apt reads. `file:/path` is given as `file:///path`.
    """
    lists = APT_LISTS if lists is None else lists
    candidates = []
    for source in read_sources(etc_apt):
        archive = [x for x in source.suites if _archive_suite(x)]
        if not archive:
            continue
        origin = _origin(lists, source.uri, suite if suite in archive else archive[0])
        if origin is None or origin == "Debian":
            candidates.append((source, origin == "Debian"))
    if not candidates:
        return None
    best = min(
        enumerate(candidates),
        key=lambda item: (
            suite not in item[1][0].suites,
            not item[1][1],
            "main" not in item[1][0].components,
            item[0],
        ),
    )[1][0]
    return best.uri


def _origin(lists: Path, uri: str, suite: str) -> str | None:
    """The Origin of `uri`'s `suite` as apt last fetched it, or None if apt has no Release file."""
    stem = re.sub(r"^[a-z+]+:/*", "", uri).rstrip("/").replace("/", "_")
    for name in (f"{stem}_dists_{suite}_InRelease", f"{stem}_dists_{suite}_Release"):
        try:
            text = (lists / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = re.search(r"^Origin:\s*(.+?)\s*$", text, re.MULTILINE)
        if found:
            return found.group(1)
    return None


def read_sources(etc_apt: Path) -> list[AptSource]:
    """The enabled `deb` sources with a URI mmdebstrap can fetch from, in the order apt reads them:
    sources.list, then sources.list.d/*.list and *.sources by file name."""
    out: list[AptSource] = []
    files = [etc_apt / "sources.list"]
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # absent or unreadable: apt would skip it as well
        out += _deb822(text) if path.suffix == ".sources" else _one_line(text)
    return [s for s in out if _SCHEMES.match(s.uri)]


def _archive_suite(suite: str) -> bool:
    return bool(re.fullmatch(r"[a-z][a-z0-9]*", suite))


def _uri(text: str) -> str:
    # apt writes local trees as file:/srv/mirror; mirror: (and mmdebstrap) take file:///srv/mirror.
    if text.startswith("file:") and not text.startswith("file://"):
        return "file://" + text.removeprefix("file:")
    return text


def _one_line(text: str) -> list[AptSource]:
    """`deb [options] URI SUITE [COMPONENT...]` lines; `#` starts a comment."""
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options, which may hold spaces: [ arch=amd64 ]
            end = next((i for i, w in enumerate(words) if w.endswith("]")), len(words) - 1)
            words = words[end + 1 :]
        if len(words) >= 2:
            out.append(AptSource(_uri(words[0]), (words[1],), tuple(words[2:])))
    return out


def _deb822(text: str) -> list[AptSource]:
    """deb822 stanzas (Types, URIs, Suites, Components, Enabled), separated by blank lines."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key is not None:  # a continuation line
                fields[key] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        components = tuple(fields.get("components", "").split())
        out += [AptSource(_uri(uri), suites, components) for uri in fields.get("uris", "").split()]
    return out
