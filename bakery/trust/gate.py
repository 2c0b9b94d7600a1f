"""The trust gate in front of every rollout and rollback: the image to deploy must verify (signed
by trusted keys, unchanged, tags agreeing, parent chain sound) when the group's policy requires
signatures, and must never be revoked, whatever the policy or flag. An override
(`--allow-unverified`) is loud and lands in the audit log."""

from __future__ import annotations

from collections.abc import Callable

from bakery.config.load import Project
from bakery.config.models import Group
from bakery.core import catalog
from bakery.core.catalog import ImageRecord
from bakery.errors import RolloutRefused, TrustError, UsageError
from bakery.progress import Reporter
from bakery.providers.base import Provider
from bakery.trust.context import TrustContext
from bakery.trust.revocations import Revocation, Revocations, revocation_of
from bakery.trust.verify import Verification, Verifier


class TrustGate:
    def __init__(
        self, project: Project, trust: TrustContext, reporter: Reporter, provider_for: Callable[[str], Provider]
    ) -> None:
        self.trust = trust
        self.reporter = reporter
        self.provider_for = provider_for
        self.verifier = Verifier(project, trust, provider_for)

    def required(self, group: Group) -> bool:
        return self.trust.trust.required if group.require_signed is None else group.require_signed

    def newest_allowed(self, group: Group, records: list[ImageRecord]) -> ImageRecord:
        """The newest version of the group's image on its target that is not revoked (by itself
        or by an ancestor). Raises UsageError when there is none."""
        everything = self.provider_for(group.target).images(group.target)
        by_ref = {r.ref: r for r in everything}
        table = Revocations(self.trust).table()
        mine = sorted(records, key=lambda r: catalog.version_key(r.version), reverse=True)
        for record in mine:
            revocation = revocation_of(record, table, by_ref, self.verifier.ancestry.parents)
            if revocation is None or not revocation.effective():
                return record
            self.reporter.note(f"skipping {record.ref}: {revocation.describe()}")
        if mine:
            raise TrustError(
                f"every version of {group.image} on {group.target} is revoked",
                hint=f"bake a new one: bakery build {group.image} --target {group.target}",
            )
        raise UsageError(
            f"no complete version of {group.image} on {group.target} to roll out",
            hint=f"bake one: bakery build {group.image} --target {group.target}",
        )

    def claimant(self, group: Group, claimants: list[ImageRecord]) -> ImageRecord:
        """The one image among those that claim one version whose signed subject is what it is
        (the others are impostors or half-made copies). TrustError naming them all otherwise."""
        records = self.provider_for(group.target).images(group.target)
        verified = [r for r in claimants if self.verifier.verify_record(r, records).ok]
        ref, where = claimants[0].ref, claimants[0].target
        listed = "; ".join(" ".join(r.locations) for r in claimants)
        if len(verified) == 1:
            others = "; ".join(" ".join(r.locations) for r in claimants if r is not verified[0])
            self.reporter.note(
                f"{ref} is claimed by {len(claimants)} images on {where}; taking the one that verifies "
                f"({' '.join(verified[0].locations)}), not {others}"
            )
            return verified[0]
        raise TrustError(
            f"{ref} is claimed by {len(claimants)} images on {where} ({listed}), and "
            f"{'none' if not verified else len(verified)} of them verif{'ies' if len(verified) == 1 else 'y'}",
            hint=f"see `bakery images {claimants[0].name} --target {where}`; remove the images that are not bakery's",
        )

    def revoked(self, group: Group, record: ImageRecord) -> Revocation | None:
        """`record`'s revocation (its own or an ancestor's) when in effect now, else None."""
        everything = self.provider_for(group.target).images(group.target)
        table, by_ref = Revocations(self.trust).table(), {r.ref: r for r in everything}
        found = revocation_of(record, table, by_ref, self.verifier.ancestry.parents)
        return found if found is not None and found.effective() else None

    def refuse_revoked(
        self, group_name: str, group: Group, record: ImageRecord, *, during: str | None = None, hint: str | None = None
    ) -> None:
        """Raise when `record` is revoked: a rollout is not resumed onto an image revoked since it
        was interrupted (TrustError, with `hint` when given), nor goes on past `during`, its next
        step, onto one revoked while it runs (RolloutRefused: the rollout pauses, resumable or
        undone by `rollback`)."""
        found = self.revoked(group, record)
        if found is None:
            return
        if during is None:
            raise TrustError(
                f"refusing to resume the rollout of {group_name} onto {record.ref}: it is {found.describe()}",
                hint=hint or f"`bakery rollback {group_name}` returns the group to what it ran before",
            )
        raise RolloutRefused(
            f"{record.ref} was revoked while the rollout ran ({found.describe()}); stopped before {during}",
            hint=f"`bakery rollback {group_name}` returns the group to what it ran before",
        )

    def revoked_by_name(self, group: Group, ref: str) -> Revocation | None:
        """The revocation in effect of `ref` itself (by name; no ancestor followed: for an image
        whose record is gone, its parents cannot be known), else None."""
        found = Revocations(self.trust).table().get((group.target, ref))
        return found if found is not None and found.effective() else None

    def barred(self, group: Group, ref: str | None, record: ImageRecord | None) -> str | None:
        """Why nothing goes onto the image `ref` (`record`: its catalog record, None when gone)
        without an override, said after its name: "is <its revocation>" when it is revoked (its own
        or an ancestor's; by name only when its record is gone), "can no longer be found on TARGET
        to verify ..." when bakery baked it but its record is gone. None when neither, or when
        bakery did not bake it (`ref` None: no revocation can name it)."""
        if record is not None:
            revocation = self.revoked(group, record)
            return f"is {revocation.describe()}" if revocation is not None else None
        if ref is None:
            return None
        revocation = self.revoked_by_name(group, ref)
        if revocation is not None:
            return f"is {revocation.describe()}"
        return f"can no longer be found on {group.target} to verify (pruned or deregistered since)"

    def check_unrecorded(
        self,
        group_name: str,
        group: Group,
        image: str,
        *,
        ref: str | None = None,
        operation: str = "rollback",
        allow_unverified: bool,
        reason: str | None,
        audit: bool = True,
        hint: str | None = None,
        way_out: str | None = None,
    ) -> None:
        """Before `operation` ("rollout", "rollback", "undo") moves `group_name` onto `image` (as
        shown), one the catalog has no record of, so nothing about it can be verified:
        - `ref` None: bakery did not bake it. Refused where the group's policy requires signatures.
        - `ref` set: bakery baked it, but it can no longer be found on its target (pruned,
          deregistered, or its record unreadable): neither its signature nor its ancestors'
          revocations can be read, so it is refused whatever the policy (fail closed); and when
          the registry revokes `ref` by name, it is refused as revoked, an override taking it
          only for an undo (as check_restore).
        A refusal is TrustError (exit 1; `hint` leads its hint), recorded in the audit log with
        `audit` (an undo's refusal as revoked under the action "rollback", its details saying
        "undo", as check_restore's); `allow_unverified` (with its `reason`) deploys it anyway, said
        and recorded. `way_out` ends the hint of a refusal of an image bakery baked."""
        required = self.required(group)
        if ref is None and not required:
            return
        policy = self.trust.policy(required=required)
        subject = f"{image} for group {group_name}"
        verb = f"{operation} {group_name} onto" if operation == "rollout" else f"roll {group_name} back onto"
        lead = f"{hint}; " if hint else ""
        revocation = self.revoked_by_name(group, ref) if ref is not None else None
        if ref is None:
            problems = ["bakery did not bake it, so it cannot verify"]
        elif revocation is not None:
            problems = [f"it is {revocation.describe()}", f"it can no longer be found on {group.target}"]
        else:
            problems = [f"it can no longer be found on {group.target} to verify (pruned or deregistered since)"]
        details: dict[str, object] = (
            {"problems": problems} if ref is None else {"problems": problems, "operation": operation}
        )
        if revocation is not None and (operation != "undo" or not allow_unverified):
            if audit:  # an undo is a rollback (as check_restore records it), told apart by its details
                action = "rollback" if operation == "undo" else operation
                self.trust.record(action, subject, "refused", policy=policy, details=details)
            never = operation != "undo"
            raise TrustError(
                f"refusing to {verb} {image}: {problems[0]}",
                hint=lead
                + (
                    "a revoked image never rolls out" + (f"; {way_out}" if way_out else "")
                    if never
                    else '--allow-unverified --reason "WHY" goes back onto it anyway (recorded in the audit log)'
                ),
            )
        if not allow_unverified:
            if audit:
                self.trust.record("verify-failed", subject, "refused", policy=policy, details=details)
            raise TrustError(
                f"refusing to {verb} {image}: {problems[0]}",
                hint=lead
                + '--allow-unverified --reason "WHY" deploys it anyway (recorded in the audit log)'
                + (f"; {way_out}" if way_out and ref is not None else ""),
            )
        self.reporter.note(
            f"WARNING: {image} "
            + ("was not baked by bakery" if ref is None else f"cannot be verified ({'; '.join(problems)})")
            + " and --allow-unverified deploys it anyway; this override is recorded in the audit log with its reason"
        )
        if audit:
            self.trust.record(
                "override",
                subject,
                "allowed-revoked" if revocation is not None else "allowed-unverified",
                policy=policy,
                details={**details, "reason": reason or ""},
                strict=True,
            )

    def check_restore(
        self,
        group_name: str,
        group: Group,
        record: ImageRecord,
        *,
        allow_unverified: bool,
        reason: str | None,
        audit: bool = True,
        hint: str,
    ) -> None:
        """Before an unfinished rollout is undone, back onto `record`: the image the group ran
        before it, which its instances not yet replaced still run. Only a revocation (its own or an
        ancestor's, or one that cannot be read) stops it: TrustError (exit 1) after `hint` (how
        to proceed), unless `allow_unverified` with its `reason`, an override said and recorded
        in the audit log. Any other failure to verify is said as a warning: going back restores
        what ran (see bakery.rollout.resume)."""
        required = self.required(group)
        policy = self.trust.policy(required=required)
        subject = f"{record.ref} on {record.target} for group {group_name}"
        result = self.verifier.verify_record(record, self.provider_for(group.target).images(group.target))
        if result.ok:
            self.reporter.note(f"verified {record.ref}: signed by {', '.join(result.signed_by)}")
            return
        if not (result.revoked or result.revocation_unknown):
            self.reporter.note(
                f"warning: {record.ref} does not verify now ({'; '.join(result.problems)}); going back to it "
                f"anyway: undoing an unfinished rollout restores what {group_name} ran before"
            )
            return
        what = (
            f"it is {result.revocation.describe()}"
            if result.revocation is not None and result.revoked
            else "its revocation " + "; ".join(result.revocation_unknown)
        )
        details: dict[str, object] = {"problems": result.problems, "operation": "undo"}
        if not allow_unverified:
            if audit:
                self.trust.record("rollback", subject, "refused", policy=policy, details=details)
            raise TrustError(
                f"refusing to roll {group_name} back onto {record.ref}: {what}",
                problems=tuple(result.problems),
                hint=f'{hint}; --allow-unverified --reason "WHY" goes back onto it anyway (recorded in the audit log)',
            )
        self.reporter.note(
            f"WARNING: {group_name} goes back onto {record.ref} although {what}: --allow-unverified undoes the "
            "unfinished rollout anyway; this override is recorded in the audit log with its reason"
        )
        if audit:
            self.trust.record(
                "override",
                subject,
                "allowed-revoked",
                policy=policy,
                details={**details, "reason": reason or ""},
                strict=True,
            )

    def check(
        self,
        group_name: str,
        group: Group,
        record: ImageRecord,
        *,
        operation: str,
        allow_unverified: bool,
        reason: str | None = None,
        audit: bool = True,
        hint: str | None = None,
        way_out: str | None = None,
    ) -> Verification:
        """Verify `record` before `operation` ("rollout", "rollback") moves `group_name` onto it.
        Raises TrustError (exit 1) for a revoked image, and for one that does not verify when
        the policy requires signatures and no override was given; `hint` (what to do instead)
        leads its hint, and `way_out` ends it for a revoked image. Without `audit` (a dry run:
        nothing is deployed) no decision is written to the audit log."""
        lead = f"{hint}; " if hint else ""
        required = self.required(group)
        policy = self.trust.policy(required=required)
        subject = f"{record.ref} on {record.target} for group {group_name}"
        records = self.provider_for(group.target).images(group.target)
        result = self.verifier.verify_record(record, records)
        if result.revoked:
            assert result.revocation is not None
            if audit:
                self.trust.record(operation, subject, "refused", policy=policy, details={"problems": result.problems})
            raise TrustError(
                f"refusing to {operation} {group_name} onto {record.ref}: it is {result.revocation.describe()}",
                problems=tuple(result.problems),
                hint=lead
                + "a revoked image never rolls out"
                + ("" if hint else f"; `bakery rollout {group_name}` picks the newest version that is not revoked")
                + (f"; {way_out}" if way_out else ""),
            )
        if result.revocation_unknown:  # fail closed: no override deploys what may be revoked
            if audit:
                self.trust.record(operation, subject, "refused", policy=policy, details={"problems": result.problems})
            raise TrustError(
                f"refusing to {operation} {group_name} onto {record.ref}: its revocation "
                + "; ".join(result.revocation_unknown),
                problems=tuple(result.problems),
                hint=f"{lead}`bakery revoke {record.ref} --target {record.target} --reason ...` restores a revocation; "
                f"`bakery unrevoke {record.ref} --target {record.target} --reason ...` finishes lifting one",
            )
        if result.ok:
            self.reporter.note(f"verified {record.ref}: signed by {', '.join(result.signed_by)}")
            return result
        if allow_unverified:
            self.reporter.note(
                f"WARNING: {record.ref} does NOT verify and --allow-unverified deploys it anyway "
                f"({'; '.join(result.problems)}); this override is recorded in the audit log with its reason"
            )
            if audit:
                self.trust.record(
                    "override",
                    subject,
                    "allowed-unverified",
                    policy=policy,
                    details={"problems": result.problems, "reason": reason or ""},
                    strict=True,
                )
            return result
        if required:
            if audit:
                self.trust.record(
                    "verify-failed", subject, "refused", policy=policy, details={"problems": result.problems}
                )
            raise TrustError(
                f"refusing to {operation} {group_name} onto {record.ref}: it does not verify ({policy})",
                problems=tuple(result.problems),
                hint=f"{lead}see `bakery verify {record.ref} --target {record.target}`; "
                '--allow-unverified --reason "WHY" deploys it anyway (recorded in the audit log)',
            )
        self.reporter.note(
            f"warning: {record.ref} does not verify ({'; '.join(result.problems)}); deploying it because "
            "trust.require is off for this group"
        )
        return result
