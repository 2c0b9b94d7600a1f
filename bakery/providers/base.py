"""The Provider interface and the registry that picks one by target kind."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bakery.catalog import ImageRecord
from bakery.config import EffectiveImage, Project
from bakery.errors import UsageError
from bakery.progress import Reporter
from bakery.workspace import Workspace

# kind -> module that defines `make(workspace, reporter, clients) -> Provider`; imported on first use
# so `bakery --help` never loads boto3 or google.cloud.
_REGISTRY = {"local": "bakery.providers.local"}


@dataclass(frozen=True)
class Prepared:
    """What a provider resolved before rendering: Packer variables and the identity of the base."""

    variables: Mapping[str, Any]
    base: str  # a stable identity of what the build starts from ("sha256:...", "ami-0abc")
    base_dependency: Mapping[str, Any]  # name/uri/digest for provenance
    parent: ImageRecord | None = None
    secrets: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class BakeRequest:
    project: Project
    eff: EffectiveImage
    version: str
    workdir: Path
    parent: ImageRecord | None


class Provider(Protocol):
    kind: str

    def prepare(self, request: BakeRequest) -> Prepared:
        """Resolve the source (base disk, AMI, image) to something concrete. Raises BakeryError."""

    def publish(self, request: BakeRequest, prepared: Prepared, provenance: dict[str, Any],
                inputs_digest: str, artifacts: list[str]) -> ImageRecord:
        """Record the built image with its provenance; on failure leave nothing registered."""

    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        """Every recorded version on `target` (of `name`, when given)."""

    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        """The provenance document stored with `record`."""

    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, str]:
        """(name, sha256) of what was built, for the provenance subject."""


ClientFactory = Callable[..., Any]


@functools.cache
def _module(kind: str) -> Any:
    return importlib.import_module(_REGISTRY[kind])


def available_kinds() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_provider(kind: str, workspace: Workspace, reporter: Reporter,
                 clients: ClientFactory | None = None) -> Provider:
    """The provider for a target kind. UsageError lists the valid kinds."""
    if kind not in _REGISTRY:
        raise UsageError(f"no provider for target kind '{kind}'; valid kinds: {', '.join(sorted(_REGISTRY))}")
    provider: Provider = _module(kind).make(workspace, reporter, clients)
    return provider
