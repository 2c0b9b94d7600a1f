"""The gcp kind's blocks of images.yaml (GCE images, managed instance groups moved by the MIG
updater); its provider and group driver live in bakery/providers/gcp/ and bakery/groups/gcp/, its
cloud limits in bakery.config.limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bakery.config import limits
from bakery.config.kinds import GroupSettings, Kind, TargetSpec
from bakery.config.model_base import ENDPOINT_PATTERN, Bool, Int, Model, _given, exactly_one
from bakery.config.models import SurgeValue, count_or_percent


class GcpSource(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [exactly_one("image", "family"), {"if": _given("family"), "then": _given("project")}]
        }
    )

    image: str | None = None
    family: str | None = None
    project: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> GcpSource:
        if (self.image is None) == (self.family is None):
            raise ValueError("give exactly one of 'image' or 'family' (with 'project')")
        if self.family is not None and self.project is None:
            raise ValueError("'family' needs 'project' (the project that publishes the family)")
        return self


class GcpTarget(TargetSpec):
    kind: Literal["gcp"]
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    zone: str = Field(pattern=r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
    machine_type: str = "e2-small"
    network: str | None = None
    subnetwork: str | None = None
    service_account_email: str | None = None
    disk_size: Int = Field(10, ge=10, le=65536)
    ssh_username: str = "packer"
    use_internal_ip: Bool = False  # reach the build VM on its internal IP (from inside the VPC)
    network_tags: tuple[str, ...] = ()  # firewall rules apply by tag
    endpoint: str | None = Field(None, pattern=ENDPOINT_PATTERN)


class GcpGroup(GroupSettings):
    """A managed instance group moved by the MIG updater: zonal (`zone`) or regional (`region`)."""

    model_config = ConfigDict(json_schema_extra=exactly_one("zone", "region"))
    mig: str = Field(pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    zone: str | None = Field(None, pattern=r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
    region: str | None = Field(None, pattern=r"^[a-z]+-[a-z]+[0-9]+$")
    max_surge: SurgeValue = 1
    max_unavailable: SurgeValue = 0
    health_check: str | None = None  # the autohealing health check whose instanceHealth counts
    backend_service: str | None = None  # blue-green: the backend service both groups join

    def gates(self) -> list[str]:
        return [f"MIG instanceHealth ({self.health_check})"] if self.health_check else []

    @field_validator("max_surge", "max_unavailable", mode="before")
    @classmethod
    def _surge(cls, value: Any) -> Any:
        return count_or_percent(value, minimum=0, what="max_surge")

    @model_validator(mode="after")
    def _where(self) -> GcpGroup:
        if (self.zone is None) == (self.region is None):
            raise PydanticCustomError("zone_or_region", "give exactly one of zone (zonal group) or region (regional)")
        return self


KIND = Kind(
    name="gcp",
    target=GcpTarget,
    source=GcpSource,
    group=GcpGroup,
    builder="googlecompute",
    plugin=("github.com/hashicorp/googlecompute", ">= 1.1.4"),
    provider="bakery.providers.gcp.provider",
    driver="bakery.groups.gcp.driver",
    launcher="bakery.imagetest.gcp",
    group_example="gcp: {mig: NAME, zone: ZONE} (or region: REGION)",
    limits=limits.gcp_problems,
)
