"""What `bakery status` says of the images groups run: one line per image a group runs (or means
to run) whose stored, signed scan has findings over the policy of the channel the group follows,
judged today (an allowance that expired no longer counts). Nothing is scanned here: the scans
are the ones `bakery scan` and `bakery scan --heads` stored."""

from __future__ import annotations

from collections.abc import Iterable

from bakery.config.load import Project
from bakery.core.catalog import ImageRecord
from bakery.scan.attest import read
from bakery.scan.policy import judge
from bakery.scan.scanner import today
from bakery.trust.context import TrustContext
from bakery.trust.verify import Verifier


def over_policy(
    project: Project,
    trust: TrustContext,
    verifier: Verifier,
    channel: str | None,
    refs: Iterable[str],
    records: list[ImageRecord],
) -> list[str]:
    """One line per ref in `refs` whose stored scan is over `channel`'s policy, naming every finding."""
    config = project.config.channels.get(channel) if channel is not None else None
    if config is None or config.scan is None:
        return []
    by_ref = {r.ref: r for r in records}
    out = []
    for ref in sorted(set(refs)):
        record = by_ref.get(ref)
        if record is None:
            continue
        verification = verifier.verify_record(record, records)
        if verification.digest is None:
            continue  # it does not verify: status says so through its own checks
        stored = read(trust, record.target, record.name, record.version, verification.digest)
        if stored.state != "present":
            continue
        verdict = judge(str(channel), config.scan, stored.findings, today())
        if not verdict.ok:
            out.append(
                f"runs {ref}, whose scan of {stored.scanned} ({stored.feed}) is over channel {channel}'s policy: "
                + "; ".join(f.line() for f in verdict.over)
            )
    return out
