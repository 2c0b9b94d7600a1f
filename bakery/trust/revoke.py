"""`bakery revoke` and `bakery unrevoke`: the registry's record first (the truth every machine
reads), then the mark on the image and on every descendant built on it (GCP deprecation with a
replacement, AWS deprecation or tags, the local catalog entry). Both are idempotent: after a
failure, running the same command again finishes the job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from bakery.config.load import Project
from bakery.core import catalog
from bakery.core.catalog import ImageRecord
from bakery.core.identity import who
from bakery.core.text import clean
from bakery.errors import BakeryError, UsageError
from bakery.providers.base import Provider
from bakery.trust.context import TrustContext
from bakery.trust.heads import Heads
from bakery.trust.revocations import Revocation, Revocations, descendants, parse_time, revocation_of
from bakery.trust.verify import Verifier


@dataclass(frozen=True)
class RevokeResult:
    operation: str  # revoke | unrevoke
    target: str
    ref: str
    at: str
    reason: str
    changed: bool  # False: it was in that state already (the marks were checked again)
    descendants: tuple[str, ...]  # images built on it, which inherit the revocation
    marks: tuple[str, ...]  # what was done on the images themselves
    channels: tuple[str, ...] = ()  # the channels whose head fell back from it (or a descendant)


class Revoker:
    def __init__(self, project: Project, trust: TrustContext, provider_for: Callable[[str], Provider]) -> None:
        self.project = project
        self.trust = trust
        self.provider_for = provider_for
        self.revocations = Revocations(trust)

    def _records(self, ref: str, target: str | None) -> list[tuple[ImageRecord, list[ImageRecord]]]:
        name, version = catalog.parse_ref(ref)
        if version is None:
            raise UsageError(f"say which version: {name}@MAJOR.MINOR.PATCH (`bakery images {name}` lists them)")
        image = self.project.image(name)
        targets = [target] if target else list(image.targets or self.project.config.targets)
        found = []
        for each in targets:
            if each not in self.project.config.targets:
                raise UsageError(f"no target '{each}'; targets: {', '.join(sorted(self.project.config.targets))}")
            records = self.provider_for(each).images(each)
            mine = [r for r in records if r.ref == ref]
            if mine:
                found.append((mine[0], records))
        if not found:
            raise UsageError(f"no image {ref} on {target or ', '.join(targets)}", hint=f"`bakery images {name}`")
        return found

    def revoke(self, ref: str, *, reason: str, at: str | None = None, target: str | None = None) -> list[RevokeResult]:
        """Revoke `ref` (on `target`, else on every target that has it) now or from `at`."""
        _check_reason("revoke", reason)
        when = _iso(at) if at else None
        return [
            self._apply(record, records, revoked=True, reason=reason, at=when)
            for record, records in self._records(ref, target)
        ]

    def unrevoke(self, ref: str, *, reason: str, target: str | None = None) -> list[RevokeResult]:
        _check_reason("unrevoke", reason)
        return [
            self._apply(record, records, revoked=False, reason=reason, at=None)
            for record, records in self._records(ref, target)
        ]

    def _apply(
        self, record: ImageRecord, records: list[ImageRecord], *, revoked: bool, reason: str, at: str | None
    ) -> RevokeResult:
        """The registry and the signed audit log first (Revocations.decide), then the marks on
        the images."""
        operation = "revoke" if revoked else "unrevoke"
        subject = f"{record.ref} on {record.target}"
        heirs = descendants(record.ref, records)
        changed, at = self.revocations.decide(
            record.target,
            record.ref,
            revoked=revoked,
            reason=reason,
            at=at,
            by=who(),
            details={"descendants": [r.ref for r in heirs]},
        )
        moved = self._fall_back(record.target) if revoked else []
        table = self.revocations.table()
        by_ref = {r.ref: r for r in records}
        provider = self.provider_for(record.target)
        marks: list[str] = []
        problems: list[str] = []
        for each in [record, *heirs]:
            try:
                found = revocation_of(each, table, by_ref)
                if found is not None:
                    replacement = _replacement(each, records, table, by_ref)
                    marks.append(provider.mark_revoked(each, at=found.at, reason=found.reason, replacement=replacement))
                else:
                    marks.append(provider.unmark_revoked(each))
            except BakeryError as exc:
                problems.append(f"{each.ref}: {exc.message}")
        result = RevokeResult(
            operation,
            record.target,
            record.ref,
            at,
            reason,
            changed,
            tuple(r.ref for r in heirs),
            tuple(m for m in marks if m),
            tuple(moved),
        )
        self.trust.record(
            f"{operation}-marks",
            subject,
            "ok" if not problems else "partial",
            details={"marks": list(result.marks), "problems": problems},
        )
        if problems:
            raise BakeryError(
                f"{record.ref} is {operation}d in {self.trust.store.where}, but marking the images failed: "
                + "; ".join(problems),
                hint=f"run the same `bakery {operation}` again to finish",
            )
        return result

    def _fall_back(self, target: str) -> list[str]:
        """Move back every channel of `target` whose head is revoked now (each move signed and an
        audit event); a channel that cannot be moved is a warning: the revocation stands, and every
        reader skips a revoked head anyway."""
        try:
            moves = Heads(Verifier(self.project, self.trust, self.provider_for)).fall_back(target)
        except BakeryError as exc:
            self.trust.reporter.note(f"warning: could not record the channels' fall-back: {exc.message}")
            return []
        return [
            f"channel {c.channel}: {c.image} on {target} fell back from {c.image}@{m.from_} to "
            + (f"{c.image}@{m.version}" if m.version else "no head")
            for c, m in moves
        ]


def _replacement(
    record: ImageRecord,
    records: list[ImageRecord],
    table: dict[tuple[str, str], Revocation],
    by_ref: dict[str, ImageRecord],
) -> ImageRecord | None:
    """The newest version of the same image that is not revoked (a GCP deprecation points to it)."""
    same = sorted((r for r in records if r.name == record.name), key=lambda r: catalog.version_key(r.version))
    for candidate in reversed(same):
        if candidate.ref == record.ref:
            continue
        found = revocation_of(candidate, table, by_ref)
        if found is None or not found.effective():
            return candidate
    return None


def _check_reason(operation: str, reason: str) -> None:
    """UsageError (exit 2) for a reason that is empty or holds control characters."""
    if not reason.strip():
        raise UsageError(f"`bakery {operation}` needs --reason TEXT: it goes into the registry and the audit log")
    clean(reason, what="--reason")


def _iso(text: str) -> str:
    return parse_time(text).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
