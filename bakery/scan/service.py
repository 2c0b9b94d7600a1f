"""`bakery scan IMAGE@VERSION` and `bakery scan --heads`: an image's trusted SBOM matched against
the feed, the signed result stored in the registry (bound to its provenance), and judged against
the policy of each channel concerned: the channels it is the head of (or the one `--channel`
names). `--heads` rescans every channel's head (the scheduled job's command); a head over a
policy that says `revoke: true` is revoked through the revoke service, the findings its reason.
Exit 0 once scanned, findings or not; 1 when a policy is violated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bakery.config.load import Project
from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError, UsageError
from bakery.providers.base import Provider
from bakery.sbom.service import Sboms
from bakery.scan.policy import Verdict
from bakery.scan.scanner import Scan, Scanner, subject_of
from bakery.trust.context import TrustContext
from bakery.trust.heads import Heads
from bakery.trust.revoke import Revoker
from bakery.trust.verify import Verifier

EXIT_SCANNED, EXIT_VIOLATION = 0, 1


@dataclass(frozen=True)
class ImageScan:
    scan: Scan
    key: str  # where the signed result is in the registry
    verdicts: tuple[Verdict, ...]  # one per channel judged
    exit_code: int


@dataclass(frozen=True)
class HeadScan:
    channel: str
    target: str
    image: str
    ref: str | None  # the channel's head now (None: it has none)
    scan: Scan | None = None
    key: str = ""
    verdict: Verdict | None = None
    revoked: bool = False
    error: str = ""  # why it could not be scanned


@dataclass(frozen=True)
class HeadsScan:
    heads: tuple[HeadScan, ...]
    exit_code: int


class Scans:
    def __init__(
        self,
        project: Project,
        trust: TrustContext,
        provider_for: Callable[[str], Provider],
        *,
        feed: str | None = None,
    ) -> None:
        self.project = project
        self.trust = trust
        self.verifier = Verifier(project, trust, provider_for)
        self.sboms = Sboms(self.verifier)
        self.heads = Heads(self.verifier)
        self.scanner = Scanner(project, trust, feed)
        self.revoker = Revoker(project, trust, provider_for)

    def image(self, ref: str, target: str | None, channel: str | None = None) -> ImageScan:
        """Scan `ref` (IMAGE@VERSION) and store the result; judge it against `channel`'s policy,
        else against every channel with a policy whose head it is. Raises UsageError (no such
        image or channel), TrustError (its provenance or SBOM does not verify), FeedError."""
        if channel is not None and channel not in self.project.config.channels:
            known = ", ".join(sorted(self.project.config.channels)) or "none"
            raise UsageError(f"no channel '{channel}' in {self.project.path}; channels: {known}")
        if channel is not None and self.scanner.policy(channel) is None:
            having = ", ".join(n for n, c in sorted(self.project.config.channels.items()) if c.scan is not None)
            raise UsageError(f"channel {channel!r} has no scan policy; channels with one: {having or 'none'}")
        image = self.sboms.provenanced(ref, target)
        scan, key = self._scan(image.record, image.digest, image.statement)
        names = [channel] if channel is not None else self._head_of(image.record)
        verdicts = tuple(v for name in names if (v := self.scanner.judge(name, scan.findings)) is not None)
        return ImageScan(scan, key, verdicts, _exit(verdicts))

    def rescan_heads(self) -> HeadsScan:
        """Scan every channel's head now, store each result, judge it against its channel's policy
        and revoke it where the policy says `revoke: true` and it is over."""
        out: list[HeadScan] = []
        done: dict[tuple[str, str], tuple[Scan, str]] = {}
        for history in self.heads.channels.every():
            name, target, image = history.channel, history.target, history.image
            head = history.effective(self.heads.unfit(target))
            if head.ref is None:
                out.append(HeadScan(name, target, image, None, error="no head"))
                continue
            try:
                if (target, head.ref) not in done:
                    found = self.sboms.provenanced(head.ref, target)
                    done[(target, head.ref)] = self._scan(found.record, found.digest, found.statement)
            except BakeryError as exc:
                out.append(HeadScan(name, target, image, head.ref, error=exc.message))
                continue
            scan, key = done[(target, head.ref)]
            verdict = self.scanner.judge(name, scan.findings)
            revoked = self._revoke(name, target, head.ref, verdict)
            out.append(HeadScan(name, target, image, head.ref, scan, key, verdict, revoked))
        verdicts = tuple(h.verdict for h in out if h.verdict is not None)
        return HeadsScan(tuple(out), _exit(verdicts))

    def _scan(self, record: ImageRecord, digest: str, statement: dict[str, object]) -> tuple[Scan, str]:
        scan = self.scanner.scan(record, digest)
        key = self.scanner.store(scan, subject_of(statement, record, digest))
        self.trust.record(
            "scan",
            f"{record.ref} on {record.target}",
            "ok",
            details={
                "feed": scan.feed,
                "feed_digest": scan.feed_digest,
                "findings": len(scan.findings),
                "not_yet_fixed": len(scan.not_yet_fixed),
                "key": key,
            },
        )
        return scan, key

    def _head_of(self, record: ImageRecord) -> list[str]:
        names = []
        for name, config in sorted(self.project.config.channels.items()):
            if config.scan is None:
                continue
            if self.heads.head(name, record.target, record.name).ref == record.ref:
                names.append(name)
        return names

    def _revoke(self, channel: str, target: str, ref: str, verdict: Verdict | None) -> bool:
        policy = self.scanner.policy(channel)
        if verdict is None or verdict.ok or policy is None or not policy.revoke:
            return False
        reason = f"scan: over channel {channel}'s policy: " + "; ".join(f.line() for f in verdict.over)
        self.revoker.revoke(ref, reason=reason[:1000], target=target)
        return True


def _exit(verdicts: tuple[Verdict, ...]) -> int:
    return EXIT_VIOLATION if any(not v.ok for v in verdicts) else EXIT_SCANNED
