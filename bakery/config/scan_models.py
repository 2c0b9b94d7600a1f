"""The shape of images.yaml's vulnerability-scan settings: the top-level `scan:` block (which
feed `bakery scan` and the promote gate read) and a channel's `scan:` policy (what may pass)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator

from bakery.config.model_base import Bool, Model

# The order severities compare in; `unknown` (a feed that gives none, Debian's "not yet assigned")
# ranks above `high`: a finding nobody has rated is not waved through by a `high` policy.
SEVERITIES = ("none", "unimportant", "low", "medium", "high", "unknown", "critical")
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
ADVISORY_PATTERN = r"^[A-Z][A-Z0-9]*-[0-9A-Za-z][0-9A-Za-z.:-]{0,80}$"  # CVE-2024-5535, DSA-5678-1, DEBIAN-CVE-…
FEED_PATTERN = r"^(https?://[!-~]+|[^\s:][^\n]{0,1023})$"


class ScanSettings(Model):
    """Where vulnerability data comes from: a Debian Security Tracker JSON export or an OSV export
    for Debian:12 (a JSON file, a JSON list or a zip of OSV records), as a path (relative to
    images.yaml) or an http(s) URL. Nothing else is ever fetched."""

    feed: str = Field(pattern=FEED_PATTERN)
    timeout_seconds: Annotated[int, Field(ge=1, le=600, strict=True)] = 30
    max_mib: Annotated[int, Field(ge=1, le=4096, strict=True)] = 512


class Allowance(Model):
    """One advisory let through a channel's policy until a date, for a reason that is recorded."""

    id: str = Field(pattern=ADVISORY_PATTERN)
    until: str = Field(pattern=DATE_PATTERN)
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("until")
    @classmethod
    def _a_date(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is no calendar date (YYYY-MM-DD)") from None
        return value

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say why it is allowed: the reason is recorded with every promotion it lets through")
        return value

    def expired(self, today: dt.date) -> bool:
        """Past its date: an allowance counts up to and including `until`."""
        return today > dt.date.fromisoformat(self.until)


class ChannelScan(Model):
    """A channel's vulnerability policy: no finding above `max_severity` unless an allowance that
    has not expired names it. `revoke: true` revokes a head that `bakery scan --heads` finds over it."""

    max_severity: Literal["none", "unimportant", "low", "medium", "high", "unknown", "critical"] = "high"
    allow: tuple[Allowance, ...] = ()
    revoke: Bool = False

    @field_validator("allow")
    @classmethod
    def _once_each(cls, value: tuple[Allowance, ...]) -> tuple[Allowance, ...]:
        seen: set[str] = set()
        for each in value:
            if each.id in seen:
                raise ValueError(f"{each.id} is allowed twice: keep one entry per advisory")
            seen.add(each.id)
        return value
