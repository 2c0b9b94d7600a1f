"""What `bakery status` says of the images groups run: for each image a group runs (or means to
run) under a channel with a `scan:` policy, its stored, signed scan judged against that policy
today (an allowance that expired no longer counts). Nothing is scanned here: the scans are the
ones `bakery scan` and `bakery scan --heads` stored.

Three findings: over the policy (drift: act, exit 3), not scanned (no stored scan: act, run
`bakery scan`; exit 3 too), and a stored scan that cannot be trusted (a bad signature, another
image's, or one the signed audit log says is not the newest: replayed or deleted; exit 1, as status
treats every record it cannot vouch for)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bakery.config.load import Project
from bakery.core.catalog import ImageRecord
from bakery.scan.attest import read
from bakery.scan.policy import judge
from bakery.scan.scanner import today
from bakery.trust.context import TrustContext
from bakery.trust.verify import Verifier


@dataclass(frozen=True)
class FleetScans:
    over: tuple[str, ...] = ()  # one line per image over the channel's policy, naming every finding
    unscanned: tuple[str, ...] = ()  # one line per image with no stored scan
    unreadable: tuple[str, ...] = ()  # one line per image whose stored scan cannot be trusted


def over_policy(
    project: Project,
    trust: TrustContext,
    verifier: Verifier,
    channel: str | None,
    refs: Iterable[str],
    records: list[ImageRecord],
) -> FleetScans:
    """The refs in `refs` whose stored scan is over `channel`'s policy, missing, or untrusted."""
    config = project.config.channels.get(channel) if channel is not None else None
    if config is None or config.scan is None:
        return FleetScans()
    by_ref = {r.ref: r for r in records}
    over, unscanned, unreadable = [], [], []
    for ref in sorted(set(refs)):
        record = by_ref.get(ref)
        if record is None:
            continue  # not an image bakery baked: status names it as drift
        verification = verifier.verify_record(record, records)
        if verification.digest is None:
            continue  # it does not verify: status says so through its own checks
        stored = read(trust, record.target, record.name, record.version, verification.digest)
        if stored.state == "none":
            unscanned.append(f"runs {ref}, not scanned ({stored.detail}): channel {channel} has a scan policy")
            continue
        if stored.state == "invalid":
            unreadable.append(f"runs {ref}, whose stored scan cannot be trusted: {stored.detail}")
            continue
        verdict = judge(str(channel), config.scan, stored.findings, today())
        if not verdict.ok:
            over.append(
                f"runs {ref}, whose scan of {stored.scanned} ({stored.feed}) is over channel {channel}'s policy: "
                + "; ".join(f.line() for f in verdict.over)
            )
    return FleetScans(tuple(over), tuple(unscanned), tuple(unreadable))
