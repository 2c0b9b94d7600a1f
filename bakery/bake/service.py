"""The bake: resolve -> stage -> render -> build -> verify -> record, for one image on one target,
as declared steps on the step engine (bakery.steps; the journal beside the log says where it stopped).

Nothing is recorded until every earlier step succeeded. A failure or an interrupt, in any phase,
removes the work directory (Packer's own cleanup has already removed its VM), and every image
the bake created on the target, found by the mark it carries from its creation (leftovers.py);
only the log stays.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bakery import packer, runner, steps
from bakery.bake import inputs, leftovers, render, tools
from bakery.config import kinds
from bakery.config.load import EffectiveImage, Project
from bakery.config.secrets import ansible_env, secret_values
from bakery.core import provenance
from bakery.core.catalog import ImageRecord, newest, next_version
from bakery.core.debris import Owner
from bakery.errors import BakeryError, UsageError
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, BuildMarks, ClientFactory, Prepared, Provider, get_provider
from bakery.providers.local.store import exclusive, remove_tree
from bakery.steps import Journal, Step
from bakery.trust.attestation import Attestations, Signed
from bakery.trust.context import TrustContext
from bakery.workspace import Workspace


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


@dataclass(frozen=True)
class _Staged:
    prepared: Prepared
    digest: str
    skeleton: dict[str, Any]
    marks: BuildMarks  # the provider's marks for what the build creates


@dataclass
class _Run:
    """What the steps of one bake hand on to each other."""

    bake: _Bake
    secrets: dict[str, str]
    force: bool
    clock: float
    parent: ImageRecord | None = None
    existing: list[ImageRecord] = field(default_factory=list)
    version: str = ""
    workdir: Path | None = None
    request: BakeRequest | None = None
    tools: dict[str, str] = field(default_factory=dict)
    staged: _Staged | None = None
    rendered: render.Rendered | None = None
    events: list[packer.Event] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    statement: dict[str, Any] = field(default_factory=dict)
    signed: Signed | None = None
    attested: bool = False  # its envelope is in the registry (removed again if the record fails)
    launched: bool = False
    result: BuildResult | None = None


@dataclass(frozen=True)
class RenderResult:
    directory: str
    image: str
    target: str
    version: str
    builder: str
    files: list[str]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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

    def bake(self, name: str, target: str, *, force: bool = False) -> BuildResult:
        """Bake `name` on `target`, unless an image with the same inputs digest exists (then skip,
        unless `force`). Raises BakeryError (BuildError, ProviderError, Interrupted); whatever
        stops it, nothing this bake created stays behind on the target, nothing is recorded."""
        eff = self.project.effective(name, target)
        secrets = secret_values(eff)
        self.ws.ensure()
        provider = self.provider(eff.kind)
        invocation = uuid.uuid4().hex[:12]
        started = now()
        log_path = self.ws.builds / f"{name}-{target}-{invocation}.log"
        lock = self.ws.locks / f"{target}--{name}.lock"

        def waiting(holder: str) -> None:
            self.reporter.note(f"another bake of {name} on {target} is running (pid {holder}); waiting for it")

        with runner.signal_guard(), exclusive(lock, waiting):
            bake = _Bake(eff, provider, invocation, started, log_path)
            return self._bake_locked(bake, secrets, force=force)

    def _bake_locked(self, bake: _Bake, secrets: dict[str, str], *, force: bool) -> BuildResult:
        run = _Run(bake, secrets, force, time.monotonic())
        journal = Journal.create(
            self.ws.builds / f"{bake.eff.name}-{bake.eff.target}-{bake.invocation}.steps.json",
            image=bake.eff.name,
            target=bake.eff.target,
            invocation=bake.invocation,
        )
        try:
            steps.execute(self._steps(run), journal, self.reporter)
        except BaseException as exc:
            if run.launched:  # from Packer's start on, this bake may have created images on the target
                leftovers.remove_own(bake.provider, bake.eff.target, bake.eff.name, bake.invocation, self.reporter)
            if run.attested:
                try:
                    self.attestations.remove(bake.eff.target, bake.eff.name, run.version)
                except BakeryError as gone:  # the bake's own error matters more; the next bake replaces it
                    self.reporter.note(f"warning: could not remove the attestation of the failed bake: {gone.message}")
            if run.launched:
                why = getattr(exc, "message", None) or type(exc).__name__
                self.trust.record(
                    "build",
                    f"{bake.eff.name}@{run.version} on {bake.eff.target}",
                    "failed",
                    details={"invocation": bake.invocation, "reason": why, "log": str(bake.log_path)},
                )
            raise
        finally:
            if run.workdir is not None:
                shutil.rmtree(run.workdir, ignore_errors=True)  # holds the build key; the image is recorded
        journal.mark(status=steps.SUCCEEDED)
        assert run.result is not None  # every path through the steps sets it
        return run.result

    def _steps(self, run: _Run) -> list[Step]:
        """The bake as declared steps on the step engine; `run` carries what each hands on."""
        eff, bake = run.bake.eff, run.bake
        skipped = lambda: run.result is not None  # noqa: E731 - up to date: nothing more to do
        return [
            Step("resolve", lambda _j: self._resolve(run), describe=f"{eff.name} on {eff.target}"),
            Step(
                "render",
                lambda _j: self._render_step(run),
                describe=lambda: f"{eff.name} {run.version} for Packer {run.tools['packer']}",
                skip=skipped,
            ),
            Step(
                "build", lambda _j: self._build_step(run), describe=f"packer build (log: {bake.log_path})", skip=skipped
            ),
            Step("verify", lambda _j: self._verify_step(run), describe="checking what Packer produced", skip=skipped),
            Step(
                "record",
                lambda _j: self._record_step(run),
                describe=lambda: f"{eff.name}@{run.version} into the {eff.target} catalog",
                skip=skipped,
            ),
        ]

    def _resolve(self, run: _Run) -> None:
        eff, provider = run.bake.eff, run.bake.provider
        run.parent = self._parent(eff, provider)
        run.existing = provider.images(eff.target, eff.name)
        left = leftovers.clear(provider, eff.target, eff.name, self.reporter)
        run.version = next_version(eff.image.version, [r.version for r in run.existing] + [x.version for x in left])
        run.workdir = self.ws.builds / f"{eff.name}-{eff.target}-{run.bake.invocation}"
        run.workdir.mkdir(parents=True)
        run.request = self._request(run.bake, run.version, run.workdir, run.parent)
        run.tools = dict(run.request.tools)
        run.staged = self._stage(run.request, run.bake.provider)
        same = [r for r in run.existing if r.inputs_digest == run.staged.digest]
        if same and not run.force:
            self.reporter.note(
                f"{eff.name} on {eff.target} is up to date: {same[-1].ref} has the same "
                "inputs digest (use --force to bake anyway)"
            )
            run.result = BuildResult(
                record=same[-1], inputs_digest=run.staged.digest, log_path=None, seconds=0.0, skipped=True
            )

    def _render_step(self, run: _Run) -> None:
        assert run.request is not None and run.staged is not None and run.workdir is not None
        self.trust.signer()  # a signer that cannot sign fails the bake now, before Packer starts
        run.rendered = self._render(run.request, run.staged, out=run.workdir / "packer")
        runner.check_interrupted(f"bake of {run.bake.eff.name} on {run.bake.eff.target}")  # bakes in worker threads

    def _build_step(self, run: _Run) -> None:
        assert run.request is not None and run.rendered is not None and run.workdir is not None
        bake, eff = run.bake, run.bake.eff
        run.launched = True
        owner = run.request.owner or Owner.current(bake.invocation, bake.started)
        with leftovers.Heartbeat.of(bake.provider, eff.target, eff.name, owner, self.reporter) as heartbeat:
            run.events = self._packer(run.rendered.directory, run.workdir, bake.log_path, run.secrets, heartbeat.saw)
        runner.check_interrupted(f"bake of {eff.name} on {eff.target}")

    def _verify_step(self, run: _Run) -> None:
        assert run.request is not None and run.staged is not None
        bake, eff = run.bake, run.bake.eff
        run.artifacts = packer.artifact_ids(run.events)
        bake.provider.scan(run.request, run.secrets)  # an image holding a secret's value is never recorded
        subject_name, subject_digest = bake.provider.subject(run.request, run.artifacts)
        run.statement = provenance.finalize(
            run.staged.skeleton,
            subject_name=subject_name,
            subject_digest=subject_digest,
            finished=now(),
            more=bake.provider.more_subjects(run.request),
        )
        run.signed = self.attestations.sign(run.statement)
        leftovers.claim(bake.provider, eff.target, eff.name, run.version, bake.invocation)

    def _record_step(self, run: _Run) -> None:
        """The envelope into the registry first, then the image (carrying its digest) into the
        catalog: an image is never complete without its attestation."""
        assert run.request is not None and run.staged is not None and run.signed is not None
        eff = run.bake.eff
        provider, version = run.bake.provider, run.version
        recorded = lambda: any(r.version == version for r in provider.images(eff.target, eff.name))  # noqa: E731
        self.attestations.put(eff.target, eff.name, version, run.signed.envelope, recorded=recorded)
        run.attested = True
        record = run.bake.provider.publish(
            run.request,
            run.staged.prepared,
            run.statement,
            run.staged.digest,
            run.artifacts,
            attestation=run.signed.digest,
        )
        run.attested = False  # recorded: the envelope stays whatever happens next
        subject = f"{record.ref} on {record.target}"
        details = {
            "inputs_digest": run.staged.digest,
            "invocation": run.bake.invocation,
            "statement": run.signed.digest,
        }
        self.trust.record("build", subject, "ok", details=details)
        self.trust.record(
            "sign",
            subject,
            "ok",
            policy=self.trust.policy(),
            details={"keyid": run.signed.keyid, "key": run.signed.key_name},
        )
        run.result = BuildResult(
            record=record,
            inputs_digest=run.staged.digest,
            log_path=str(run.bake.log_path),
            seconds=round(time.monotonic() - run.clock, 1),
        )

    def _request(self, bake: _Bake, version: str, workdir: Path, parent: ImageRecord | None) -> BakeRequest:
        return BakeRequest(
            self.project,
            bake.eff,
            version,
            workdir,
            parent,
            bake.log_path,
            tools.versions(),
            invocation=bake.invocation,
            owner=Owner.current(bake.invocation, bake.started),
        )

    def _stage(self, request: BakeRequest, provider: Provider) -> _Staged:
        """Everything a render needs, as a bake computes it: the resolved base, the bake key, the
        provenance known before the build and the provider's marks for what the build creates."""
        eff = request.eff
        prepared = provider.prepare(request)
        values = render.variables(self.project, eff, request.version, prepared)
        files = render.input_files(self.project, eff)  # hashed once: the key and the provenance agree
        digest = inputs.bake_key(self.project, eff, values, prepared, request.tools, files)
        skeleton = inputs.statement_skeleton(
            self.project,
            eff,
            version=request.version,
            prepared=prepared,
            digest=digest,
            tools=request.tools,
            git=tools.git_state(self.project.root),
            invocation=request.invocation,
            started=request.owner.started if request.owner else now(),
            builder=kinds.get(eff.kind).builder,
            files=files,
        )
        extra = provider.before_build(request, skeleton)
        return _Staged(prepared=prepared, digest=digest, skeleton=skeleton, marks=extra)

    def _render(self, request: BakeRequest, staged: _Staged, *, out: Path) -> render.Rendered:
        packer_version = request.tools["packer"]
        rendered = render.render(
            self.project,
            request.eff,
            version=request.version,
            packer_version=packer_version,
            out=out,
            prepared=staged.prepared,
            marks=staged.marks,
        )
        if packer.wants_required_plugins(packer_version):
            runner.run(
                packer.init_argv(rendered.directory),
                what="packer init",
                log_path=request.log_path,
                on_line=lambda line: self.reporter.line("packer", line),
            )
        return rendered

    def render_only(self, name: str, target: str, out: Path | None, packer_version: str | None) -> RenderResult:
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
            parent = self._parent(eff, provider)
            taken = [r.version for r in provider.images(target, name)]
            taken += [x.version for x in provider.marked(target, name)]
            version = next_version(eff.image.version, taken)
            out.mkdir(parents=True, exist_ok=True)
            bake = _Bake(eff, provider, invocation, now(), self.ws.builds / f"{name}-{target}-{invocation}.log")
            request = self._request(bake, version, out, parent)
            if packer_version:
                request = replace(request, tools={**request.tools, "packer": packer_version})
            staged = self._stage(request, provider)
            rendered = render.render(
                self.project,
                eff,
                version=version,
                packer_version=request.tools["packer"],
                out=out,
                prepared=staged.prepared,
                marks=staged.marks,
            )
        return RenderResult(
            directory=str(rendered.directory),
            image=name,
            target=target,
            version=version,
            builder=rendered.builder,
            files=sorted(rendered.files),
        )

    def _parent(self, eff: EffectiveImage, provider: Provider) -> ImageRecord | None:
        if eff.image.parent is None:
            return None
        parent = newest(provider.images(eff.target, eff.image.parent))
        if parent is None:
            raise UsageError(
                f"image '{eff.name}' starts from '{eff.image.parent}', which has no version on {eff.target} yet",
                hint=f"bake it first: bakery build {eff.image.parent} --target {eff.target}",
            )
        return parent

    def _packer(
        self,
        directory: Path,
        workdir: Path,
        log_path: Path,
        secrets: dict[str, str],
        observe: Callable[[str], None] | None = None,
    ) -> list[packer.Event]:
        events: list[packer.Event] = []

        def on_line(line: str) -> None:
            if observe is not None:
                observe(line)
            event = packer.parse_line(line)
            if event is None:
                self.reporter.line("packer", line)
                return
            events.append(event)
            text = packer.ui_text(event)
            if text is not None:
                for part in text.splitlines() or [""]:
                    self.reporter.line("packer", part)

        # Secrets travel in Packer's environment, which its ansible provisioner hands on to
        # ansible-playbook: never on a command line or in the rendered directory.
        env = ansible_env(secrets)
        env["PACKER_NO_COLOR"] = "1"
        # Packer leaves inventories and logs in TMPDIR when cancelled: give it one of its own, and a
        # short path, since its plugins listen on unix sockets there (108 characters at most).
        tmp = tempfile.mkdtemp(prefix="bakery-")
        env["TMPDIR"] = tmp
        try:
            runner.run(
                packer.build_argv(directory),
                what="packer build",
                cwd=workdir,
                env=env,
                log_path=log_path,
                on_line=on_line,
                secrets=tuple(secrets.values()),
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return events
