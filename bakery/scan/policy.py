"""A channel's scan policy applied to findings (pure): which are over it, which an allowance lets
through (and until when), and which allowances have expired and so no longer count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from bakery.config.scan_models import ChannelScan
from bakery.scan.match import Finding, rank


@dataclass(frozen=True)
class Allowed:
    finding: Finding
    until: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    channel: str
    max_severity: str
    over: tuple[Finding, ...]  # over the policy and not allowed: a violation
    allowed: tuple[Allowed, ...]  # over it, let through by an allowance still in force
    expired: tuple[str, ...]  # "CVE-… (allowed until 2026-01-01, expired)" for each one that no longer counts

    @property
    def ok(self) -> bool:
        return not self.over

    def saw(self) -> str:
        """What the scan gate says it saw (every finding over the policy named)."""
        parts = [f"{len(self.over)} finding(s) over max_severity {self.max_severity} of channel {self.channel}"]
        parts += [f.line() for f in self.over]
        parts += [f"allowed until {a.until}: {a.finding.line()} ({a.reason})" for a in self.allowed]
        parts += [f"allowance no longer counts: {e}" for e in self.expired]
        return "; ".join(parts)


def judge(channel: str, policy: ChannelScan, findings: Iterable[Finding], today: dt.date) -> Verdict:
    """The findings of a scan against `channel`'s policy on `today`."""
    limit = rank(policy.max_severity)
    over: list[Finding] = []
    allowed: list[Allowed] = []
    expired: set[str] = set()
    for finding in findings:
        if rank(finding.severity) <= limit:
            continue
        allowance = next((a for a in policy.allow if a.id in finding.names()), None)
        if allowance is None:
            over.append(finding)
        elif allowance.expired(today):
            over.append(finding)
            expired.add(f"{allowance.id} (allowed until {allowance.until}, expired: {allowance.reason})")
        else:
            allowed.append(Allowed(finding, allowance.until, allowance.reason))
    return Verdict(channel, policy.max_severity, tuple(over), tuple(allowed), tuple(sorted(expired)))
