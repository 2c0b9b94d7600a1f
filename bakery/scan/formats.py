"""Vulnerability feeds, parsed as the untrusted input they are, into advisories per Debian source
package for one release.

Two shapes are read:
- a Debian Security Tracker JSON export (https://security-tracker.debian.org/tracker/data/json):
  `{SOURCE: {CVE-ID: {"description": .., "releases": {"bookworm": {"status": "resolved"|"open"|
  "undetermined", "fixed_version": "..", "urgency": ".."}}}}}`; `resolved` with a fixed version
  means fixed there (fixed_version "0": never affected), `open`/`undetermined` means not yet fixed.
- OSV records for the ecosystem `Debian:12` (one record, a JSON list of them, or a zip of JSON
  files as osv.dev exports them): `affected[].package{ecosystem, name}` (the source package),
  `ranges[{type: ECOSYSTEM, events: [{introduced}, {fixed}]}]`; severity from
  `affected[].ecosystem_specific.urgency`, `database_specific.severity`, else the highest of
  `severity[]` that can be read: a CVSS score or a CVSS v2/v3/v4 vector (severity.py).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bakery.core import documents
from bakery.scan.severity import osv as osv_severity
from bakery.scan.source import FeedError, Raw

MAX_ZIP_MEMBERS = 200_000
MAX_TEXT = 2000  # characters of a description kept
_ID = re.compile(r"^[A-Z][A-Z0-9]*-[0-9A-Za-z][0-9A-Za-z.:-]{0,80}$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,200}$")
_VERSION = re.compile(r"^[0-9A-Za-z.+~:-]{1,200}$")
_URGENCIES = {"unimportant": "unimportant", "low": "low", "medium": "medium", "high": "high"}


@dataclass(frozen=True)
class Advisory:
    """One advisory against one source package in one release."""

    id: str
    source: str
    fixed: str | None  # the first fixed version; None: not yet fixed
    introduced: str | None  # the first affected version (OSV); None: every earlier version
    severity: str  # one of config.scan_models.SEVERITIES
    given: str  # the severity as the feed says it ("high", "not yet assigned", "CVSS:3.1/…")
    aliases: tuple[str, ...] = ()
    description: str = ""
    unreadable: str = ""  # why the severity it gave could not be read (a CVSS vector that is not one)


@dataclass(frozen=True)
class Feed:
    where: str
    digest: str
    format: str  # debian-security-tracker | osv
    release: str  # "bookworm" / "Debian:12"
    advisories: dict[str, tuple[Advisory, ...]]  # by source package
    newest: str | None = None  # the newest `modified` of its OSV records (RFC 3339, UTC); tracker: None

    def count(self) -> int:
        return sum(len(a) for a in self.advisories.values())


def parse(raw: Raw, *, codename: str, number: str) -> Feed:
    """The advisories of `raw` for Debian `number` (`codename`). Raises FeedError for anything
    that is not one of the two shapes, and for a feed with no advisory for that release (an
    empty or wrong-release feed would otherwise scan clean)."""
    held: Counter[str] = Counter()  # entries per release (tracker codename, OSV ecosystem)
    ecosystem = f"Debian:{number}"
    if raw.data[:4] == b"PK\x03\x04":
        feed = _collect(raw, "osv", ecosystem, _osv_all(_zip_records(raw), ecosystem, held))
    else:
        try:
            document = documents.parse(raw.data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FeedError(f"feed {raw.where}: not JSON: {exc}") from None
        if isinstance(document, list) or (isinstance(document, dict) and "affected" in document):
            records = document if isinstance(document, list) else [document]
            feed = _collect(raw, "osv", ecosystem, _osv_all(records, ecosystem, held))
        elif isinstance(document, dict):
            feed = _collect(raw, "debian-security-tracker", codename, _tracker(document, codename, raw.where, held))
        else:
            raise FeedError(f"feed {raw.where}: neither a Debian Security Tracker export nor OSV records")
    if not feed.count():
        raise FeedError(
            f"feed {raw.where} has no advisories for Debian {number} ({codename}): {_holding(held)}",
            hint=f"name a feed for Debian {number}: the Debian Security Tracker's JSON export or osv.dev's",
        )
    return feed


def _holding(held: Counter[str]) -> str:
    total = sum(held.values())
    if not total:
        return "it holds no entries at all"
    counts = [f"{count} for {release}" for release, count in held.most_common(5)]
    more = f", and {len(held) - 5} more releases" if len(held) > 5 else ""
    if len(held) == 1:
        return f"it holds {total} entr{'y' if total == 1 else 'ies'} for {next(iter(held))}"
    return f"it holds {total} entries: {', '.join(counts)}{more}"


def _collect(raw: Raw, kind: str, release: str, found: Iterator[Advisory | str]) -> Feed:
    """The advisories `found` yields by source package; a string it yields is an OSV record's
    `modified` (RFC 3339, UTC), the newest of them kept."""
    by_source: dict[str, list[Advisory]] = {}
    newest: str | None = None
    for advisory in found:
        if isinstance(advisory, str):
            newest = max(newest or advisory, advisory)
            continue
        by_source.setdefault(advisory.source, []).append(advisory)
    advisories = {name: tuple(each) for name, each in by_source.items()}
    return Feed(raw.where, raw.digest, kind, release, advisories, newest)


def _tracker(document: dict[str, Any], codename: str, where: str, held: Counter[str]) -> Iterator[Advisory]:
    for source, entries in document.items():
        if not isinstance(entries, dict) or not _PACKAGE.match(str(source)):
            raise FeedError(f"feed {where}: {str(source)[:60]!r} is not a source package with its advisories")
        for cve, entry in entries.items():
            if not _ID.match(str(cve)) or not isinstance(entry, dict):
                continue  # not an advisory id (TEMP-… ids, which the tracker gives unnamed issues, are kept)
            releases = entry.get("releases")
            if isinstance(releases, dict):
                held.update(str(name)[:40] for name in releases)
            there = releases.get(codename) if isinstance(releases, dict) else None
            if not isinstance(there, dict):
                continue
            status = there.get("status")
            fixed = _version(there.get("fixed_version"))
            if status == "resolved" and fixed is None:
                continue  # resolved with no version: nothing to compare with, it says not affected
            if status not in ("resolved", "open", "undetermined"):
                continue
            urgency = _text(there.get("urgency"), 40).rstrip("*").strip()
            yield Advisory(
                id=str(cve),
                source=str(source),
                fixed=fixed if status == "resolved" else None,
                introduced=None,
                severity=_URGENCIES.get(urgency, "unknown"),
                given=urgency or "not given",
                description=_text(entry.get("description"), MAX_TEXT),
            )


def _zip_records(raw: Raw) -> Iterator[Any]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw.data))
        members = [m for m in archive.infolist() if m.filename.endswith(".json") and not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise FeedError(f"feed {raw.where}: {len(members)} files, more than {MAX_ZIP_MEMBERS}")
        budget = 8 * len(raw.data) + (64 << 20)  # what its records may inflate to, all told
        for member in members:
            budget -= member.file_size
            if budget < 0 or member.file_size > (16 << 20):
                raise FeedError(f"feed {raw.where}: its files inflate beyond what a feed of its size holds")
            with archive.open(member) as handle:
                data = handle.read((16 << 20) + 1)
            yield documents.parse(data)
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError, OSError) as exc:
        raise FeedError(f"feed {raw.where}: not a zip of OSV JSON records: {exc}") from None


def _osv_all(records: Iterable[Any], ecosystem: str, held: Counter[str]) -> Iterator[Advisory | str]:
    for record in records:
        if not isinstance(record, dict):
            continue
        affected = record.get("affected")
        for entry in affected if isinstance(affected, list) else []:
            package = entry.get("package") if isinstance(entry, dict) else None
            if isinstance(package, dict):
                held[_text(package.get("ecosystem"), 40) or "no ecosystem"] += 1
        if (modified := _moment(record.get("modified"))) is not None:
            yield modified
        yield from _osv(record, ecosystem)


def _moment(value: Any) -> str | None:
    """An RFC 3339 time as UTC `YYYY-MM-DDTHH:MM:SSZ`; None when it is not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _osv(record: dict[str, Any], ecosystem: str) -> Iterator[Advisory]:
    ident = _text(record.get("id"), 100)
    affected = record.get("affected")
    if not _ID.match(ident) or not isinstance(affected, list):
        return
    aliases = tuple(
        a for a in _strings(record.get("aliases")) + _strings(record.get("upstream")) if _ID.match(a) and a != ident
    )
    description = _text(record.get("details") or record.get("summary"), MAX_TEXT)
    for entry in affected:
        package = entry.get("package") if isinstance(entry, dict) else None
        if not isinstance(package, dict) or package.get("ecosystem") != ecosystem:
            continue
        name = _text(package.get("name"), 200)
        if not _PACKAGE.match(name):
            continue
        rated = osv_severity(record, entry)
        ranges = entry.get("ranges")
        for span in ranges if isinstance(ranges, list) else []:
            if (
                not isinstance(span, dict)
                or span.get("type") != "ECOSYSTEM"
                or not isinstance(span.get("events"), list)
            ):
                continue
            introduced: str | None = None
            for event in span["events"]:
                if not isinstance(event, dict):
                    continue
                if "introduced" in event:
                    introduced = _version(event.get("introduced"))
                elif "fixed" in event:
                    fixed = _version(event.get("fixed")) or "0"
                    yield Advisory(ident, name, fixed, _start(introduced), rated.severity, rated.given, aliases,
                                   description, rated.unreadable)  # fmt: skip
                    introduced = None
            if introduced is not None:  # introduced and never fixed: not yet fixed
                yield Advisory(ident, name, None, _start(introduced), rated.severity, rated.given, aliases,
                               description, rated.unreadable)  # fmt: skip


def _start(introduced: str | None) -> str | None:
    return None if introduced in (None, "0") else introduced


def _version(value: Any) -> str | None:
    return value if isinstance(value, str) and _VERSION.match(value) else None


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
