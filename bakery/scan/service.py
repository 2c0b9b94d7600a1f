"""`bakery scan IMAGE@VERSION` and `bakery scan --heads`: an image's trusted SBOM matched against
the feed, the signed result stored in the registry (bound to its provenance), and judged against
the policy of each channel concerned: the channels it is the head of (or the one `--channel`
names). `--heads` rescans every channel's head (the scheduled job's command); a head over a
policy that says `revoke: true` is revoked through the revoke service, the findings its reason.
Exit 0 once scanned, findings or not; 1 when a policy is violated, a head could not be scanned, or
the stored scan was made with a newer feed (unless --replace-older: then said)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bakery.config.load import Project
from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError, UsageError
from bakery.providers.base import Provider
from bakery.sbom.service import Sboms
from bakery.scan.policy import Verdict
from bakery.scan.scanner import Scan, Scanner, older, subject_of
from bakery.trust.context import TrustContext
from bakery.trust.heads import Heads
from bakery.trust.revoke import Revoker
from bakery.trust.verify import Verifier

EXIT_SCANNED, EXIT_VIOLATION = 0, 1


class ScanRefused(BakeryError):
    """A scan not stored: the stored one was made with a newer feed (exit 1)."""


@dataclass(frozen=True)
class ImageScan:
    scan: Scan
    key: str  # where the signed result is in the registry
    verdicts: tuple[Verdict, ...]  # one per channel judged
    exit_code: int
    replaced_newer: str = ""  # why the scan it replaced was newer (--replace-older said so)


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
    replaced_newer: str = ""  # why the scan it replaced was newer (--replace-older said so)


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
        replace_older: bool = False,
    ) -> None:
        """`replace_older`: store a scan even when the stored one was made with a newer feed."""
        self.project = project
        self.replace_older = replace_older
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
        scan, key, replaced = self._scan(image.record, image.digest, image.statement)
        names = [channel] if channel is not None else self._head_of(image.record)
        verdicts = tuple(v for name in names if (v := self.scanner.judge(name, scan.findings)) is not None)
        return ImageScan(scan, key, verdicts, _exit(verdicts), replaced)

    def rescan_heads(self) -> HeadsScan:
        """Scan every channel's head now, store each result, judge it against its channel's policy
        and revoke it where the policy says `revoke: true` and it is over. A head that cannot be
        scanned is said, and makes the exit 1 (a channel with no head does not)."""
        out: list[HeadScan] = []
        done: dict[tuple[str, str], tuple[Scan, str, str]] = {}
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
            scan, key, replaced = done[(target, head.ref)]
            verdict = self.scanner.judge(name, scan.findings)
            revoked = self._revoke(name, target, head.ref, verdict)
            out.append(HeadScan(name, target, image, head.ref, scan, key, verdict, revoked, replaced_newer=replaced))
        verdicts = tuple(h.verdict for h in out if h.verdict is not None)
        unscanned = any(h.error and h.ref is not None for h in out)  # a head there, but not scanned
        return HeadsScan(tuple(out), EXIT_VIOLATION if unscanned else _exit(verdicts))

    def _scan(self, record: ImageRecord, digest: str, statement: dict[str, object]) -> tuple[Scan, str, str]:
        """Scan and store; returns the scan, its key and why the scan it replaced was newer ('').
        Raises ScanRefused when the stored scan is newer and replace_older is not said."""
        scan = self.scanner.scan(record, digest)
        stored = self.scanner.stored(record, digest)
        replaced = older(scan, stored) if stored.state == "present" else ""
        if replaced and not self.replace_older:
            raise ScanRefused(
                f"{record.ref} on {record.target}: not stored: the stored scan ({stored.key}) is newer: {replaced}",
                hint="scan with a feed at least as new; --replace-older stores it anyway (the older feed's findings "
                "then count)",
            )
        key, document = self.scanner.store(scan, subject_of(statement, record, digest))
        details: dict[str, object] = {
            "feed": scan.feed,
            "feed_digest": scan.feed_digest,
            "feed_newest": scan.feed_newest,
            "advisories": scan.advisories,
            "findings": len(scan.findings),
            "not_yet_fixed": len(scan.not_yet_fixed),
            "key": key,
            "statement": document,  # what a reader holds the registry's scan to (attest.read)
        }
        if replaced:
            details["replaced_newer"] = replaced
        # strict: a stored scan its event does not name would read as replayed; say so now instead
        self.trust.record("scan", f"{record.ref} on {record.target}", "ok", details=details, strict=True)
        return scan, key, replaced

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
