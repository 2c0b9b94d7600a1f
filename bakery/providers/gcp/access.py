"""What the GCP provider's trust helpers (trust.py) need of the provider: a Compute client per
target, its targets' settings, and how an image's stamp is read. A Protocol, so that the helpers
depend on this small shape and the provider on them, never in a circle."""

from __future__ import annotations

from typing import Any, Protocol

from bakery.config.targets.gcp import GcpTarget
from bakery.providers.gcp.api import Compute


class GcpAccess(Protocol):
    specs: dict[str, Any]  # target name -> GcpTarget, bound before use

    def compute(self, spec: GcpTarget) -> Compute: ...

    def read_stamp(self, image: Any) -> tuple[dict[str, str], dict[str, str]]: ...

    def client(self, service: str, where: str, endpoint: str | None) -> Any: ...

    def endpoint(self, spec: GcpTarget) -> str | None: ...
