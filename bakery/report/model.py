"""The report's page model: typed, frozen values that the builder (report/build.py) fills from
bakery's services and the renderer (report/render.py) shows. Nothing here reads or writes.

The SBOM and scan sections are plug points: `Sbom` and `Findings` stay None ("no SBOM recorded",
"not scanned") until a reader for them is handed to the builder (build.Readers). A reader says
`Untrusted` for one the registry holds that cannot be trusted: that is not "none recorded"."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def anchor(kind: str, *parts: str) -> str:
    """An HTML id / URL fragment for `kind` and `parts` made only of [A-Za-z0-9_.-]: text from a
    registry or a cloud never reaches an id or an href as it is. When cleaning changed anything,
    a digest of the original keeps two different names from sharing one anchor."""
    raw = "\x00".join(parts)
    slug = "-".join(_UNSAFE.sub("-", p).strip("-") or "x" for p in parts)[:80]
    clean = all(not _UNSAFE.search(p) and p for p in parts)
    suffix = "" if clean else "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{_UNSAFE.sub('-', kind)}-{slug}{suffix}"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Tests:
    state: str  # passed | failed | invalid | none | unknown
    detail: str
    passed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Approval:
    channel: str
    key: str  # the trusted key's name ('' when it counts for nothing)
    by: str
    time: str
    comment: str
    problem: str = ""


@dataclass(frozen=True)
class Package:
    name: str
    version: str


@dataclass(frozen=True)
class Untrusted:
    """An SBOM or scan the registry holds (or the signed audit log says it held) for a version that
    cannot be trusted: a signature that fails, another image's, one put back or deleted."""

    why: str


@dataclass(frozen=True)
class Sbom:
    """What an image's SBOM says, in short (bakery/sbom plugs in here through build.Readers.sbom)."""

    packages: int
    os: str = ""
    top: tuple[Package, ...] = ()


@dataclass(frozen=True)
class Finding:
    id: str  # CVE-2026-1234
    package: str
    version: str
    severity: str
    fixed_in: str = ""  # '' when not yet fixed
    allowed: str = ""  # the allowance's reason, when one lets it through
    unreadable: str = ""  # why the severity the feed gave could not be read (then `unknown`)


@dataclass(frozen=True)
class Findings:
    """What a scan found (bakery/scan plugs in here through build.Readers.findings)."""

    feed: str
    scanned: str  # when
    findings: tuple[Finding, ...] = ()
    over_policy: bool = False  # a finding above its channel's policy: the image is marked vulnerable


@dataclass(frozen=True)
class Provenance:
    digest: str  # the signed statement's digest ('' when unknown)
    builder: str = ""
    invocation: str = ""
    started: str = ""
    finished: str = ""
    built_by: str = ""
    dependencies: tuple[tuple[str, str], ...] = ()  # (name, digest)
    problem: str = ""  # why it could not be read


@dataclass(frozen=True)
class Runner:
    """A group running (some instances of) a version."""

    group: str
    instances: int
    anchor: str


@dataclass(frozen=True)
class Version:
    anchor: str
    name: str
    version: str
    target: str
    created: str
    inputs_digest: str
    base: str
    parent: str | None  # IMAGE@VERSION
    parent_anchor: str | None
    locations: tuple[str, ...]
    verified: bool
    checks: tuple[Check, ...]
    signed_by: tuple[str, ...]
    revoked: str  # '' or how it is revoked ("revoked since …: reason")
    provenance: Provenance
    tests: Tests
    approvals: tuple[Approval, ...] = ()
    heads: tuple[str, ...] = ()  # the channels whose head it is
    runs_on: tuple[Runner, ...] = ()
    sbom: Sbom | Untrusted | None = None
    findings: Findings | Untrusted | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def untested(self) -> bool:
        return self.tests.state != "passed"

    @property
    def vulnerable(self) -> bool:
        return isinstance(self.findings, Findings) and self.findings.over_policy

    @property
    def scan_untrusted(self) -> str:
        """Why its stored scan cannot be trusted ('' when it can, or there is none)."""
        return self.findings.why if isinstance(self.findings, Untrusted) else ""

    @property
    def sbom_untrusted(self) -> str:
        """Why its stored SBOM cannot be trusted ('' when it can, or there is none)."""
        return self.sbom.why if isinstance(self.sbom, Untrusted) else ""

    @property
    def untrusted(self) -> bool:
        """A stored scan or SBOM that cannot be trusted: what `bakery status` exits 1 for (a scan)
        and `bakery scan` refuses (an SBOM), never "none recorded"."""
        return bool(self.scan_untrusted or self.sbom_untrusted)


@dataclass(frozen=True)
class Rollout:
    id: str
    kind: str
    started: str
    finished: str
    who: str
    from_: str  # what it ran before ('' when nothing)
    to: str
    to_anchor: str | None
    strategy: str
    result: str
    reason: str


@dataclass(frozen=True)
class Running:
    image: str  # IMAGE@VERSION, or the image id of an image bakery did not bake
    instances: int
    anchor: str | None  # the version's section, when bakery baked it and the catalog lists it


@dataclass(frozen=True)
class Group:
    anchor: str
    name: str
    image: str
    target: str
    kind: str
    intended: str
    intended_anchor: str | None
    running: tuple[Running, ...]
    drift: tuple[str, ...]  # why it drifts (empty: in sync)
    channel: str = ""
    channel_head: str = ""
    history: tuple[Rollout, ...] = ()
    error: str = ""  # why the group could not be read

    @property
    def drifting(self) -> bool:
        return bool(self.drift)


@dataclass(frozen=True)
class Head:
    channel: str
    target: str
    image: str
    version: str | None  # the effective head (revoked heads skipped)
    anchor: str | None
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Estate:
    project: str
    generated: str
    targets: tuple[str, ...]
    versions: tuple[Version, ...]
    groups: tuple[Group, ...]
    heads: tuple[Head, ...]
    problems: tuple[str, ...] = ()  # what could not be read (a target, the channels, the revocations)

    def counts(self) -> dict[str, int]:
        return {
            "versions": len(self.versions),
            "revoked": sum(bool(v.revoked) for v in self.versions),
            "untested": sum(v.untested for v in self.versions),
            "vulnerable": sum(v.vulnerable for v in self.versions),
            "untrusted": sum(v.untrusted for v in self.versions),
            "drifting": sum(g.drifting for g in self.groups),
        }
