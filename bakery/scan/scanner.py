"""Scanning one image: its trusted SBOM (bound to the provenance it verifies with) matched
against the feed the user named, the feed read once per run; the result signed and stored."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from bakery.config.load import Project
from bakery.config.scan_models import ChannelScan
from bakery.core.catalog import ImageRecord
from bakery.errors import TrustError, UsageError
from bakery.sbom import attest as sbom_attest
from bakery.scan import attest, formats, source
from bakery.scan.attest import StoredScan
from bakery.scan.formats import Feed
from bakery.scan.match import Finding, match
from bakery.scan.policy import Verdict, judge
from bakery.trust import channels
from bakery.trust.context import TrustContext
from bakery.trust.testresults import Subject

_DEBIAN = re.compile(r"^Debian GNU/Linux (?P<number>[0-9]{1,3}) \((?P<codename>[a-z]{2,20})\)$")


@dataclass(frozen=True)
class FeedChoice:
    name: str  # the path or URL as named
    base: Path  # what a relative path is relative to
    said_by: str  # "--feed" or "images.yaml scan.feed"


@dataclass(frozen=True)
class Scan:
    ref: str
    target: str
    provenance: str  # the provenance digest the SBOM (and this scan) is bound to
    system: str
    feed: str
    feed_digest: str
    format: str
    release: str
    scanned: str  # RFC 3339
    findings: tuple[Finding, ...]
    skipped: tuple[str, ...] = ()  # advisories whose versions do not parse
    advisories: int = 0  # how many the feed holds for the image's release
    feed_newest: str | None = None  # the feed's newest record's date (OSV); None: it says none

    @property
    def fixed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.not_yet_fixed)

    @property
    def not_yet_fixed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.not_yet_fixed)


class Scanner:
    def __init__(self, project: Project, trust: TrustContext, feed: str | None = None) -> None:
        """`feed`: the one `--feed` names (relative to the working directory), else images.yaml's."""
        self.project = project
        self.trust = trust
        settings = project.config.scan
        if feed is not None:
            self.choice: FeedChoice | None = FeedChoice(feed, Path.cwd(), "--feed")
        elif settings is not None:
            self.choice = FeedChoice(settings.feed, project.path.parent, "images.yaml scan.feed")
        else:
            self.choice = None
        self.timeout = settings.timeout_seconds if settings else 30
        self.max_bytes = (settings.max_mib if settings else 512) << 20
        self._raw: source.Raw | None = None
        self._feeds: dict[str, Feed] = {}

    def feed(self, system: str) -> Feed:
        """The feed, read once, parsed for the Debian release `system` names. Raises UsageError
        when no feed is named, FeedError when it cannot be read or is not one."""
        if self.choice is None:
            raise UsageError(
                "no vulnerability feed: name one with --feed FILE_OR_URL or in images.yaml (scan: {feed: ...})",
                hint="a Debian Security Tracker JSON export or an OSV export for Debian:12",
            )
        found = _DEBIAN.match(system)
        if found is None:
            raise TrustError(f"the scan knows Debian's feeds only; this image's system is {system or 'not said'}")
        if self._raw is None:
            self._raw = source.read(self.choice.name, base=self.choice.base, timeout=self.timeout,
                                    max_bytes=self.max_bytes)  # fmt: skip
        if system not in self._feeds:
            self._feeds[system] = formats.parse(self._raw, codename=found["codename"], number=found["number"])
        return self._feeds[system]

    def scan(self, record: ImageRecord, provenance: str) -> Scan:
        """Match the trusted SBOM of `record` (bound to `provenance`, the digest it verifies with)
        against the feed. Raises TrustError when it has no trusted SBOM."""
        started = _stamp()
        sbom = sbom_attest.read(self.trust, record.target, record.name, record.version, provenance)
        if sbom.state != "present":
            raise TrustError(
                f"{record.ref} on {record.target}: nothing to scan: {sbom.detail}",
                hint="an SBOM is made by the bake; bake again to have one",
            )
        feed = self.feed(sbom.system)
        findings, skipped = match(sbom.packages, feed)
        return Scan(
            record.ref, record.target, provenance, sbom.system, feed.where, feed.digest, feed.format,
            feed.release, started, findings, skipped, feed.count(), feed.newest,
        )  # fmt: skip

    def store(self, scan: Scan, subject: Subject) -> tuple[str, str]:
        """Sign the scan and keep it in the registry; returns its key and its statement's digest."""
        db = attest.Db(scan.feed, scan.feed_digest, scan.format, scan.scanned, scan.advisories, scan.feed_newest)
        return attest.store(self.trust, attest.statement(subject, db, scan.findings, scan.scanned, _stamp()))

    def stored(self, record: ImageRecord, provenance: str) -> StoredScan:
        return attest.read(self.trust, record.target, record.name, record.version, provenance)

    def policy(self, channel: str) -> ChannelScan | None:
        config = self.project.config.channels.get(channel)
        return config.scan if config is not None else None

    def judge(self, channel: str, findings: tuple[Finding, ...]) -> Verdict | None:
        """`findings` against `channel`'s policy today; None when the channel has none."""
        policy = self.policy(channel)
        return judge(channel, policy, findings, today()) if policy is not None else None


def subject_of(statement: dict[str, object], record: ImageRecord, provenance: str) -> Subject:
    """The subject a scan statement names: the provenance's own, annotated with the image."""
    first = statement["subject"][0]  # type: ignore[index]
    return Subject(
        name=first["name"],
        sha256=first["digest"]["sha256"],
        image=record.name,
        version=record.version,
        target=record.target,
        provenance=provenance,
    )


def older(scan: Scan, stored: StoredScan) -> str:
    """Why `scan` is older than the trusted `stored` one ('' when it is not): its feed's newest date
    is older, or (the dates not telling them apart) it was made earlier."""
    if scan.feed_newest and stored.feed_newest and scan.feed_newest != stored.feed_newest:
        if scan.feed_newest < stored.feed_newest:
            return f"its feed's newest record is of {scan.feed_newest}, the stored scan's of {stored.feed_newest}"
        return ""
    if scan.scanned < stored.scanned:
        return f"it was made at {scan.scanned}, the stored scan at {stored.scanned}"
    return ""


def today() -> dt.date:
    """The date allowances are measured against (the clock tests move)."""
    return channels.now().date()


def _stamp() -> str:
    return channels.now().strftime("%Y-%m-%dT%H:%M:%SZ")
