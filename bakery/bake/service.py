"""The bake: resolve -> stage -> render -> build -> verify -> record, for one image on one target,
as declared steps on the step engine (bakery.steps; the journal beside the log says where it stopped).

Nothing is recorded until every earlier step succeeded. A failure or an interrupt, in any phase,
removes the work directory (Packer's own cleanup has already removed its VM), and every image
the bake created on the target, found by the mark it carries from its creation (leftovers.py);
only the log stays.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bakery import packer, runner, steps, traces
from bakery.bake import leftovers, render
from bakery.bake.build import run_packer
from bakery.bake.stage import Staged, parent_of, render_staged, request_for, stage
from bakery.config.load import EffectiveImage, Project
from bakery.config.secrets import secret_values
from bakery.core import provenance
from bakery.core.catalog import ImageRecord, next_version
from bakery.core.debris import Owner
from bakery.core.text import clean
from bakery.errors import BakeryError, TrustError, UsageError
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, ClientFactory, Provider, get_provider
from bakery.sbom import making as sbom
from bakery.steps import Handoff, Journal, Results, Step
from bakery.trust.ancestry import Ancestry
from bakery.trust.attestation import Attestations, Signed
from bakery.trust.context import TrustContext
from bakery.trust.revocations import Revocations, marks_disagree, revocation_of
from bakery.workspace import Workspace, exclusive, remove_tree


@dataclass(frozen=True)
class BuildResult:
    record: ImageRecord
    inputs_digest: str
    log_path: str | None
    seconds: float
    skipped: bool = False


@dataclass(frozen=True)
class _Bake:
    """One bake under way: what it bakes, with what, and who it is (its marks on the target)."""

    eff: EffectiveImage
    provider: Provider
    invocation: str
    started: str
    log_path: Path
    secrets: dict[str, str]
    force: bool
    clock: float  # time.monotonic() at its start
    revoked_parent_reason: str | None = None  # why a revoked parent is used anyway (an override, on the record)


@dataclass(frozen=True)
class _Resolved:
    """What `resolve` hands on: the version to bake, where, and everything its render needs."""

    version: str
    workdir: Path
    request: BakeRequest
    staged: Staged
    up_to_date: BuildResult | None  # an image with these inputs exists (and no --force): nothing more to do


@dataclass(frozen=True)
class _Verified:
    """What `verify` hands on: what Packer made, its provenance and the signature over it."""

    artifacts: list[str]
    statement: dict[str, Any]
    signed: Signed
    packages: sbom.Made  # its packages as CycloneDX, or why it has none


RESOLVED = Handoff[_Resolved]("resolve")
RENDERED = Handoff[render.Rendered]("render")
BUILT = Handoff[list[str]]("build")  # the artifact ids Packer reported
VERIFIED = Handoff[_Verified]("verify")
RECORDED = Handoff[BuildResult]("record")


class Baker:
    def __init__(
        self,
        project: Project,
        workspace: Workspace,
        reporter: Reporter,
        provider: Provider | None = None,
        clients: ClientFactory | None = None,
        trust: TrustContext | None = None,
    ) -> None:
        self.project = project
        self.clients = clients
        self.ws = workspace
        self.reporter = reporter
        self._provider = provider
        self.trust = trust or TrustContext(project, workspace, reporter)
        self.attestations = Attestations(self.trust)

    def provider(self, kind: str) -> Provider:
        return self._provider or get_provider(
            kind, self.ws, self.reporter, self.clients, targets=self.project.config.targets
        )

    def bake(
        self, name: str, target: str, *, force: bool = False, allow_revoked_parent: str | None = None
    ) -> BuildResult:
        """Bake `name` on `target`, unless an image with the same inputs digest exists (then skip,
        unless `force`). A parent that is revoked (by itself or an ancestor) refuses the bake
        (TrustError) unless `allow_revoked_parent` gives the reason, which the audit log keeps.
        Raises BakeryError (BuildError, ProviderError, Interrupted); whatever stops it, nothing
        this bake created stays behind on the target, nothing is recorded."""
        if allow_revoked_parent is not None:
            clean(allow_revoked_parent, what="--reason")
            if not allow_revoked_parent.strip():
                raise UsageError("--allow-revoked-parent needs --reason TEXT: the override goes into the audit log")
        eff = self.project.effective(name, target)
        secrets = secret_values(eff)
        self.ws.ensure()
        provider = self.provider(eff.kind)
        invocation = uuid.uuid4().hex[:12]
        started = steps.now()
        log_path = self.ws.builds / f"{name}-{target}-{invocation}.log"
        lock = self.ws.locks / f"{target}--{name}.lock"

        def waiting(holder: str) -> None:
            self.reporter.note(f"another bake of {name} on {target} is running (pid {holder}); waiting for it")

        with runner.signal_guard(), traces.job("bake", image=name, target=target), exclusive(lock, waiting):
            bake = _Bake(
                eff, provider, invocation, started, log_path, secrets, force, time.monotonic(), allow_revoked_parent
            )
            return self._bake_locked(bake)

    def _bake_locked(self, bake: _Bake) -> BuildResult:
        journal = Journal.create(
            self.ws.builds / f"{bake.eff.name}-{bake.eff.target}-{bake.invocation}.steps.json",
            image=bake.eff.name,
            target=bake.eff.target,
            invocation=bake.invocation,
        )
        results = Results()
        try:
            steps.execute(self._steps(bake, results), journal, self.reporter)
        except BaseException as exc:
            self._undo(bake, journal, getattr(exc, "message", None) or type(exc).__name__)
            raise
        finally:
            if journal.get("workdir") is not None:  # holds the build key; the image is recorded
                shutil.rmtree(journal.get("workdir"), ignore_errors=True)
        journal.mark(status=steps.SUCCEEDED)
        resolved = results[RESOLVED]
        return resolved.up_to_date if resolved.up_to_date is not None else results[RECORDED]

    def _undo(self, bake: _Bake, journal: Journal, why: str) -> None:
        """After a failure or an interrupt: remove what the bake made, as its journal says."""
        eff, version = bake.eff, journal.get("version", "")
        launched = bool(journal.get("launched"))  # from Packer's start on, it may have created images
        if launched:
            leftovers.remove_own(bake.provider, eff.target, eff.name, bake.invocation, self.reporter)
        if journal.get("attested"):
            try:
                sbom.remove(self.trust, eff.target, eff.name, version)  # its SBOM, if it got one
                self.attestations.remove(eff.target, eff.name, version)
            except BakeryError as gone:  # the bake's own error matters more; the next bake replaces it
                self.reporter.note(f"warning: could not remove the attestation of the failed bake: {gone.message}")
        if launched:
            self.trust.record(
                "build",
                f"{eff.name}@{version} on {eff.target}",
                "failed",
                details={"invocation": bake.invocation, "reason": why, "log": str(bake.log_path)},
            )

    def _steps(self, bake: _Bake, results: Results) -> list[Step]:
        """The bake as declared steps on the step engine, each handing on its result in `results`."""
        eff, hand = bake.eff, results.handing

        def up_to_date() -> bool:
            return results[RESOLVED].up_to_date is not None  # nothing more to do

        def version() -> str:
            return results[RESOLVED].version

        return [
            Step("resolve", hand(RESOLVED, lambda j: self._resolve(bake, j)), describe=f"{eff.name} on {eff.target}"),
            Step(
                "render",
                hand(RENDERED, lambda _j: self._render_step(bake, results[RESOLVED])),
                describe=lambda: f"{eff.name} {version()} for Packer {results[RESOLVED].request.tools['packer']}",
                skip=up_to_date,
            ),
            Step(
                "build",
                hand(BUILT, lambda j: self._build_step(bake, results[RESOLVED], results[RENDERED], j)),
                describe=f"packer build (log: {bake.log_path})",
                skip=up_to_date,
            ),
            Step(
                "verify",
                hand(VERIFIED, lambda _j: self._verify_step(bake, results[RESOLVED], results[BUILT])),
                describe="checking what Packer produced",
                skip=up_to_date,
            ),
            Step(
                "record",
                hand(RECORDED, lambda j: self._record_step(bake, results[RESOLVED], results[VERIFIED], j)),
                describe=lambda: f"{eff.name}@{version()} into the {eff.target} catalog",
                skip=up_to_date,
            ),
        ]

    def _resolve(self, bake: _Bake, journal: Journal) -> _Resolved:
        eff, provider = bake.eff, bake.provider
        parent = parent_of(eff, provider)
        if parent is not None:
            self._refuse_revoked_parent(bake, parent)
        existing = provider.images(eff.target, eff.name)
        left = leftovers.clear(provider, eff.target, eff.name, self.reporter)
        version = next_version(eff.image.version, [r.version for r in existing] + [x.version for x in left])
        journal.put("version", version)
        workdir = self.ws.builds / f"{eff.name}-{eff.target}-{bake.invocation}"
        journal.put("workdir", str(workdir))  # removed when the bake ends, whatever happens
        workdir.mkdir(parents=True)
        request = self._request(bake, version, workdir, parent)
        staged = stage(self.project, request, provider)
        traces.annotate(version=version, inputs_digest=staged.digest)
        same = [r for r in existing if r.inputs_digest == staged.digest]
        up_to_date = None
        if same and not bake.force:
            self.reporter.note(
                f"{eff.name} on {eff.target} is up to date: {same[-1].ref} has the same "
                "inputs digest (use --force to bake anyway)"
            )
            up_to_date = BuildResult(
                record=same[-1], inputs_digest=staged.digest, log_path=None, seconds=0.0, skipped=True
            )
        return _Resolved(version, workdir, request, staged, up_to_date)

    def _refuse_revoked_parent(self, bake: _Bake, parent: ImageRecord) -> None:
        """TrustError when `parent` is revoked (its ancestry as its statement and marks claim it),
        unless the bake overrides it with a reason: then a warning and an audit event."""
        eff = bake.eff
        everything = {r.ref: r for r in bake.provider.images(eff.target)}
        table = Revocations(self.trust).table()
        parents = Ancestry(self.attestations).parents
        found = revocation_of(parent, table, everything, parents)
        disagreement = marks_disagree(parent, found, everything, parents)
        if disagreement is None and (found is None or not found.effective()):
            return
        subject = f"{eff.name} on {eff.target} from {parent.ref}"
        why = f"it is {found.describe()}" if found is not None else f"it may be revoked: {disagreement}"
        if bake.revoked_parent_reason is None:
            raise TrustError(
                f"refusing to bake {eff.name} on {eff.target} from {parent.ref}: {why}",
                hint=f"bake {parent.name} again first (its newest version is what `from: {parent.name}` takes), or "
                '--allow-revoked-parent --reason "WHY" to bake on it anyway, on the record',
            )
        self.reporter.note(
            f"WARNING: baking {eff.name} from {parent.ref}: {why}; "
            "--allow-revoked-parent overrides it, recorded in the audit log with its reason"
        )
        details = {"reason": bake.revoked_parent_reason, "revocation": why}
        self.trust.record("override", subject, "allowed-revoked-parent", details=details, strict=True)

    def _render_step(self, bake: _Bake, resolved: _Resolved) -> render.Rendered:
        self.trust.signer()  # a signer that cannot sign fails the bake now, before Packer starts
        rendered = render_staged(
            self.project, resolved.request, resolved.staged, out=resolved.workdir / "packer", reporter=self.reporter
        )
        runner.check_interrupted(f"bake of {bake.eff.name} on {bake.eff.target}")  # bakes in worker threads
        return rendered

    def _build_step(self, bake: _Bake, resolved: _Resolved, rendered: render.Rendered, journal: Journal) -> list[str]:
        eff = bake.eff
        journal.put("launched", True)  # from here on, the bake may have created images on the target
        owner = resolved.request.owner or Owner.current(bake.invocation, bake.started)
        with leftovers.Heartbeat.of(bake.provider, eff.target, eff.name, owner, self.reporter) as heartbeat:
            events = run_packer(
                rendered.directory, resolved.workdir, bake.log_path, bake.secrets, self.reporter, heartbeat.saw
            )
        runner.check_interrupted(f"bake of {eff.name} on {eff.target}")
        return packer.artifact_ids(events)

    def _verify_step(self, bake: _Bake, resolved: _Resolved, artifacts: list[str]) -> _Verified:
        eff, request = bake.eff, resolved.request
        bake.provider.scan(request, bake.secrets)  # an image holding a secret's value is never recorded
        subject_name, subject_digest = bake.provider.subject(request, artifacts)
        finished = steps.now()
        made = sbom.make(bake.provider.package_db(request), eff.name, resolved.version, eff.target, finished)
        statement = provenance.finalize(
            resolved.staged.skeleton,
            subject_name=subject_name,
            subject_digest=subject_digest,
            finished=finished,
            more=bake.provider.more_subjects(request),
        )
        signed = self.attestations.sign(statement)
        traces.annotate(provenance=signed.digest)
        leftovers.claim(bake.provider, eff.target, eff.name, resolved.version, bake.invocation)
        return _Verified(artifacts, statement, signed, made)

    def _record_step(self, bake: _Bake, resolved: _Resolved, verified: _Verified, journal: Journal) -> BuildResult:
        """The envelope into the registry first, then the image (carrying its digest) into the
        catalog: an image is never complete without its attestation."""
        eff, provider, version = bake.eff, bake.provider, resolved.version
        staged, signed = resolved.staged, verified.signed
        recorded = lambda: any(r.version == version for r in provider.images(eff.target, eff.name))  # noqa: E731
        self.attestations.put(eff.target, eff.name, version, signed.envelope, recorded=recorded)
        journal.put("attested", True)  # removed again if the image is not recorded
        kept = sbom.store(self.trust, verified.statement, signed.digest, verified.packages)  # goes with the attestation
        record = provider.publish(
            resolved.request,
            staged.prepared,
            verified.statement,
            staged.digest,
            verified.artifacts,
            attestation=signed.digest,
        )
        journal.put("attested", False)  # recorded: the envelope stays whatever happens next
        subject = f"{record.ref} on {record.target}"
        details = {"inputs_digest": staged.digest, "invocation": bake.invocation, "statement": signed.digest}
        self.trust.record("build", subject, "ok", details=details | ({"sbom": kept} if kept else {}))
        self.trust.record(
            "sign", subject, "ok", policy=self.trust.policy(), details={"keyid": signed.keyid, "key": signed.key_name}
        )
        sbom.audit(self.trust, subject, verified.packages, self.reporter)
        return BuildResult(
            record=record,
            inputs_digest=staged.digest,
            log_path=str(bake.log_path),
            seconds=round(time.monotonic() - bake.clock, 1),
        )

    def _request(self, bake: _Bake, version: str, workdir: Path, parent: ImageRecord | None) -> BakeRequest:
        return request_for(
            self.project,
            bake.eff,
            version,
            workdir,
            parent,
            log_path=bake.log_path,
            invocation=bake.invocation,
            started=bake.started,
        )

    def render_only(self, name: str, target: str, out: Path | None, packer_version: str | None) -> render.RenderResult:
        """Resolve and render exactly as a bake would (endpoint, source, next version, marks),
        without building: `packer build OUT` then makes what `bakery build` would make.

        Without `out`, renders into .bakery/render/IMAGE-TARGET, replacing an earlier render there."""
        eff = self.project.effective(name, target)
        self.ws.ensure()
        if out is None:
            out = self.ws.root / "render" / f"{name}-{target}"
            remove_tree(out)
        provider = self.provider(eff.kind)
        invocation = uuid.uuid4().hex[:12]
        with runner.signal_guard():
            self.reporter.phase("resolve", f"{name} on {target}")
            parent = parent_of(eff, provider)
            taken = [r.version for r in provider.images(target, name)]
            taken += [x.version for x in provider.marked(target, name)]
            version = next_version(eff.image.version, taken)
            out.mkdir(parents=True, exist_ok=True)
            log_path = self.ws.builds / f"{name}-{target}-{invocation}.log"
            request = request_for(
                self.project, eff, version, out, parent, log_path=log_path, invocation=invocation, started=steps.now()
            )
            if packer_version:
                request = replace(request, tools={**request.tools, "packer": packer_version})
            staged = stage(self.project, request, provider)
            rendered = render.render(
                self.project,
                eff,
                version=version,
                packer_version=request.tools["packer"],
                out=out,
                prepared=staged.prepared,
                marks=staged.marks,
            )
        return render.RenderResult(
            directory=str(rendered.directory),
            image=name,
            target=target,
            version=version,
            builder=rendered.builder,
            files=sorted(rendered.files),
        )
