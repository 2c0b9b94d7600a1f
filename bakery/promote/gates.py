"""The gates a version passes on its way into a channel, each checked by `bakery promote`, each
saying what it saw: every failed one is named in a refusal, never only the first.

  verified      the image verifies (signed by trusted keys, unchanged, tags agreeing); never overridden
  revocation    neither it nor an ancestor is revoked; never overridden
  promote_from  it was a head of the channel named there (same image and target)
  soak          it was that channel's head at least this long, and every group following that
                channel (same image and target) ran it healthy at least this long, in one stretch.
                "Ran it healthy" (read from the signed audit log's rollout and rollback events of
                the group): from a rollout or rollback onto it that succeeded (every wave's health
                gate passed) until the next rollout or rollback event of the group that goes to
                another image, whatever its result: started (`running`, written once its first
                step is done), succeeded, interrupted, failed, rolled back or rollback-failed: each
                left the group off the version or mixed. A rollout away from it that was rolled
                back starts no new stretch; only a rollout or rollback onto it that succeeds does
  tests         a signed test result in the registry says PASSED (bakery/trust/testresults.py)
  approvals     N distinct trusted keys approved it (`bakery approve`), each approval naming this
                version's provenance digest as it verifies now (an approval of another bake recorded
                under the version, or a replayed one, does not count); none by a key or a person
                who built it, moved it into the promote_from channel, or is promoting it
                (bakery/promote/exclusions.py)
  scan          no finding of the vulnerability feed above the channel's `scan.max_severity`, unless
                an allowance that has not expired names it (an expired one is said). The version is
                scanned afresh, its trusted SBOM against the feed images.yaml names (`scan: {feed:}`),
                so a newer feed counts at once; with no feed named, the signed scan stored for this
                provenance (`bakery scan`) is judged; with neither, the gate fails
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bakery.config.load import Project
from bakery.config.models import Channel as ChannelConfig
from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError
from bakery.promote import exclusions
from bakery.promote.exclusions import Excluded
from bakery.scan.match import Finding
from bakery.scan.scanner import Scanner
from bakery.trust import channels
from bakery.trust.approvals import Approvals
from bakery.trust.channels import Channels
from bakery.trust.context import TrustContext
from bakery.trust.testresults import TestResults
from bakery.trust.verify import Verification

NEVER_OVERRIDDEN = ("verified", "revocation")


@dataclass(frozen=True)
class GateResult:
    name: str
    ok: bool
    saw: str
    overridden: str = ""  # the reason given with --override-gate, when it was

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "saw": self.saw, "overridden": self.overridden}


def took(delta: timedelta) -> str:
    """'2d 3h', '5h 10m', '42s': a span as people read it."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{secs}s"


class Gates:
    def __init__(self, project: Project, trust: TrustContext, tests: TestResults) -> None:
        self.project = project
        self.trust = trust
        self.tests = tests
        self.channels = Channels(trust)
        self.approvals = Approvals(trust)
        self.scanner = Scanner(project, trust)

    def check(
        self, channel: str, record: ImageRecord, verification: Verification, *, promoter_key: str, promoter: str
    ) -> tuple[list[GateResult], list[dict[str, Any]]]:
        """Every gate of `channel` for `record` (verified as `verification`), and the approvals
        that counted. `promoter_key` (a keyid) and `promoter` (a `who()`) are promoting it."""
        config = self.project.config.channels[channel]
        results = [_verified(verification), _revocation(verification)]
        if config.promote_from is not None:
            results.append(self.promote_from(config.promote_from, record))
        if config.soak is not None and config.promote_from is not None:
            results.append(self._soak(config, record))
        if config.tests == "passed":
            found = self.tests.result(record.target, record.name, record.version, verification.digest or "")
            results.append(GateResult("tests", found.result == "PASSED", found.detail + _failed(found.failed)))
        if config.scan is not None:
            results.append(self._scan(channel, record, verification.digest or ""))
        counted: list[dict[str, Any]] = []
        if config.approvals:
            others = self.excluded(channel, record, verification, promoter_key=promoter_key, promoter=promoter)
            gate, counted = self._approvals(channel, config, record, others, verification.digest or "")
            results.append(gate)
        return results, counted

    def excluded(
        self,
        channel: str,
        record: ImageRecord,
        verification: Verification,
        *,
        promoter_key: str = "",
        promoter: str = "",
    ) -> Excluded:
        """Who may not approve `record` for `channel` (bakery/promote/exclusions.py)."""
        source = self.project.config.channels[channel].promote_from
        history = self.channels.read(source, record.target, record.name) if source is not None else None
        return exclusions.excluded(
            self.trust, verification, record.version, history, promoter_key=promoter_key, promoter=promoter
        )

    def promote_from(self, source: str, record: ImageRecord) -> GateResult:
        """Whether `record` was a head of the channel `source` (its history read now)."""
        history = self.channels.read(source, record.target, record.name)
        moves = history.was_head(record.version)
        if moves:
            return GateResult("promote_from", True, f"head of {source} from {moves[0].time} (move {moves[0].seq})")
        head = history.head
        return GateResult(
            "promote_from",
            False,
            f"{record.ref} was never the head of {source} on {record.target} (its head: {head or 'none'})",
        )

    def _soak(self, config: ChannelConfig, record: ImageRecord) -> GateResult:
        source = str(config.promote_from)
        needed = timedelta(seconds=config.soak_seconds())
        until = channels.now()
        spans = self.channels.read(source, record.target, record.name).spans(record.version, until)
        longest = max((end - start for start, end in spans), default=timedelta(0))
        seen = [f"head of {source} for {took(longest)}" if spans else f"never the head of {source}"]
        ok = longest >= needed
        followers = [
            name
            for name, g in sorted(self.project.config.groups.items())
            if g.channel == source and g.image == record.name and g.target == record.target
        ]
        if followers:
            ran = self._ran(followers, record.ref, until)
            for name in followers:
                span = ran[name]
                seen.append(
                    f"group {name} ran it for {took(span)}" if span is not None else f"group {name} never ran it"
                )
                ok = ok and span is not None and span >= needed
        return GateResult("soak", ok, f"{'; '.join(seen)} (needs {config.soak})")

    def _ran(self, groups: list[str], ref: str, until: datetime) -> dict[str, timedelta | None]:
        """The longest time each group ran `ref` healthy (see the module's docstring), read from
        the verified audit log's rollout and rollback events of the group (bakery/rollout/record.py:
        subject 'group NAME', details.to the release it goes to, result running, succeeded,
        interrupted, failed, rolled-back or rollback-failed); None for a group that never did."""
        self.trust.log()  # the events are read only once the whole log verified
        longest: dict[str, timedelta | None] = dict.fromkeys(groups)
        since: dict[str, datetime | None] = dict.fromkeys(groups, None)
        for event in self.trust.audit.events():
            name = event.subject.removeprefix("group ")
            if event.action not in ("rollout", "rollback") or name not in longest:
                continue
            to = event.details.get("to")
            image = to.get("image") if isinstance(to, dict) else None
            at = channels.parse_stamp(event.time)
            started = since[name]
            if started is not None and image != ref:  # moved off it, or on the move (mixed), whatever the result
                longest[name] = max(longest[name] or timedelta(0), at - started)
                since[name] = None
            elif started is None and image == ref and event.result == "succeeded":
                since[name] = at
        for name, started in since.items():
            if started is not None:
                longest[name] = max(longest[name] or timedelta(0), until - started)
        return longest

    def _scan(self, channel: str, record: ImageRecord, provenance: str) -> GateResult:
        """The version's findings (scanned now with the configured feed, else its stored scan)
        against `channel`'s policy today, every finding over it named."""
        findings: tuple[Finding, ...]
        try:
            if self.scanner.choice is not None:
                scan = self.scanner.scan(record, provenance)
                findings, how = scan.findings, f"scanned now with {scan.feed} ({_short(scan.feed_digest)})"
            else:
                stored = self.scanner.stored(record, provenance)
                if stored.state != "present":
                    return GateResult(
                        "scan",
                        False,
                        f"nothing to judge by: no feed in images.yaml (scan: {{feed: ...}}) and {stored.detail}",
                    )
                findings, how = stored.findings, f"its scan of {stored.scanned} with {stored.feed}"
        except BakeryError as exc:
            return GateResult("scan", False, f"cannot be scanned: {exc.message}")
        verdict = self.scanner.judge(channel, findings)
        assert verdict is not None  # the gate runs only for a channel with a policy
        return GateResult("scan", verdict.ok, f"{how}: {verdict.saw()}")

    def _approvals(
        self, channel: str, config: ChannelConfig, record: ImageRecord, others: Excluded, provenance: str
    ) -> tuple[GateResult, list[dict[str, Any]]]:
        counted: dict[str, dict[str, Any]] = {}
        refused: list[str] = []
        for found in self.approvals.read(record.target, record.name, record.version, channel):
            if found.problem:
                refused.append(f"not counted: {found.problem}")
            elif found.provenance != provenance:
                refused.append(
                    f"not counted: {found.key} approves provenance {_short(found.provenance)}, this version's is "
                    f"{_short(provenance)}"
                )
            elif (why := others.key(found.keyid)) is not None:
                refused.append(f"not counted: {found.key} approved it, but {found.key} {why}")
            elif (why := others.by(found.by)) is not None:
                refused.append(f"not counted: {found.key}'s approval is by {found.by}, who {why}")
            else:
                counted[found.keyid] = {**found.as_dict(), "envelope": found.envelope}
        approvals = sorted(counted.values(), key=lambda a: str(a["key"]))
        names = ", ".join(a["key"] for a in approvals) or "none"
        saw = f"{len(counted)} of {config.approvals} approvals ({names})"
        return GateResult("approvals", len(approvals) >= config.approvals, "; ".join([saw, *refused])), approvals


def declared(config: ChannelConfig) -> tuple[str, ...]:
    """The gates a channel declares, beside `verified` and `revocation` (which every channel has)."""
    gates = (
        ("promote_from", config.promote_from is not None),
        ("soak", config.soak is not None and config.promote_from is not None),
        ("tests", config.tests == "passed"),
        ("approvals", bool(config.approvals)),
        ("scan", config.scan is not None),
    )
    return tuple(name for name, on in gates if on)


def _short(digest: str) -> str:
    """'sha256:0123456789ab…': a digest as a person compares it."""
    return f"{digest[:19]}…" if len(digest) > 19 else digest or "none"


def _verified(verification: Verification) -> GateResult:
    problems = [p for p in verification.problems if not p.startswith("revocation:")]
    if problems:
        return GateResult("verified", False, "; ".join(problems))
    return GateResult("verified", True, f"signed by {', '.join(verification.signed_by)}")


def _revocation(verification: Verification) -> GateResult:
    problems = [p for p in verification.problems if p.startswith("revocation:")]
    if problems:
        return GateResult("revocation", False, "; ".join(p.removeprefix("revocation: ") for p in problems))
    return GateResult("revocation", True, "not revoked")


def _failed(names: tuple[str, ...]) -> str:
    return f"; failed: {', '.join(names)}" if names else ""
