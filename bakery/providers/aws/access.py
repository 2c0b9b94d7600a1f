"""What the AWS provider's helpers (bakes.py, trust.py) need of the provider: EC2 clients per
region, its targets' settings, and the versions its listings saw. A Protocol, so that the helpers
depend on this small shape and the provider on them, never in a circle."""

from __future__ import annotations

from typing import Any, Protocol

from bakery.config.targets.aws import AwsTarget


class AwsAccess(Protocol):
    specs: dict[str, Any]  # target name -> AwsTarget, bound before use
    versions_seen: dict[str, str]  # invocation -> version, once its AMI was seen

    def ec2(self, spec: AwsTarget, region: str | None = None) -> Any: ...

    def regions(self, spec: AwsTarget) -> tuple[str, ...]: ...

    def paginate(self, ec2: Any, **kwargs: Any) -> list[dict[str, Any]]: ...

    def client(self, service: str, where: str, endpoint: str | None) -> Any: ...

    def endpoint(self, spec: AwsTarget) -> str | None: ...
