"""`bakery promote`, `bakery promote --rollback`, `bakery approve` and `bakery channels`: moving a
channel's head, gated, signed and on the record.

A promotion reads the channel, checks every gate (bakery/promote/gates.py) against the version,
and refuses (exit 1) naming every gate that failed with what it saw; the refusal is an audit
event. `--override-gate NAME --reason TEXT` lets a failed gate pass, loudly: the override is in
the signed promotion statement and in its own audit event. `verified` and `revocation` are never
overridden. The move itself is appended to the channel's signed, chained history with a
conditional write (bakery/trust/channels.py), written ahead: its audit event (result "intended",
naming the move's digest) is appended first, then the move, then a small "ok" event. A run killed
between them leaves a channel readers trust, and running it again finishes it.

The promote-after-build hook: `after_build(record)` promotes a freshly recorded bake to every
channel with `auto: true` whose gates it passes (a refusal is reported, not raised: the bake
itself succeeded). `bakery build` calls it once the bake (and its tests) are recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakery.config.load import Project
from bakery.core import catalog
from bakery.core.catalog import ImageRecord
from bakery.core.identity import who
from bakery.core.text import clean
from bakery.errors import BakeryError, TrustError, UsageError
from bakery.promote.gates import NEVER_OVERRIDDEN, GateResult, Gates, declared
from bakery.providers.base import Provider
from bakery.trust import channels
from bakery.trust.approvals import Approval, Approvals
from bakery.trust.audit_facts import INTENDED
from bakery.trust.channel_log import confirmed
from bakery.trust.channels import Channel, Move, Proposal, facts
from bakery.trust.context import TrustContext
from bakery.trust.heads import Heads
from bakery.trust.revocations import Revocations, revocation_of
from bakery.trust.signing import signer_public_key
from bakery.trust.testresults import RegistryTestResults, TestResults
from bakery.trust.verify import Verifier

GATES = ("promote_from", "soak", "tests", "approvals", "scan")


class PromotionRefused(TrustError):
    """A promotion some gate refused: `gates` holds every result (exit 1)."""

    def __init__(self, message: str, *, gates: list[GateResult], hint: str | None = None) -> None:
        failed = tuple(f"{g.name}: {g.saw}" for g in gates if not g.ok and not g.overridden)
        super().__init__(message, problems=failed, hint=hint)
        self.gates = gates
        self.details = {"gates": [g.as_dict() for g in gates]}  # --json renders every gate, as a promotion does


@dataclass(frozen=True)
class Promotion:
    channel: str
    target: str
    image: str
    action: str  # promote | rollback
    version: str | None
    from_: str | None
    seq: int
    gates: tuple[GateResult, ...] = ()
    approvals: tuple[dict[str, Any], ...] = ()
    overrides: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ChannelView:
    channel: str
    target: str
    image: str
    head: str | None  # the effective head's version
    recorded: str | None  # the head as recorded (differs when it is revoked)
    skipped: tuple[str, ...]
    moves: tuple[Move, ...] = field(default_factory=tuple)


class Promoter:
    def __init__(
        self,
        project: Project,
        trust: TrustContext,
        provider_for: Callable[[str], Provider],
        tests: TestResults | None = None,
    ) -> None:
        self.project = project
        self.trust = trust
        self.verifier = Verifier(project, trust, provider_for)
        self.heads = Heads(self.verifier)
        self.gates = Gates(project, trust, tests or RegistryTestResults(trust))

    def _channel(self, name: str) -> None:
        if name not in self.project.config.channels:
            known = ", ".join(sorted(self.project.config.channels)) or "none (add channels: to images.yaml)"
            raise UsageError(f"no channel '{name}' in {self.project.path}; channels: {known}")

    def _record(self, ref: str, target: str | None) -> tuple[ImageRecord, list[ImageRecord]]:
        if catalog.parse_ref(ref)[1] is None:
            raise UsageError(f"say which version: {ref}@MAJOR.MINOR.PATCH (`bakery images {ref}` lists them)")
        return self.verifier.record(ref, target)

    def promote(
        self, ref: str, channel: str, *, target: str | None = None, overrides: dict[str, str] | None = None
    ) -> Promotion:
        """Make `ref` the head of `channel` on its target once every gate passes. Raises
        PromotionRefused naming every failed gate (an audit event), UsageError for a bad request."""
        self._channel(channel)
        overrides = dict(overrides or {})
        its = declared(self.project.config.channels[channel])
        for gate, reason in overrides.items():
            if gate in NEVER_OVERRIDDEN or gate not in GATES:
                raise UsageError(
                    f"--override-gate takes {', '.join(GATES)}, not {gate!r} (never: verified, revocation)"
                )
            if gate not in its:
                raise UsageError(f"channel {channel} has no {gate} gate; its gates: {', '.join(its) or 'none'}")
            if not reason.strip():
                raise UsageError("--override-gate needs --reason TEXT: the override and its reason are recorded")
            clean(reason, what="--reason")
        record, records = self._record(ref, target)
        subject = f"{record.ref} on {record.target} to channel {channel}"
        verification = self.verifier.verify_record(record, records)
        promoter = signer_public_key(self.trust.signer()).keyid
        results, counted = self.gates.check(channel, record, verification, promoter_key=promoter, promoter=who())
        for name in (g.name for g in results if g.ok and g.name in overrides):
            self.trust.reporter.note(f"gate {name} passed; --override-gate {name} was not needed and is not recorded")
        results = [
            GateResult(g.name, g.ok, g.saw, overrides[g.name]) if not g.ok and g.name in overrides else g
            for g in results
        ]
        failed = [g for g in results if not g.ok and not g.overridden]
        policy = self._policy(channel)
        if failed:
            self.trust.record(
                "promote", subject, "refused", policy=policy, details={"gates": [g.as_dict() for g in results]}
            )
            raise PromotionRefused(
                f"refusing to promote {record.ref} on {record.target} to {channel}: "
                + ", ".join(g.name for g in failed)
                + " failed",
                gates=results,
                hint=_hint(channel, record, failed),
            )
        used = [{"gate": g.name, "saw": g.saw, "reason": g.overridden} for g in results if g.overridden]
        for each in used:
            self.trust.reporter.note(
                f"WARNING: gate {each['gate']} of {channel} FAILED ({each['saw']}) and --override-gate lets "
                f"{record.ref} through: {each['reason']}; this is recorded in the promotion and the audit log"
            )
            self.trust.record("override-gate", subject, "allowed", policy=policy, details=each, strict=True)

        written: list[Move] = []  # the move a run that stopped before its "ok" event wrote

        def propose(current: Channel) -> Proposal | None:
            written[:] = self._interrupted(current, record.version)
            if written:
                return None  # its "ok" event is recorded below
            if current.head == record.version:
                raise UsageError(f"{record.ref} is already the head of {channel} on {record.target}")
            self._still_holds(channel, record, records)
            return Proposal(
                "promote",
                record.version,
                verification.digest or "",
                policy,
                who(),
                gates=[g.as_dict() for g in results],
                approvals=counted,
                overrides=used,
            )

        def intend(move: Move) -> None:
            details = {**facts(move), "gates": [g.as_dict() for g in results], "overrides": used}
            self.trust.record("promote", subject, INTENDED, policy=policy, details=details, strict=True)

        try:
            move = self.heads.channels.append(channel, record.target, record.name, propose, intend) or written[0]
        except PromotionRefused as exc:
            details = {"gates": [g.as_dict() for g in exc.gates], "at": "the write"}
            self.trust.record("promote", subject, "refused", policy=policy, details=details)
            raise
        self.trust.record("promote", subject, "ok", policy=policy, details=facts(move))
        return Promotion(
            channel, record.target, record.name, "promote", record.version, move.from_, move.seq,
            tuple(results), tuple(counted), tuple(used),
        )  # fmt: skip

    def rollback(self, channel: str, image: str, *, target: str | None = None, reason: str = "") -> Promotion:
        """Move `channel`'s head for `image` back to the previous head that is still good (not
        revoked, and it verifies with the provenance it was promoted with); the ones skipped are
        said. UsageError when there is none."""
        self._channel(channel)
        target = self._target(image, target)
        unfit = self.heads.unfit(target)
        skipped: list[str] = []

        def propose(current: Channel) -> Proposal:
            back = current.previous_good(unfit)
            skipped[:] = back.skipped
            if back.version is None:
                passed = f" (skipped: {'; '.join(back.skipped)})" if back.skipped else ""
                raise UsageError(
                    f"{channel} has no earlier head of {image} on {target} that is not revoked and verifies to go "
                    f"back to{passed}",
                    hint=f"`bakery channels {channel}` shows its history",
                )
            provenance = current.provenance_of(back.version)
            return Proposal("rollback", back.version, provenance, self._policy(channel), who(), reason=reason)

        def intend(move: Move) -> None:
            details = {**facts(move), "reason": reason, "skipped": skipped}
            self.trust.record("promote-rollback", subject, INTENDED, policy=move.policy, details=details, strict=True)

        subject = f"{image} on {target} in channel {channel}"
        move = self._append(channel, target, image, propose, intend)
        for each in skipped:
            self.trust.reporter.note(f"skipped {each}: not a head to go back to")
        self.trust.record("promote-rollback", subject, "ok", policy=move.policy, details=facts(move))
        return Promotion(channel, target, image, "rollback", move.version, move.from_, move.seq)

    def approve(self, ref: str, channel: str, *, target: str | None = None, comment: str = "") -> Approval:
        """Sign this machine's approval of `ref` for `channel`. Refused (TrustError) when this
        machine's key built the image, or the image does not verify."""
        self._channel(channel)
        if comment:
            clean(comment, what="--comment")
        record, records = self._record(ref, target)
        subject = f"{record.ref} on {record.target} for channel {channel}"
        verification = self.verifier.verify_record(record, records)
        key = signer_public_key(self.trust.signer())
        key = next((k for k in self.trust.keys if k.keyid == key.keyid), key)  # named as trust.keys names it
        me = who()
        others = self.gates.excluded(channel, record, verification)
        for name, why in ((key.name, others.key(key.keyid)), (me, others.by(me))):
            if why is None:
                continue
            self.trust.record("approve", subject, "refused", details={"key": key.name, "by": me, "why": why})
            raise TrustError(
                f"refusing the approval of {record.ref} by {name}: {name} {why}; the one who built or promotes an "
                "image cannot approve it",
                hint="someone else approves it with their own key",
            )
        if not verification.ok:
            self.trust.record("approve", subject, "refused", details={"problems": verification.problems})
            raise TrustError(
                f"refusing to approve {record.ref}: it does not verify", problems=tuple(verification.problems)
            )
        approval = Approvals(self.trust).approve(
            record.target, record.name, record.version, channel,
            provenance=verification.digest or "", by=me, time=channels.stamp(channels.now()), comment=comment,
        )  # fmt: skip
        self.trust.record("approve", subject, "ok", details={"key": key.name, "keyid": key.keyid, "comment": comment})
        return approval

    def views(self, channel: str | None = None) -> list[ChannelView]:
        """Each channel's head per image and target, and its history."""
        if channel is not None:
            self._channel(channel)
        out = []
        for history in self.heads.channels.every():
            if channel is not None and history.channel != channel:
                continue
            head = history.effective(self.heads.unfit(history.target))
            out.append(
                ChannelView(
                    history.channel, history.target, history.image, head.version, history.head, head.skipped,
                    history.moves,
                )
            )  # fmt: skip
        return out

    def after_build(self, ref: str, target: str) -> list[str]:
        """The promote-after-build hook: promote `ref` on `target` to every `auto: true` channel; one line
        per channel saying what happened (a refused gate is said, not raised)."""
        lines = []
        for name, config in sorted(self.project.config.channels.items()):
            if not config.auto:
                continue
            try:
                self.promote(ref, name, target=target)
                lines.append(f"promoted {ref} on {target} to {name} (auto)")
            except BakeryError as exc:
                lines.append(f"not promoted to {name} (auto): {exc.message}")
        return lines

    def _still_holds(self, channel: str, record: ImageRecord, records: list[ImageRecord]) -> None:
        """Run where the move is written, against the channel as read for the conditional write
        (again after a lost race): what can change since the gates were checked, checked again.
        The version is not revoked (revocations read again) and promote_from still holds; raises
        PromotionRefused naming what no longer does."""
        failed = []
        try:
            table = Revocations(self.trust).table()
        except TrustError as exc:
            failed.append(GateResult("revocation", False, f"cannot be ruled out: {exc.message}"))
        else:
            found = revocation_of(record, table, {r.ref: r for r in records}, self.verifier.ancestry.parents)
            if found is not None and found.effective():
                failed.append(GateResult("revocation", False, f"{record.ref} is {found.describe()}"))
        source = self.project.config.channels[channel].promote_from
        if source is not None:
            try:
                held = self.gates.promote_from(source, record)
            except TrustError as exc:
                held = GateResult("promote_from", False, exc.message)
            if not held.ok:
                failed.append(held)
        if failed:
            raise PromotionRefused(
                f"refusing to promote {record.ref} on {record.target} to {channel}: "
                + ", ".join(g.name for g in failed)
                + " failed, checked again as the move was written (nothing was written)",
                gates=failed,
                hint=_hint(channel, record, failed),
            )

    def _append(
        self,
        channel: str,
        target: str,
        image: str,
        propose: Callable[[Channel], Proposal],
        intend: Callable[[Move], None],
    ) -> Move:
        move = self.heads.channels.append(channel, target, image, propose, intend)
        assert move is not None  # every proposal here moves or raises
        return move

    def _interrupted(self, current: Channel, version: str) -> list[Move]:
        """The newest move of `current` when it made `version` the head and the log holds only its
        intent, not the "ok" event its run appends once the move is written (the run stopped
        between the two), said; else none."""
        last = current.moves[-1] if current.moves else None
        if last is None or last.action != "promote" or last.version != version or confirmed(self.trust, current, last):
            return []
        self.trust.reporter.note(
            f"{current.image}@{version} was made the head of {current.channel} on {current.target} (move {last.seq}) "
            "by a run that stopped before recording it as done; recorded now"
        )
        return [last]

    def _target(self, image: str, target: str | None) -> str:
        targets = self.project.image(image).targets or tuple(self.project.config.targets)
        if target is None:
            if len(targets) > 1:
                raise UsageError(f"{image} is baked for {', '.join(targets)}; say which with --target")
            return targets[0]
        if target not in self.project.config.targets:
            raise UsageError(f"no target '{target}'; targets: {', '.join(sorted(self.project.config.targets))}")
        return target

    def _policy(self, channel: str) -> str:
        config = self.project.config.channels[channel]
        gates = [
            f"promote_from {config.promote_from}" if config.promote_from else "",
            f"soak {config.soak}" if config.soak else "",
            "tests passed" if config.tests else "",
            f"approvals {config.approvals}" if config.approvals else "",
        ]
        shown = ", ".join(g for g in gates if g) or "none"
        return f"channel {channel} gates: {shown}; {self.trust.policy()}"


def _hint(channel: str, record: ImageRecord, failed: list[GateResult]) -> str:
    names = {g.name for g in failed}
    if names & set(NEVER_OVERRIDDEN):
        return (
            f"see `bakery verify {record.ref} --target {record.target}`; a version that does not verify or is "
            "revoked is never promoted"
        )
    fix = []
    if "approvals" in names:
        fix.append(f"`bakery approve {record.ref} --for {channel} --target {record.target}` by other trusted keys")
    fix.append('--override-gate NAME --reason "WHY" lets a gate through (recorded)')
    return "; ".join(fix)
