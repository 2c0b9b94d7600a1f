"""An image's packages against a feed's advisories (pure): by SOURCE package and Debian version
order (python-debian). An advisory with a fixed version finds a package whose source version is
older than it (and not older than where it was introduced); one not yet fixed finds every version
it covers. Several binary packages of one source are one finding, naming them all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from debian.debian_support import Version

from bakery.config.scan_models import SEVERITIES
from bakery.sbom.dpkg import Package
from bakery.scan.formats import Advisory, Feed


@dataclass(frozen=True, order=True)
class Finding:
    id: str
    source: str
    installed: str  # the source version installed
    fixed: str  # the first fixed version; '' when not yet fixed
    severity: str  # one of SEVERITIES
    given: str  # as the feed says it
    packages: tuple[str, ...] = ()  # the binary packages built from that source (name:arch)
    aliases: tuple[str, ...] = ()
    unreadable: str = ""  # why the severity the feed gave could not be read (then `unknown`)

    @property
    def not_yet_fixed(self) -> bool:
        return not self.fixed

    def names(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))

    def line(self) -> str:
        """'CVE-2024-5535 openssl 3.0.13-1~deb12u1 (libssl3) fixed in 3.0.14-1~deb12u1, severity low'."""
        shown = f" ({', '.join(self.packages)})" if self.packages and self.packages != (self.source,) else ""
        fix = f"fixed in {self.fixed}" if self.fixed else "not yet fixed"
        said = self.given + (f"; {self.unreadable}" if self.unreadable else "")
        given = "" if said == self.severity else f" ({said})"
        also = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.id}{also} {self.source} {self.installed}{shown} {fix}, severity {self.severity}{given}"


def rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else SEVERITIES.index("unknown")


def affects(advisory: Advisory, version: str) -> bool:
    """Whether `version` (a source version) is within what `advisory` covers. Raises ValueError
    for a version that is not one (the caller names the advisory)."""
    installed = Version(version)
    if advisory.introduced is not None and installed < Version(advisory.introduced):
        return False
    return advisory.fixed is None or installed < Version(advisory.fixed)


def match(packages: Iterable[Package], feed: Feed) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """(the findings, sorted: most severe first; the advisories skipped because a version in them
    does not parse). Only installed packages count: a removed one's leftover configuration is
    no code that runs."""
    sources: dict[tuple[str, str], list[str]] = {}
    for p in packages:
        if p.status in ("installed", "half-configured", "unpacked", "half-installed", "triggers-awaited",
                        "triggers-pending"):  # fmt: skip
            sources.setdefault((p.source, p.source_version), []).append(f"{p.name}:{p.arch}")
    found: dict[tuple[str, str, str], Finding] = {}
    skipped: list[str] = []
    for (source, version), binaries in sorted(sources.items()):
        for advisory in feed.advisories.get(source, ()):
            try:
                hit = affects(advisory, version)
            except ValueError:
                skipped.append(f"{advisory.id} {source}: a version that is not a Debian version")
                continue
            key = (advisory.id, source, version)
            if not hit or key in found:
                continue
            found[key] = Finding(
                advisory.id, source, version, advisory.fixed or "", advisory.severity, advisory.given,
                tuple(sorted(set(binaries))), advisory.aliases, advisory.unreadable,
            )  # fmt: skip
    ordered = sorted(found.values(), key=lambda f: (-rank(f.severity), f.source, f.id))
    return tuple(ordered), tuple(skipped)
