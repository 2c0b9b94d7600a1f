"""`bakery verify`: is this image what a trusted key signed, unchanged, and not revoked?

The checks, in order (each failure names what did not match):
  attestation  the registry holds a DSSE envelope for the image
  signature    signed by enough trusted keys (trust.keys, trust.threshold); the payload is parsed
               only after that
  statement    the signed statement is about this image (name, version, target, inputs digest)
  subject      the image as it exists now (the local disk hashed again; the cloud descriptor read
               live) is what was signed
  tags         every tag, label or catalog entry of the image agrees with the signed statement
  revocation   neither the image nor any ancestor is revoked
  parent       the image it was built from verifies too
  tests        its signed test result (bakery.trust.testresults), when it has one, is about this
               image and did not fail: "passed", "warned", "none" (never tested) or FAIL "failed: <tests>"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakery.config.load import Project
from bakery.core import catalog, provenance
from bakery.core.catalog import ImageRecord
from bakery.core.jcs import digest, jcs_bytes
from bakery.errors import BakeryError, TrustError, UsageError
from bakery.providers.base import Provider
from bakery.trust import testresults
from bakery.trust.ancestry import Ancestry, parent_in_statement
from bakery.trust.attestation import Attestations, payload_digest
from bakery.trust.audit_facts import test_key
from bakery.trust.context import TrustContext
from bakery.trust.revocations import Revocation, Revocations, marks_disagree, revocation_of
from bakery.trust.signing import PAYLOAD_TYPE, verify

STATEMENT_FIELDS = ("image", "version", "target")
NOT_OURS = "the signed payload is not bakery's SLSA provenance"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verification:
    ref: str
    target: str
    checks: tuple[Check, ...]
    signed_by: tuple[str, ...] = ()
    digest: str | None = None  # the statement digest (what the image's tags carry)
    revocation: Revocation | None = None
    parent: Verification | None = None
    policy: str = ""
    built_by: str = ""  # who baked it, as its signed provenance names them ('' for a bake that does not)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    @property
    def revoked(self) -> bool:
        return self.revocation is not None and self.revocation.effective()

    @property
    def revocation_unknown(self) -> list[str]:
        """Why a revocation cannot be ruled out (revocations unreadable, or the registry and the
        image's own marks disagree): no override deploys such an image."""
        return [c.detail for c in self.checks if c.name == "revocation" and not c.ok and not self.revoked]


@dataclass
class _Checks:
    items: list[Check] = field(default_factory=list)

    def add(self, name: str, problems: list[str], ok_detail: str) -> bool:
        if problems:
            self.items.extend(Check(name, False, p) for p in problems)
            return False
        self.items.append(Check(name, True, ok_detail))
        return True


class Verifier:
    def __init__(self, project: Project, trust: TrustContext, provider_for: Callable[[str], Provider]) -> None:
        self.project = project
        self.trust = trust
        self.provider_for = provider_for  # target name -> its provider
        self.attestations = Attestations(trust)
        self.ancestry = Ancestry(self.attestations)
        self._unknown = ""  # why revocations could not be read, when they could not

    def record(self, ref: str, target: str | None) -> tuple[ImageRecord, list[ImageRecord]]:
        """The record `ref` names (newest version when none) and every record of its target."""
        name, version = catalog.parse_ref(ref)
        image = self.project.image(name)
        targets = image.targets or tuple(self.project.config.targets)
        if target is None:
            if len(targets) > 1:
                raise UsageError(f"{name} is baked for {', '.join(targets)}; say which with --target")
            target = targets[0]
        elif target not in self.project.config.targets:
            raise UsageError(f"no target '{target}'; targets: {', '.join(sorted(self.project.config.targets))}")
        records = self.provider_for(target).images(target)
        if version is not None and not any(r.name == name and r.version == version for r in records):
            self._pruned(f"{name}@{version}", target)
        return catalog.select(records, name=name, version=version, target=target), records

    def _pruned(self, ref: str, target: str) -> None:
        """Raise UsageError saying when `ref` was pruned from `target`, if the audit log says so."""
        subject = f"{ref} on {target}"
        for event in reversed(self.trust.audit.events()):
            if event.action == "prune" and event.subject == subject and event.result == "pruned":
                raise UsageError(
                    f"{ref} on {target} was pruned at {event.time} by {event.who} (audit event {event.seq}); "
                    "its attestations and history stay in the registry",
                    hint="`bakery audit` lists its events",
                )

    def verify(self, ref: str, *, target: str | None = None, audit: bool = True) -> Verification:
        """Verify `ref` (IMAGE or IMAGE@VERSION) on `target`; a failed verification is recorded
        in the audit log. Raises UsageError when no such image exists."""
        record, records = self.record(ref, target)
        result = self.verify_record(record, records)
        if audit and not result.ok:
            self.trust.record(
                "verify-failed",
                f"{record.ref} on {record.target}",
                "failed",
                policy=result.policy,
                details={"problems": result.problems},
            )
        return result

    def verify_record(self, record: ImageRecord, records: list[ImageRecord]) -> Verification:
        by_ref = {r.ref: r for r in records}
        try:
            table: dict[tuple[str, str], Revocation] | None = Revocations(self.trust).table()
        except TrustError as exc:  # revocations that cannot be read or disagree: nothing verifies (fail closed)
            table, self._unknown = None, exc.message
        return self._verify(record, by_ref, table, seen=set())

    def _verify(
        self,
        record: ImageRecord,
        by_ref: dict[str, ImageRecord],
        table: dict[tuple[str, str], Revocation] | None,
        seen: set[str],
    ) -> Verification:
        seen.add(record.ref)
        checks = _Checks()
        policy = self.trust.policy()
        signed_by: tuple[str, ...] = ()
        statement_digest: str | None = None
        built_by = ""
        try:
            envelope = self.attestations.get(record)
        except TrustError as exc:
            envelope, _ = None, checks.add("attestation", list(exc.problems), "")
        else:
            checks.add(
                "attestation",
                []
                if envelope
                else [f"unsigned: no attestation for {record.ref} on {record.target} in {self.trust.store.where}"],
                f"in {self.trust.store.where}",
            )
        statement: dict[str, Any] | None = None
        if envelope is not None:
            statement, signed_by = self._signature(envelope, checks)
            if statement is not None:
                statement_digest = payload_digest(envelope)
                provider = self.provider_for(record.target)
                about = _statement_problems(record, statement)
                checks.add("statement", about, "names this image and its inputs")
                if NOT_OURS not in about:  # a statement of another shape says nothing to compare
                    self._subject(record, statement, provider, checks)
                    self._tags(record, statement, statement_digest, provider, checks)
                    self._tests(record, statement_digest, checks)
                    built_by = built_by_in(statement)
        # Ancestry: the verified statement's parent is authoritative; without one, every claim counts.
        if statement is not None:
            parents = self.ancestry.verified(record, parent_in_statement(statement))
        else:
            parents = self.ancestry.parents
        revocation = revocation_of(record, table, by_ref, parents) if table is not None else None
        if table is None:
            checks.add("revocation", [f"cannot be ruled out: {self._unknown}"], "")
        elif revocation is not None and revocation.effective():
            checks.add("revocation", [f"{record.ref} is {revocation.describe()}"], "")
        elif (disagreement := marks_disagree(record, revocation, by_ref, parents)) is not None:
            checks.add("revocation", [f"cannot be ruled out: {disagreement}"], "")
        else:
            later = f"; {revocation.describe()}" if revocation is not None else ""
            checks.add("revocation", [], f"not revoked{later}")
        parent = None
        named = parents(record)
        if named:
            parent_record = by_ref.get(named[0])
            if parent_record is None:
                checks.add("parent", [f"its parent {named[0]} is not in the {record.target} catalog"], "")
            elif parent_record.ref in seen:
                checks.add("parent", [f"its parent chain loops at {parent_record.ref}"], "")
            else:
                parent = self._verify(parent_record, by_ref, table, seen)
                problems = [f"its parent {parent.ref} does not verify: {p}" for p in parent.problems[:3]]
                checks.add("parent", problems, f"{parent.ref} verifies")
        return Verification(
            record.ref,
            record.target,
            tuple(checks.items),
            signed_by,
            statement_digest,
            revocation,
            parent,
            policy,
            built_by,
        )

    def _signature(self, envelope: dict[str, Any], checks: _Checks) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        """The signed statement and the names of the keys that signed it (None when it did not
        verify: its payload was never parsed)."""
        if not self.trust.keys:
            checks.add(
                "signature",
                [
                    "no trusted keys: list public keys under trust.keys in images.yaml "
                    "(bakery keys generate makes a pair)"
                ],
                "",
            )
            return None, ()
        try:
            verified = verify(envelope, self.trust.keys, self.trust.threshold, payload_type=PAYLOAD_TYPE)
        except TrustError as exc:
            checks.add("signature", list(exc.problems), "")
            return None, ()
        names = ", ".join(verified.signed_by)
        checks.add("signature", [], f"signed by {names} ({len(verified.signed_by)} of {self.trust.threshold} needed)")
        return verified.document, verified.signed_by

    def _tests(self, record: ImageRecord, statement_digest: str, checks: _Checks) -> None:
        try:
            status = testresults.read(self.trust, record, statement_digest)
        except BakeryError as exc:
            checks.add("tests", [f"cannot read the test result: {exc.message}"], "")
            return
        try:
            logged = self.trust.log().tests.get(test_key(record.target, record.ref))
        except TrustError:
            logged = None  # a log that does not verify: the revocation check names it, and fails
        if logged == "failed" and status.state in ("none", "passed"):  # a result deleted, or an older one put back
            said = "holds no test result" if status.state == "none" else "says they passed"
            problem = f"the signed audit log records that its newest tests failed, but the registry {said}"
            checks.add("tests", [problem], "")
            return
        checks.add("tests", [status.line] if status.state in ("failed", "invalid") else [], status.line)

    def _subject(self, record: ImageRecord, statement: dict[str, Any], provider: Provider, checks: _Checks) -> None:
        try:
            signed = statement["subject"][0]["digest"]["sha256"]
        except (KeyError, IndexError, TypeError):
            checks.add("subject", ["the signed statement has no sha256 subject"], "")
            return
        try:
            described = provider.descriptor(record)
        except BakeryError as exc:
            checks.add("subject", [f"{record.ref} as it exists now cannot be read: {exc.message}"], "")
            return
        self._files(statement, described, checks)
        live = subject_digest(described)
        what = "the disk" if "sha256" in described else "the image's descriptor (ids, snapshots, regions, times)"
        checks.add(
            "subject",
            []
            if _hex(live) == _hex(signed)
            else [f"{what} changed since it was signed: sha256 {_hex(live)[:16]}… now, {_hex(signed)[:16]}… signed"],
            f"{what} matches the signed subject ({_hex(signed)[:16]}…)",
        )

    def _files(self, statement: dict[str, Any], described: dict[str, Any], checks: _Checks) -> None:
        """The other subjects (a local image's kernel and initrd) against their files now."""
        now = described.get("files") or {}
        problems = []
        for subject in statement.get("subject", [])[1:]:
            name, signed = subject.get("name"), (subject.get("digest") or {}).get("sha256", "")
            if name not in now:
                problems.append(f"{name} is signed with the image but is not there now")
            elif _hex(str(now[name])) != _hex(str(signed)):
                problems.append(f"{name} changed since it was signed: sha256 {_hex(str(now[name]))[:16]}… now")
        if problems or len(statement.get("subject", [])) > 1:
            names = ", ".join(str(s.get("name")) for s in statement.get("subject", [])[1:])
            checks.add("files", problems, f"{names} match the signed subjects")

    def _tags(
        self, record: ImageRecord, statement: dict[str, Any], statement_digest: str, provider: Provider, checks: _Checks
    ) -> None:
        expected = provenance.stamp_of(statement, state="complete")
        problems: list[str] = []
        try:
            claims = provider.claims(record)
        except BakeryError as exc:
            checks.add("tags", [f"cannot read the image's tags or labels: {exc.message}"], "")
            return
        for claim in claims:
            problems.extend(f"{p} on {claim.location}" for p in claim.problems)
            where = claim.names.get("attestation", "attestation digest")
            if claim.attestation is None:
                problems.append(f"{where} is missing on {claim.location}")
            elif claim.attestation != statement_digest:
                problems.append(
                    f"{where} on {claim.location} is {claim.attestation!r}, "
                    f"the signed statement's is {statement_digest!r}"
                )
            for field_name, value in expected.items():
                name = claim.names.get(field_name, field_name)
                if field_name not in claim.stamp:
                    problems.append(f"{name} is missing on {claim.location}")
                elif claim.stamp[field_name] != value:
                    problems.append(
                        f"{name} on {claim.location} is {claim.stamp[field_name]!r}, "
                        f"the signed statement says {value!r}"
                    )
            if claim.document is not None and jcs_bytes(dict(claim.document)) != jcs_bytes(statement):
                problems.append(
                    f"the provenance document carried by {claim.location} differs from the signed statement"
                )
        checks.add("tags", problems, f"{len(claims)} location(s) agree with the signed statement")


def subject_digest(described: dict[str, Any]) -> str:
    """The subject digest of a live descriptor: the artifact's own sha256 where the provider can
    hash it (a local disk), else the sha256 of the descriptor in canonical JSON."""
    own = described.get("sha256")
    return str(own) if isinstance(own, str) else digest(described)


def built_by_in(statement: dict[str, Any]) -> str:
    """Who baked the image, as its signed statement names them (`who()` at bake time, in
    internalParameters.builtBy); '' when it does not (a bake by an older bakery)."""
    try:
        value = statement["predicate"]["buildDefinition"]["internalParameters"].get("builtBy", "")
    except (KeyError, TypeError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _hex(text: str) -> str:
    return text.removeprefix("sha256:")


def _statement_problems(record: ImageRecord, statement: dict[str, Any]) -> list[str]:
    try:
        external = statement["predicate"]["buildDefinition"]["externalParameters"]
        internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    except (KeyError, TypeError):
        return [NOT_OURS]
    problems = []
    if statement.get("predicateType") != provenance.PREDICATE_TYPE:
        problems.append(f"predicateType is {statement.get('predicateType')!r}, not {provenance.PREDICATE_TYPE}")
    wanted = {"image": record.name, "version": record.version, "target": record.target}
    for key in STATEMENT_FIELDS:
        if external.get(key) != wanted[key]:
            problems.append(f"the signed statement is for {key} {external.get(key)!r}, this image's is {wanted[key]!r}")
    if internal.get("inputsDigest") != record.inputs_digest:
        problems.append(
            f"the signed inputs digest {internal.get('inputsDigest')!r} is not the image's {record.inputs_digest!r}"
        )
    return problems
