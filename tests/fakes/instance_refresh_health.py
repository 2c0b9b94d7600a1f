"""Target health as ELB reports it while instances warm up, for moto's target groups (moto calls
every registered, running instance healthy at once): `initial` for the refresh knobs'
`health_warmup_seconds` after registration, then `healthy`, or `unhealthy` for an instance that
runs one of `unhealthy_amis` (a broken image) or is one of `unhealthy_instances`.

`install()` runs in the moto server process (tests/fakes/moto_ebs.py).
"""

from __future__ import annotations

import time
from typing import Any

from tests.fakes import instance_refresh


def verdict(registered: float, now: float, image_id: str, instance_id: str) -> tuple[str, str, str] | None:
    """(state, reason, description) the knobs make a healthy target report; None: healthy."""
    knobs = instance_refresh.KNOBS
    if now - registered < knobs.health_warmup_seconds:
        return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
    if image_id in knobs.unhealthy_amis or instance_id in knobs.unhealthy_instances:
        return "unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]"
    return None


def install() -> None:
    """Patch moto's FakeTargetGroup: remember when each target was registered, and answer
    describe_target_health with `verdict` for targets moto would call healthy."""
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    original_register = FakeTargetGroup.register
    original_health = FakeTargetGroup.health_for

    def register(self: Any, targets: list[dict[str, Any]]) -> None:
        fresh = [t["Id"] for t in targets if t["Id"] not in self.targets]
        original_register(self, targets)
        since = self.__dict__.setdefault("bakery_registered", {})
        for target in fresh:
            since[target] = time.time()

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        found = original_health(self, target, ec2_backend)
        if found.status != "healthy":
            return found
        instance = ec2_backend.get_instance_by_id(target["Id"])
        registered = self.__dict__.get("bakery_registered", {}).get(target["Id"], 0.0)
        answer = verdict(registered, time.time(), getattr(instance, "image_id", ""), target["Id"])
        if answer is None:
            return found
        return FakeHealthStatus(found.instance_id, found.port, found.health_check_port, *answer)

    FakeTargetGroup.register = register  # type: ignore[method-assign]
    FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]
