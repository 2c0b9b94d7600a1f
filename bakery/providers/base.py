"""The Provider interface and the registry that picks one by target kind."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bakery.catalog import ImageRecord
from bakery.config import EffectiveImage, Project
from bakery.errors import UsageError
from bakery.progress import Reporter
from bakery.workspace import Workspace

# kind -> module that defines `make(workspace, reporter, clients) -> Provider`; imported on first use
# so `bakery --help` never loads boto3 or google.cloud.
_REGISTRY = {"local": "bakery.providers.local", "aws": "bakery.providers.aws", "gcp": "bakery.providers.gcp"}


@dataclass(frozen=True)
class Prepared:
    """What a provider resolved before rendering: Packer variables and the identity of the base."""

    variables: Mapping[str, Any]
    base: str  # a stable identity of what the build starts from ("sha256:...", "ami-0abc")
    base_dependency: Mapping[str, Any]  # name/uri/digest for provenance
    parent: ImageRecord | None = None


@dataclass(frozen=True)
class BakeRequest:
    project: Project
    eff: EffectiveImage
    version: str
    workdir: Path
    parent: ImageRecord | None
    log_path: Path | None = None  # where the bake's log goes (it outlives the work directory)
    tools: Mapping[str, str] = field(default_factory=dict)  # packer and ansible versions


class Provider(Protocol):
    kind: str

    def bind(self, target: str, spec: Any) -> None:
        """Tell the provider the settings of one of its targets (before images() is asked)."""

    def resolve(self, request: BakeRequest) -> Prepared:
        """What the bake would start from, looked up without side effects (for plan)."""

    def prepare(self, request: BakeRequest) -> Prepared:
        """resolve(), plus what a build needs made first (base disk, build key). Raises BakeryError."""

    def pending(self, target: str, name: str) -> list[ImageRecord]:
        """Versions a bake registered but did not finish recording."""

    def clean_up(self, record: ImageRecord) -> None:
        """Remove a half-recorded version everywhere it exists."""

    def stale_pending(self, record: ImageRecord) -> bool:
        """True when a pending version is old enough that its bake cannot still be running."""

    def before_build(self, request: BakeRequest, skeleton: dict[str, Any]) -> dict[str, Any]:
        """Extra Packer variables that carry provenance into the build (GCP: the description)."""

    def discard(self, request: BakeRequest, artifacts: list[str]) -> None:
        """Remove what Packer made when recording it failed: no half-registered image stays."""

    def publish(
        self,
        request: BakeRequest,
        prepared: Prepared,
        provenance: dict[str, Any],
        inputs_digest: str,
        artifacts: list[str],
    ) -> ImageRecord:
        """Record the built image with its provenance; on failure leave nothing registered."""

    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        """Every recorded version on `target` (of `name`, when given)."""

    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        """The provenance document stored with `record`."""

    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, dict[str, str]]:
        """(name, digest set) of what was built, for the provenance subject."""


ClientFactory = Callable[..., Any]


@functools.cache
def _module(kind: str) -> Any:
    return importlib.import_module(_REGISTRY[kind])


def get_provider(
    kind: str,
    workspace: Workspace,
    reporter: Reporter,
    clients: ClientFactory | None = None,
    targets: Mapping[str, Any] | None = None,
) -> Provider:
    """The provider for a target kind, told about its targets. UsageError lists the valid kinds.

    `clients(service, region_or_project, endpoint)` makes API clients; tests hand in one that
    points at moto or the fake GCE server.
    """
    if kind not in _REGISTRY:
        raise UsageError(f"no provider for target kind '{kind}'; valid kinds: {', '.join(sorted(_REGISTRY))}")
    provider: Provider = _module(kind).make(workspace, reporter, clients)
    for name, spec in (targets or {}).items():
        if spec.kind == kind:
            provider.bind(name, spec)
    return provider


# A version registered but not finished recording for this long is debris of a bake that died.
PENDING_GRACE = timedelta(hours=2)


class CloudProvider:
    """What the AWS and GCP providers share: API clients made once per (region or project,
    endpoint) by the injected factory, their targets' settings, and the rules for versions a bake
    registered but did not finish recording."""

    kind = ""
    spec_type: type = object

    def __init__(self, reporter: Reporter, clients: ClientFactory) -> None:
        self.reporter = reporter
        self._factory = clients
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._resolved: dict[tuple[Any, ...], Any] = {}  # sources looked up once per process
        self.specs: dict[str, Any] = {}

    def bind(self, target: str, spec: Any) -> None:
        assert isinstance(spec, self.spec_type)
        self.specs[target] = spec

    def client(self, service: str, where: str, endpoint: str | None) -> Any:
        key = (service, where, endpoint)
        if key not in self._clients:
            self._clients[key] = self._factory(service, where, endpoint)
        return self._clients[key]

    def images(self, target: str, name: str | None = None, *, include_pending: bool = False) -> list[ImageRecord]:
        raise NotImplementedError

    def pending(self, target: str, name: str) -> list[ImageRecord]:
        return [r for r in self.images(target, name, include_pending=True) if r.extra.get("state") != "complete"]

    def stale_pending(self, record: ImageRecord) -> bool:
        registered = str(record.extra.get("registered", "")).replace("Z", "+00:00")
        try:
            born = datetime.fromisoformat(registered)
        except ValueError:
            return True  # no readable registration time: nothing can still be writing it
        return datetime.now(UTC) - born > PENDING_GRACE
