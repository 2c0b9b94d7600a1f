"""The Provider interface and the registry that picks one by target kind."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from bakery.config import kinds
from bakery.config.kinds import TargetSpec
from bakery.config.load import EffectiveImage, Project
from bakery.config.models import Prune
from bakery.core.catalog import ImageRecord
from bakery.core.debris import Leftover, Owner
from bakery.core.provenance import Dependency
from bakery.errors import BuildError, UsageError
from bakery.progress import Reporter
from bakery.steps import Step
from bakery.workspace import Workspace

BAKE_KEY = "bake_key"  # field metadata: False keeps a Packer variable out of the bake key


def per_bake(**kwargs: Any) -> Any:
    """A Packer variable that differs on every bake, or on every machine (a path, the bake's
    mark, an endpoint): a field that stays out of the bake key. Takes dataclasses.field's arguments."""
    return field(metadata={BAKE_KEY: False}, **kwargs)


def _plain(value: Any) -> Any:
    """A field's value as Packer variables are written: tuples as lists, mappings as dicts."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, kw_only=True)
class PackerVariables:
    """Packer variables as typed fields, in the order they are written. Every field enters the bake
    key unless it is declared with `per_bake()`; a field left None is not written at all."""

    def items(self) -> list[tuple[str, Any, bool]]:
        """(name, value, enters the bake key) of every field that is set."""
        return [
            (f.name, _plain(getattr(self, f.name)), bool(f.metadata.get(BAKE_KEY, True)))
            for f in fields(self)
            if getattr(self, f.name) is not None
        ]

    def as_dict(self) -> dict[str, Any]:
        return {name: value for name, value, _ in self.items()}


@dataclass(frozen=True)
class Prepared:
    """What a provider resolved before rendering: the identity of the base, what provenance says
    of it, and (in each kind's subclass) what its Packer variables need (a resolved AMI, paths)."""

    base: str  # a stable identity of what the build starts from ("sha256:...", "ami-0abc")
    base_dependency: Dependency | None  # the base as a dependency of the provenance (None: the parent is)
    parent: ImageRecord | None = None


@dataclass(frozen=True, kw_only=True)
class BuildMarks:
    """What before_build adds to a bake's Packer variables, outside the bake key: the bake's mark
    on what it creates, and provenance known before the build. Each kind subclasses it."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


class VariablesOf(Protocol):
    """A kind's Packer variables: `packer_variables` in its provider module. `prepared` is None
    (nothing resolved: plan, render) or what a provider resolved, possibly of another kind's
    class (a test's stand-in provider): then only the base is known. Raises ConfigError."""

    def __call__(
        self, eff: EffectiveImage, spec: TargetSpec, version: str, prepared: Prepared | None, marks: BuildMarks | None
    ) -> PackerVariables: ...


@dataclass(frozen=True)
class Preview:
    """What an offline render uses in place of what a provider resolves before a build: stand-ins
    (paths, a key) and marks that say "preview" on whatever a build of it would make."""

    prepared: Prepared | None = None
    marks: BuildMarks | None = None


class PreviewOf(Protocol):
    """A kind's Preview for an offline render: `preview` in its provider module. Looks nothing up
    and makes no client; may write into `out` (the render's directory) what `packer validate`
    reads (a key). Raises ConfigError."""

    def __call__(self, eff: EffectiveImage, spec: TargetSpec, out: Path) -> Preview: ...


@dataclass(frozen=True)
class BakeRequest:
    project: Project
    eff: EffectiveImage
    version: str
    workdir: Path
    parent: ImageRecord | None
    log_path: Path | None = None  # where the bake's log goes (it outlives the work directory)
    tools: Mapping[str, str] = field(default_factory=dict)  # packer and ansible versions
    invocation: str = ""  # this bake's id: the mark on everything it creates
    owner: Owner | None = None  # this bake's process, written on what it creates


@dataclass(frozen=True)
class Claim:
    """What one location of an image says about itself (an AMI or one of its snapshots in one
    region, a GCP image, a local catalog entry): the stamp and provenance it carries, each stamp
    field with the tag or label name it was read from, so a mismatch names the tag."""

    location: str  # "ami-0abc in eu-west-1", "snap-0def in eu-west-1", "image web-1-0-2 in proj"
    stamp: Mapping[str, str]  # stamp field -> value as read ("commit" -> "3f2a...")
    names: Mapping[str, str]  # stamp field -> where it was read ("commit" -> "tag bakery:commit")
    attestation: str | None  # the attestation digest it carries ("sha256:..."), None if none
    document: Mapping[str, Any] | None = None  # the provenance document it carries, if any
    problems: tuple[str, ...] = ()  # what it should carry and does not ("tag bakery:provenance-03 does not decode")


@dataclass(frozen=True)
class Usage:
    """What refers to one image in its cloud, read live: launch template versions (an AMI id or an
    SSM parameter), launch configurations, EC2 and Spot Fleets, instances, instance templates (one
    line each; "could not tell ..." for a kind that cannot be read), and the accounts or projects
    it (or a snapshot of it) is shared with."""

    uses: tuple[str, ...] = ()
    shared_with: tuple[str, ...] = ()


# Where a cloud bake's Packer step puts the build VM's package database (templates' file
# provisioners with direction = "download"), in the rendered directory.
DOWNLOADED_STATUS = "sbom-dpkg-status"
DOWNLOADED_OS_RELEASE = "sbom-os-release"


@dataclass(frozen=True)
class PackageDb:
    """The built system's package database, read before the image is recorded (for its SBOM):
    the bytes of /var/lib/dpkg/status and of os-release, and where they were read; or, with
    `missing`, why a target has none (an API-only target builds no system to read)."""

    status: bytes = b""
    os_release: bytes = b""
    read_from: str = ""
    missing: str | None = None


class Provider(Protocol):
    """What bakes and stores images on one kind of target. Methods raise BakeryError subclasses
    (ProviderError for cloud refusals and unreachable endpoints), never an SDK's own exception."""

    kind: str

    def bind(self, target: str, spec: TargetSpec) -> None:
        """Tell the provider the settings of one of its targets (before images() is asked)."""

    def resolve(self, request: BakeRequest) -> Prepared:
        """What the bake would start from, looked up without side effects (for plan and render)."""

    def prepare(self, request: BakeRequest) -> Prepared:
        """resolve(), plus what a build needs made first (base disk, build key). Raises BakeryError."""

    def before_build(self, request: BakeRequest, skeleton: dict[str, Any]) -> BuildMarks:
        """Extra Packer variables outside the bake key: the mark that every image this bake creates
        carries from its creation (request.invocation), and provenance known before the build."""

    def marked(
        self, target: str, name: str, *, version: str | None = None, invocation: str | None = None
    ) -> list[Leftover]:
        """Every image on `target` that carries a bakery bake's mark for image `name` (optionally
        one version, one invocation), in any state, in every region or project of the target: one
        Leftover per bake (its regional copies together). Images without bakery's mark are never
        returned."""

    def heartbeat(self, target: str, name: str, owner: Owner) -> None:
        """Write the owner and the current time on every image `owner.invocation` has created so far."""

    def remove(self, leftover: Leftover) -> list[str]:
        """Delete every location of `leftover` with its snapshots; what is already gone is skipped.
        Returns what was removed, one human-readable line each ("ami-0abc in eu-west-1, snap-1")."""

    def publish(
        self,
        request: BakeRequest,
        prepared: Prepared,
        provenance: dict[str, Any],
        inputs_digest: str,
        artifacts: list[str],
        attestation: str | None = None,
    ) -> ImageRecord:
        """Record the built image with its provenance (state complete last), with the digest of
        its signed attestation (tag bakery:attestation, label bakery-attestation, catalog entry)."""

    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        """Every completely recorded version on `target` (of `name`, when given); one record per
        image, so two images claiming one version are two records."""

    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        """The provenance document stored with `record`."""

    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, dict[str, str]]:
        """(name, digest set) of what was built, for the provenance subject."""

    def more_subjects(self, request: BakeRequest) -> list[tuple[str, dict[str, str]]]:
        """What else the bake produced that boots with the image and must be signed with it (a
        local image's kernel and initrd), as (name, digest set); descriptor() gives their digests
        now under "files" by the same names. [] for cloud images."""

    def descriptor(self, record: ImageRecord) -> dict[str, Any]:
        """What exists of `record` now, read live, as plain JSON values: the subject of its signed
        provenance is the sha256 of this in canonical JSON (a local image: its disk's sha256, the
        disk hashed again). The same call at bake time and at verify time gives the same value
        while nothing changed. Raises ProviderError if the image (or a part of it) is gone."""

    def claims(self, record: ImageRecord) -> list[Claim]:
        """What every location of `record` says about itself (tags, labels, the catalog entry)."""

    def mark_revoked(self, record: ImageRecord, *, at: str, reason: str, replacement: ImageRecord | None) -> str:
        """Mark `record` as revoked on the image itself (GCP deprecation with its replacement; AWS
        deprecation where the endpoint supports it, tags otherwise; local: the catalog entry).
        Returns what was done, one line. Idempotent."""

    def unmark_revoked(self, record: ImageRecord) -> str:
        """Undo mark_revoked; what was done, one line. Idempotent."""

    def usage(self, records: Sequence[ImageRecord]) -> list[Usage]:
        """What uses each of `records` now, in every region or project it lives in (bakery prune
        keeps it), in their order; what they share is read once. A kind of use that cannot be
        read is a use that says so ("could not tell ..."), never none."""

    def prune_steps(
        self, record: ImageRecord, *, replacement: ImageRecord | None, now: str, policy: Prune
    ) -> Sequence[Step]:
        """The steps that remove `record` with everything of it (AWS: deprecate, deregister every
        copy, delete their snapshots no other AMI uses; local: the catalog entry and its files).
        Each saves what it found in the journal first, so a rerun after an interruption finishes
        the removal. A provider with a deprecation ladder (GCP) climbs it at the ages of `policy`
        and may stop at a rung: the journal's value "rung" then says where the image stands, and
        "removed" is absent. A step sets the journal's value "destroying" before it removes the
        first part of the image: a prune abandoned after that cannot give the image back."""

    def prune_next(self, record: ImageRecord, *, replacement: ImageRecord | None, now: str) -> str | None:
        """What a prune would do to `record` next, for the dry run ("deprecate (DEPRECATED,
        replacement web-1-0-9)", "obsolete", "delete" on GCP's ladder); None: remove it whole."""

    def prune_restore(self, record: ImageRecord, *, act: bool) -> str | None:
        """Put back to ACTIVE an image a prune's ladder deprecated and that is kept now (with `act`
        False only say it would): the rung it was on ("deprecated image p/web-1-0-5"), or None
        when the image stands on no rung of a prune (a revocation's deprecation is not one)."""

    def prune_abandon(self, record: ImageRecord) -> list[str]:
        """Undo what the first steps of a prune marked on `record` (AWS: the `bakery:pruning`
        tag), for an abandoned prune that removed nothing; what was undone, one line each."""

    def package_db(self, request: BakeRequest) -> PackageDb:
        """The package database of what was built (a local disk read without booting it; what a
        cloud bake's Packer step downloaded from its build VM), or PackageDb(missing=why). Raises
        BuildError when a build that should have left one did not."""

    def scan(self, request: BakeRequest, secrets: Mapping[str, str]) -> None:
        """Raise BuildError naming a secret (name -> value) whose value is found in what was built,
        where the provider can read it; called before anything is recorded."""


ClientFactory = Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])


def guarded_by(errors: Callable[[str], AbstractContextManager[None]]) -> Callable[[str], Callable[[F], F]]:
    """A decorator factory: `@guarded("what it does")` runs a provider method inside
    `errors(what)`, the context manager that turns one SDK's errors into a one-line ProviderError."""

    def guarded(what: str) -> Callable[[F], F]:
        def wrap(method: F) -> F:
            @functools.wraps(method)
            def inner(*args: Any, **kwargs: Any) -> Any:
                with errors(what):
                    return method(*args, **kwargs)

            return inner  # type: ignore[return-value]

        return wrap

    return guarded


def get_provider(
    kind: str,
    workspace: Workspace,
    reporter: Reporter,
    clients: ClientFactory | None = None,
    targets: Mapping[str, TargetSpec] | None = None,
) -> Provider:
    """The provider for a target kind, told about its targets. UsageError lists the valid kinds.

    `clients(service, region_or_project, endpoint)` makes API clients; tests hand in one that
    points at moto or the fake GCE server.
    """
    # Each kind names the module that defines `make(workspace, reporter, clients) -> Provider`,
    # imported on first use so `bakery --help` never loads boto3 or google.cloud.
    if not kinds.known(kind):
        raise UsageError(f"no provider for target kind '{kind}'; valid kinds: {', '.join(sorted(kinds.names()))}")
    provider: Provider = kinds.get(kind).module("provider").make(workspace, reporter, clients)
    for name, spec in (targets or {}).items():
        if spec.kind == kind:
            provider.bind(name, spec)
    return provider


def packer_variables(kind: str) -> VariablesOf:
    """The function that gives a kind's Packer variables (its provider module's `packer_variables`).
    Raises UsageError for a kind nobody registered."""
    if not kinds.known(kind):
        raise UsageError(f"no provider for target kind '{kind}'; valid kinds: {', '.join(sorted(kinds.names()))}")
    found: VariablesOf | None = getattr(kinds.get(kind).module("provider"), "packer_variables", None)
    if found is None:
        raise UsageError(f"the provider of target kind '{kind}' ({kinds.get(kind).provider}) has no packer_variables")
    return found


def preview_of(kind: str) -> PreviewOf | None:
    """The kind's Preview for an offline render (its provider module's `preview`), or None when
    its Packer variables need nothing more than images.yaml declares. Raises UsageError for a kind
    nobody registered."""
    if not kinds.known(kind):
        raise UsageError(f"no provider for target kind '{kind}'; valid kinds: {', '.join(sorted(kinds.names()))}")
    found: PreviewOf | None = getattr(kinds.get(kind).module("provider"), "preview", None)
    return found


T = TypeVar("T", bound=TargetSpec)


class CloudProvider(Generic[T]):
    """What the AWS and GCP providers share: API clients made once per (region or project,
    endpoint) by the injected factory, and their targets' settings (of the kind's model T)."""

    kind = ""
    spec_type: type[T]

    def __init__(self, reporter: Reporter, clients: ClientFactory) -> None:
        self.reporter = reporter
        self._factory = clients
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._resolved: dict[tuple[Any, ...], Any] = {}  # sources looked up once per process
        self.specs: dict[str, T] = {}

    def bind(self, target: str, spec: TargetSpec) -> None:
        if not isinstance(spec, self.spec_type):
            raise UsageError(f"target '{target}' is {getattr(spec, 'kind', '?')}, not {self.kind}")
        self.specs[target] = spec

    def client(self, service: str, where: str, endpoint: str | None) -> Any:
        key = (service, where, endpoint)
        if key not in self._clients:
            self._clients[key] = self._factory(service, where, endpoint)
        return self._clients[key]

    def prune_abandon(self, record: ImageRecord) -> list[str]:
        return []  # GCP: every rung is whole; a kept image on one is restored to ACTIVE by the prune

    def more_subjects(self, request: BakeRequest) -> list[tuple[str, dict[str, str]]]:
        return []  # an AMI or a GCP image is the whole of what boots

    def package_db(self, request: BakeRequest) -> PackageDb:
        """What the template's file provisioners downloaded from the build VM before the image
        was made; none on a target that provisions nothing (communicator: none)."""
        target = request.eff.target
        if not request.project.config.targets[target].provisions():
            return PackageDb(missing=f"target '{target}' has communicator: none: no build VM ran to read packages from")
        rendered = request.workdir / "packer"
        status, os_release = rendered / DOWNLOADED_STATUS, rendered / DOWNLOADED_OS_RELEASE
        if not status.is_file():
            raise BuildError(
                f"Packer finished without downloading the build VM's package database ({status.name})",
                log_path=str(request.log_path or ""),
            )
        read_os = os_release.read_bytes() if os_release.is_file() else b""
        return PackageDb(status=status.read_bytes(), os_release=read_os, read_from=f"{target}'s build VM (Packer)")

    def scan(self, request: BakeRequest, secrets: Mapping[str, str]) -> None:
        """Nothing to search: an AMI or a GCP image cannot be read from this machine without
        booting or exporting it. Its secrets still reached Ansible only through process
        environments, never a command line, a file or a log here."""
