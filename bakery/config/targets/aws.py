"""The aws kind's blocks of images.yaml (AMIs, Auto Scaling groups moved by instance refresh);
its provider and group driver live in bakery/providers/aws/ and bakery/groups/aws/, its cloud
limits in bakery.config.limits."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from bakery.config import limits
from bakery.config.kinds import GroupSettings, Kind, TargetSpec
from bakery.config.model_base import ENDPOINT_PATTERN, REGION_PATTERN, Bool, Int, Model, exactly_one


class AmiFilter(Model):
    owners: tuple[str, ...] = Field(min_length=1)
    name: str = Field(min_length=1)
    most_recent: Bool = True


class AwsSource(Model):
    model_config = ConfigDict(json_schema_extra=exactly_one("ami", "filter"))

    ami: str | None = Field(None, pattern=r"^ami-[0-9a-f]{8,17}$")
    filter: AmiFilter | None = None

    @model_validator(mode="after")
    def _one_of(self) -> AwsSource:
        if (self.ami is None) == (self.filter is None):
            raise ValueError("give exactly one of 'ami' (an AMI id) or 'filter' {owners, name, most_recent}")
        return self


class AwsTarget(TargetSpec):
    kind: Literal["aws"]
    region: str = Field(pattern=REGION_PATTERN)
    instance_type: str = "t3.small"
    subnet_id: str | None = None
    vpc_id: str | None = None
    security_group_ids: tuple[str, ...] = ()
    iam_instance_profile: str | None = None
    encrypted: Bool = True
    kms_key_id: str | None = None
    volume_size: Int = Field(8, ge=1, le=16384)
    ssh_username: str = "admin"
    # How Packer reaches the build instance: a public IP, a private one (from inside the VPC), or
    # through SSM Session Manager (no inbound port at all).
    ssh_interface: Literal["public_ip", "private_ip", "public_dns", "private_dns", "session_manager"] = "public_ip"
    copy_to: tuple[Annotated[str, Field(pattern=REGION_PATTERN)], ...] = ()
    share_with: tuple[Annotated[str, Field(pattern=r"^[0-9]{12}$")], ...] = ()
    endpoint: str | None = Field(None, pattern=ENDPOINT_PATTERN)
    # 'none': register the AMI without running provisioners (API-level tests against moto).
    communicator: Literal["ssh", "none"] = "ssh"

    def provisions(self) -> bool:
        return self.communicator != "none"


class AwsGroup(GroupSettings):
    """An Auto Scaling group moved by instance refresh."""

    asg: str = Field(min_length=1, max_length=255)
    launch_template: str = Field(min_length=1, max_length=128)  # its name (or lt-... id)
    region: str | None = Field(None, pattern=REGION_PATTERN)  # the target's region unless given
    instance_warmup: Int = Field(60, ge=0)
    min_healthy_percentage: Int | None = Field(None, ge=0, le=100)
    max_healthy_percentage: Int | None = Field(None, ge=100, le=200)
    alarms: tuple[Annotated[str, Field(min_length=1, max_length=255)], ...] = ()
    target_groups: tuple[Annotated[str, Field(min_length=1)], ...] = ()  # ARNs or names

    def healthy_bounds(self) -> tuple[int | None, int | None]:
        return (self.min_healthy_percentage, self.max_healthy_percentage)

    def gates(self) -> list[str]:
        return (["target health in " + ", ".join(self.target_groups)] if self.target_groups else []) + (
            ["alarms in OK: " + ", ".join(self.alarms)] if self.alarms else []
        )


KIND = Kind(
    name="aws",
    target=AwsTarget,
    source=AwsSource,
    group=AwsGroup,
    builder="amazon-ebs",
    plugin=("github.com/hashicorp/amazon", ">= 1.2.8"),
    provider="bakery.providers.aws.provider",
    driver="bakery.groups.aws.driver",
    launcher="bakery.imagetest.aws",
    group_example="aws: {asg: NAME, launch_template: NAME}",
    limits=limits.aws_problems,
)
