"""The bake: resolve -> render -> build -> verify -> record, for one image on one target.

Nothing is registered until every earlier step succeeded; a failure or an interrupt removes the
work directory (Packer's own cleanup has already removed its VM) and keeps only the log.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bakery import inputs, packer, provenance, render, runner, tools
from bakery.catalog import ImageRecord, newest, next_version
from bakery.config import EffectiveImage, Project
from bakery.errors import ProviderError, UsageError
from bakery.models import BUILDERS
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, ClientFactory, Provider, get_provider
from bakery.providers.local_store import exclusive, remove_tree
from bakery.workspace import Workspace


@dataclass(frozen=True)
class BuildResult:
    record: ImageRecord
    inputs_digest: str
    log_path: str | None
    seconds: float
    skipped: bool = False


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


def secret_values(eff: EffectiveImage) -> dict[str, str]:
    """Secrets named in images.yaml, read from the environment now; UsageError if one is unset."""
    missing = [env for env in eff.image.secrets.values() if env not in os.environ]
    if missing:
        raise UsageError(
            f"image '{eff.name}' needs the environment variable(s) {', '.join(sorted(missing))}",
            hint="secrets are injected at build time and never written to images.yaml or the image",
        )
    return {var: os.environ[env] for var, env in eff.image.secrets.items()}


class Baker:
    def __init__(
        self,
        project: Project,
        workspace: Workspace,
        reporter: Reporter,
        provider: Provider | None = None,
        clients: ClientFactory | None = None,
    ) -> None:
        self.project = project
        self.clients = clients
        self.ws = workspace
        self.reporter = reporter
        self._provider = provider

    def provider(self, kind: str) -> Provider:
        return self._provider or get_provider(
            kind, self.ws, self.reporter, self.clients, targets=self.project.config.targets
        )

    def bake(self, name: str, target: str, *, force: bool = False) -> BuildResult:
        """Bake `name` on `target`, unless an image with the same inputs digest exists (then skip,
        unless `force`). Raises BakeryError (BuildError, Interrupted) with nothing recorded."""
        eff = self.project.effective(name, target)
        secrets = secret_values(eff)
        self.ws.ensure()
        provider = self.provider(eff.kind)
        invocation = uuid.uuid4().hex[:12]
        log_path = self.ws.builds / f"{name}-{target}-{invocation}.log"
        lock = self.ws.locks / f"{target}--{name}.lock"

        def waiting(holder: str) -> None:
            self.reporter.note(f"another bake of {name} on {target} is running (pid {holder}); waiting for it")

        with exclusive(lock, waiting), runner.signal_guard():
            return self._bake_locked(eff, provider, secrets, invocation, log_path, force=force)

    def _bake_locked(
        self,
        eff: EffectiveImage,
        provider: Provider,
        secrets: dict[str, str],
        invocation: str,
        log_path: Path,
        *,
        force: bool,
    ) -> BuildResult:
        started_clock, started = time.monotonic(), now()
        self.reporter.phase("resolve", f"{eff.name} on {eff.target}")
        parent = self._parent(eff, provider)
        existing = provider.images(eff.target, eff.name)
        pending = self._recover(eff, provider)
        version = next_version(eff.image.version, [r.version for r in [*existing, *pending]])
        workdir = self.ws.builds / f"{eff.name}-{eff.target}-{invocation}"
        workdir.mkdir(parents=True)
        try:
            versions = tools.versions()
            request = BakeRequest(self.project, eff, version, workdir, parent, log_path, versions)
            prepared = provider.prepare(request)
            values = render.variables(self.project, eff, version, prepared.variables)
            files = render.input_files(self.project, eff)  # hashed once: the key and the provenance agree
            digest = inputs.bake_key(self.project, eff, values, prepared, versions, files)
            same = [r for r in existing if r.inputs_digest == digest]
            if same and not force:
                shutil.rmtree(workdir, ignore_errors=True)
                self.reporter.note(
                    f"{eff.name} on {eff.target} is up to date: {same[-1].ref} has the same "
                    "inputs digest (use --force to bake anyway)"
                )
                return BuildResult(record=same[-1], inputs_digest=digest, log_path=None, seconds=0.0, skipped=True)
            skeleton = inputs.statement_skeleton(
                self.project,
                eff,
                version=version,
                prepared=prepared,
                digest=digest,
                tools=versions,
                git=tools.git_state(self.project.root),
                invocation=invocation,
                started=started,
                builder=BUILDERS[eff.kind],
                files=files,
            )
            extra = provider.before_build(request, skeleton)
            self.reporter.phase("render", f"{eff.name} {version} for Packer {versions['packer']}")
            rendered = render.render(
                self.project,
                eff,
                version=version,
                packer_version=versions["packer"],
                out=workdir / "packer",
                resolved={**prepared.variables, **extra},
            )
            if render.wants_required_plugins(versions["packer"]):
                runner.run(
                    packer.init_argv(rendered.directory),
                    what="packer init",
                    log_path=log_path,
                    on_line=lambda line: self.reporter.line("packer", line),
                )
            self.reporter.phase("build", f"packer build (log: {log_path})")
            events = self._packer(rendered.directory, workdir, log_path, secrets)
            self.reporter.phase("verify", "checking what Packer produced")
            artifacts = packer.artifact_ids(events)
            try:
                subject_name, subject_digest = provider.subject(request, artifacts)
                statement = provenance.finalize(
                    skeleton, subject_name=subject_name, subject_digest=subject_digest, finished=now()
                )
                self.reporter.phase("record", f"{eff.name}@{version} into the {eff.target} catalog")
                record = provider.publish(request, prepared, statement, digest, artifacts)
            except BaseException:
                # Packer made the image but it could not be recorded: remove it rather than leave a
                # half-registered version that is shared, or newest in its family, without provenance.
                self.reporter.note(f"recording failed; removing what Packer made ({', '.join(artifacts) or 'nothing'})")
                provider.discard(request, artifacts)
                raise
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        shutil.rmtree(workdir, ignore_errors=True)  # holds the build key; the image is recorded
        return BuildResult(
            record=record,
            inputs_digest=digest,
            log_path=str(log_path),
            seconds=round(time.monotonic() - started_clock, 1),
        )

    def _recover(self, eff: EffectiveImage, provider: Provider) -> list[ImageRecord]:
        """Versions an earlier bake registered but did not finish recording.

        An old one is cleaned up (its bake died); a recent one may be a bake still running on
        another machine, so this bake stops and says so rather than making a second image.
        Returns them all, so their version numbers are not handed out again by this bake.
        """
        pending = provider.pending(eff.target, eff.name)
        for record in pending:
            if not provider.stale_pending(record):
                raise ProviderError(
                    f"another bake of {record.ref} on {eff.target} is under way "
                    f"(invocation {record.extra.get('invocation', '?')}, started {record.created})",
                    hint="wait for it to finish; a bake that died is cleaned up by the next one after 2 hours",
                )
            self.reporter.note(
                f"cleaning up {record.ref} on {eff.target}, left half-recorded by an earlier bake "
                f"({', '.join(record.locations)})"
            )
            provider.clean_up(record)
        return pending

    def render_only(self, name: str, target: str, out: Path | None, packer_version: str | None) -> RenderResult:
        """Resolve and render without building: `packer build OUT` then runs the bake by hand.

        Without `out`, renders into .bakery/render/IMAGE-TARGET, replacing an earlier render there."""
        eff = self.project.effective(name, target)
        self.ws.ensure()
        if out is None:
            out = self.ws.root / "render" / f"{name}-{target}"
            remove_tree(out)
        variables: dict[str, Any] = {}
        version = next_version(eff.image.version, [])
        if eff.kind == "local":
            # The base disk, the build key and the boot files must exist for `packer build OUT`.
            provider = self.provider(eff.kind)
            version = next_version(eff.image.version, [r.version for r in provider.images(target, name)])
            out.mkdir(parents=True, exist_ok=True)
            parent = self._parent(eff, provider)
            variables = dict(provider.prepare(BakeRequest(self.project, eff, version, out, parent)).variables)
        # Cloud sources render as declared (an id, or a filter Packer resolves): no cloud call here.
        with runner.signal_guard():
            rendered = render.render(
                self.project,
                eff,
                version=version,
                packer_version=packer_version or tools.packer_version(),
                out=out,
                resolved=variables,
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

    def _packer(self, directory: Path, workdir: Path, log_path: Path, secrets: dict[str, str]) -> list[packer.Event]:
        events: list[packer.Event] = []

        def on_line(line: str) -> None:
            event = packer.parse_line(line)
            if event is None:
                self.reporter.line("packer", line)
                return
            events.append(event)
            text = packer.ui_text(event)
            if text is not None:
                for part in text.splitlines() or [""]:
                    self.reporter.line("packer", part)

        env: dict[str, str] = {}
        if secrets:
            env["PKR_VAR_ansible_secret_vars"] = json.dumps({**secrets, "bakery_secrets_injected": True})
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
