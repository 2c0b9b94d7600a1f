"""The report's builder: read the estate from bakery's own services (the catalog listings,
verify, channels and their heads, test results, approvals, group status, rollout history,
revocations) into the frozen page model of report/model.py.

It only reads: it never signs, records an audit event or makes a key. A part that cannot be read
(a target, the channels, a group) is named in `Estate.problems` or on its group, and the rest is
still shown. SBOMs and scan findings come through `Readers`: none are read until their services
hand one in (the page then says "no SBOM recorded" / "not scanned")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bakery.bake.inspect import conflicts
from bakery.config.load import Project
from bakery.core.catalog import ImageRecord, version_key
from bakery.errors import BakeryError
from bakery.groups.base import HistoryEntry
from bakery.progress import Reporter
from bakery.promote.service import ChannelView, Promoter
from bakery.providers.base import Provider, get_provider
from bakery.report import model
from bakery.rollout.service import Rollouts
from bakery.rollout.status import GroupStatus, status
from bakery.trust import testresults
from bakery.trust.approvals import Approvals
from bakery.trust.attestation import Attestations
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, verify
from bakery.trust.verify import Verification, Verifier
from bakery.workspace import Workspace

SbomReader = Callable[[ImageRecord], model.Sbom | model.Untrusted | None]
FindingsReader = Callable[[ImageRecord], model.Findings | model.Untrusted | None]


@dataclass(frozen=True)
class Readers:
    """Where the SBOM and scan sections come from: each takes a catalog record and returns its
    summary, model.Untrusted (why) when the one stored cannot be trusted, or None when there is
    none. The defaults read nothing."""

    sbom: SbomReader | None = None
    findings: FindingsReader | None = None


def version_anchor(target: str, ref: str) -> str:
    """'version-aws-web-1.0.3' for web@1.0.3 on aws."""
    return model.anchor("version", target, *ref.split("@", 1))


def group_anchor(name: str) -> str:
    return model.anchor("group", name)


def build(project: Project, workspace: Workspace, reporter: Reporter, readers: Readers | None = None) -> model.Estate:
    """The estate as bakery's services see it now."""
    return _Builder(project, workspace, reporter, readers or Readers()).estate()


class _Builder:
    def __init__(self, project: Project, workspace: Workspace, reporter: Reporter, readers: Readers) -> None:
        self.project, self.workspace, self.reporter, self.readers = project, workspace, reporter, readers
        self.trust = TrustContext(project, workspace, reporter, creates_key=False)
        self.providers: dict[str, Provider] = {}
        self.verifier = Verifier(project, self.trust, self.provider_for)
        self.rollouts = Rollouts(project, workspace, reporter, trust=self.trust)
        self.problems: list[str] = []

    def provider_for(self, target: str) -> Provider:
        kind = self.project.config.targets[target].kind
        if kind not in self.providers:
            self.providers[kind] = get_provider(kind, self.workspace, self.reporter, None, self.project.config.targets)
        return self.providers[kind]

    def estate(self) -> model.Estate:
        records = self._records()
        known = {(r.target, r.ref) for r in records}
        views = self._views()
        statuses = self._statuses()
        heads = tuple(
            model.Head(
                v.channel,
                v.target,
                v.image,
                v.head,
                version_anchor(v.target, f"{v.image}@{v.head}") if (v.target, f"{v.image}@{v.head}") in known else None,
                v.skipped,
            )
            for v in views
        )
        runners: dict[tuple[str, str], list[model.Runner]] = {}
        for s in statuses:
            for ref, count in sorted(s.counts.items()):
                runners.setdefault((s.target, ref), []).append(model.Runner(s.group, count, group_anchor(s.group)))
        by_target: dict[str, list[ImageRecord]] = {}
        for record in records:
            by_target.setdefault(record.target, []).append(record)
        versions = tuple(
            self._version(record, by_target[record.target], views, runners.get((record.target, record.ref), []))
            for record in records
        )
        groups = tuple(self._group(s, known) for s in statuses)
        return model.Estate(
            project=str(self.project.path),
            generated=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            targets=tuple(sorted(self.project.config.targets)),
            versions=versions,
            groups=groups,
            heads=heads,
            problems=tuple(self.problems),
        )

    def _records(self) -> list[ImageRecord]:
        """Every version on every target, from each target's own listing; a target that cannot be
        read is named in the problems and the others are still shown."""
        records: list[ImageRecord] = []
        for target in sorted(self.project.config.targets):
            try:
                records += self.provider_for(target).images(target)
            except BakeryError as exc:  # no credentials, an endpoint down, a refusal
                self.problems.append(f"target {target} could not be listed: {exc.message}")
        ordered = sorted(records, key=lambda r: (r.target, r.name, version_key(r.version), r.created))
        self.problems += [f"conflict: {c}" for c in conflicts(ordered)]
        return ordered

    def _views(self) -> list[ChannelView]:
        if not self.project.config.channels:
            return []
        try:
            return Promoter(self.project, self.trust, self.provider_for).views()
        except BakeryError as exc:  # a channel history that does not verify: its heads are unknown
            self.problems.append(f"the channels cannot be read or trusted: {exc.message}")
            return []

    def _statuses(self) -> tuple[GroupStatus, ...]:
        if not self.project.config.groups:
            return ()
        return status(self.rollouts, []).groups

    def _version(
        self, record: ImageRecord, records: list[ImageRecord], views: list[ChannelView], runs: list[model.Runner]
    ) -> model.Version:
        checked = self.verifier.verify_record(record, records)
        revoked = ""
        if checked.revocation is not None and checked.revocation.effective():
            revoked = checked.revocation.describe()
        parent_known = record.parent is not None and any(r.ref == record.parent for r in records)
        return model.Version(
            anchor=version_anchor(record.target, record.ref),
            name=record.name,
            version=record.version,
            target=record.target,
            created=record.created,
            inputs_digest=record.inputs_digest,
            base=record.base,
            parent=record.parent,
            parent_anchor=version_anchor(record.target, record.parent) if record.parent and parent_known else None,
            locations=record.locations,
            verified=checked.ok,
            checks=tuple(model.Check(c.name, c.ok, c.detail) for c in checked.checks),
            signed_by=checked.signed_by,
            revoked=revoked,
            provenance=self._provenance(record, checked),
            tests=self._tests(record, checked.digest),
            approvals=self._approvals(record),
            heads=tuple(
                v.channel for v in views if (v.target, v.image, v.head) == (record.target, record.name, record.version)
            ),
            runs_on=tuple(runs),
            sbom=self.readers.sbom(record) if self.readers.sbom else None,
            findings=self.readers.findings(record) if self.readers.findings else None,
        )

    def _provenance(self, record: ImageRecord, checked: Verification) -> model.Provenance:
        """The signed statement's builder, run and dependencies, read only when its signature verifies."""
        if checked.digest is None:
            return model.Provenance("", problem="no verified provenance statement")
        try:
            envelope = Attestations(self.trust).get(record)
            if envelope is None:
                return model.Provenance(checked.digest, problem="no attestation")
            statement = verify(envelope, self.trust.keys, self.trust.threshold, payload_type=PAYLOAD_TYPE).document
        except BakeryError as exc:
            return model.Provenance(checked.digest, problem=exc.message)
        predicate = _dict(statement.get("predicate"))
        run, definition = _dict(predicate.get("runDetails")), _dict(predicate.get("buildDefinition"))
        builder, metadata = _dict(run.get("builder")), _dict(run.get("metadata"))
        deps = definition.get("resolvedDependencies")
        dependencies = tuple(
            (str(d.get("name", "")), ", ".join(f"{k}:{v}" for k, v in _dict(d.get("digest")).items()) or "-")
            for d in (deps if isinstance(deps, list) else [])
            if isinstance(d, dict)
        )
        return model.Provenance(
            checked.digest,
            builder=str(builder.get("id", "")),
            invocation=str(metadata.get("invocationId", "")),
            started=str(metadata.get("startedOn", "")),
            finished=str(metadata.get("finishedOn", "")),
            built_by=checked.built_by,
            dependencies=dependencies,
        )

    def _tests(self, record: ImageRecord, digest: str | None) -> model.Tests:
        try:
            found = testresults.read(self.trust, record, digest)
        except BakeryError as exc:
            return model.Tests("unknown", f"cannot read the test result: {exc.message}")
        return model.Tests(found.state, found.detail, found.passed, found.failed)

    def _approvals(self, record: ImageRecord) -> tuple[model.Approval, ...]:
        out: list[model.Approval] = []
        approvals = Approvals(self.trust)
        for channel in sorted(self.project.config.channels):
            try:
                found = approvals.read(record.target, record.name, record.version, channel)
            except BakeryError as exc:
                out.append(model.Approval(channel, "", "", "", "", problem=exc.message))
                continue
            out += [model.Approval(channel, a.key, a.by, a.time, a.comment, a.problem) for a in found]
        return tuple(out)

    def _group(self, s: GroupStatus, known: set[tuple[str, str]]) -> model.Group:
        def anchor_of(ref: str | None) -> str | None:
            return version_anchor(s.target, ref) if ref and (s.target, ref) in known else None

        history: tuple[model.Rollout, ...] = ()
        error = s.error or ""
        try:
            spec = self.rollouts.group(s.group)
            entries = self.rollouts.driver(spec).history(s.group, spec, self.rollouts.target_spec(spec))
            history = tuple(_rollout(e, anchor_of(e.to.image)) for e in reversed(entries))
        except BakeryError as exc:
            error = error or f"its rollout history cannot be read: {exc.message}"
        intended = s.intended.image if s.intended else None
        return model.Group(
            anchor=group_anchor(s.group),
            name=s.group,
            image=s.image,
            target=s.target,
            kind=s.kind,
            intended=s.intended.describe() if s.intended else "nothing",
            intended_anchor=anchor_of(intended),
            running=tuple(model.Running(ref, n, anchor_of(ref)) for ref, n in sorted(s.counts.items())),
            drift=s.reasons if s.drift else (),
            channel=s.channel or "",
            channel_head=s.channel_head or "",
            history=history,
            error=error,
        )


def _rollout(e: HistoryEntry, to_anchor: str | None) -> model.Rollout:
    return model.Rollout(
        id=e.id,
        kind=e.kind,
        started=e.started,
        finished=e.finished or "",
        who=e.who,
        from_=e.from_.describe() if e.from_ else "",
        to=e.to.describe(),
        to_anchor=to_anchor,
        strategy=e.strategy,
        result=e.result,
        reason=e.reason or "",
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
