"""The AWS prune steps against a stand-in EC2: a snapshot another AMI uses stays, the rest go,
and AMI deprecation that the endpoint lacks is recorded as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bakery.config.targets.aws import AwsTarget
from bakery.core.catalog import ImageRecord
from bakery.progress import Silent
from bakery.providers.aws.prune import prune_steps
from bakery.steps import Journal, execute


class Ec2:
    """AMIs and snapshots of one region, as EC2 answers for them."""

    def __init__(self, images: dict[str, list[str]]) -> None:
        self.images = images  # AMI -> its snapshots
        self.snapshots = {s for snaps in images.values() for s in snaps}
        self.tags: dict[str, dict[str, str]] = {}

    def _image(self, ami: str) -> dict[str, Any]:
        return {"ImageId": ami, "BlockDeviceMappings": [{"Ebs": {"SnapshotId": s}} for s in self.images[ami]]}

    def describe_images(self, ImageIds: list[str]) -> dict[str, Any]:
        return {"Images": [self._image(a) for a in ImageIds if a in self.images]}

    def create_tags(self, Resources: list[str], Tags: list[dict[str, str]]) -> None:
        for r in Resources:
            self.tags.setdefault(r, {}).update({t["Key"]: t["Value"] for t in Tags})

    def enable_image_deprecation(self, **_kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "InvalidAction", "Message": "no"}}, "EnableImageDeprecation")

    def deregister_image(self, ImageId: str) -> None:
        self.images.pop(ImageId, None)

    def delete_snapshot(self, SnapshotId: str) -> None:
        self.snapshots.discard(SnapshotId)

    # what uses an AMI (read again before the deregistration): nothing here
    def get_paginator(self, _operation: str) -> Any:
        return self

    def paginate(self, **_kwargs: Any) -> list[dict[str, Any]]:
        return []

    def describe_image_attribute(self, **_kwargs: Any) -> dict[str, Any]:
        return {"LaunchPermissions": []}

    def describe_snapshot_attribute(self, **_kwargs: Any) -> dict[str, Any]:
        return {"CreateVolumePermissions": []}


class Provider:
    def __init__(self, regions: dict[str, Ec2]) -> None:
        self.regions_ = regions
        self.specs = {"aws": AwsTarget(kind="aws", region="eu-west-1", copy_to=("eu-central-1",))}

    def ec2(self, spec: AwsTarget, region: str | None = None) -> Ec2:
        return self.regions_[region or spec.region]

    def paginate(self, ec2: Ec2, **_kwargs: Any) -> list[dict[str, Any]]:
        return [ec2._image(a) for a in ec2.images]

    def endpoint(self, _spec: AwsTarget) -> None:
        return None

    def client(self, _service: str, region: str, _endpoint: str | None) -> Ec2:
        return self.regions_[region]  # the Auto Scaling client: it lists nothing either


def test_a_snapshot_another_ami_uses_stays_and_the_rest_go(tmp_path: Path) -> None:
    west = Ec2({"ami-1": ["snap-1", "snap-shared"], "ami-other": ["snap-shared"]})
    central = Ec2({"ami-2": ["snap-2"]})
    provider = Provider({"eu-west-1": west, "eu-central-1": central})
    record = ImageRecord(
        "web",
        "1.0.0",
        "aws",
        "aws",
        "sha256:x",
        "2026-01-01T00:00:00Z",
        "ami-0",
        locations=("eu-west-1:ami-1", "eu-central-1:ami-2"),
    )
    journal = Journal.create(tmp_path / "j.json")
    execute(prune_steps(provider, record, "2026-06-01T00:00:00Z"), journal, Silent())  # type: ignore[arg-type]
    assert west.images == {"ami-other": ["snap-shared"]} and central.images == {}
    assert west.snapshots == {"snap-shared"} and central.snapshots == set()
    assert journal.get("removed") == [
        "ami-2 in eu-central-1 with snap-2",
        "ami-1 in eu-west-1 with snap-1; kept snap-shared (used by ami-other)",
    ]
    assert journal.get("deprecation") == [
        "ami-2 in eu-central-1: deprecation not supported by this endpoint",
        "ami-1 in eu-west-1: deprecation not supported by this endpoint",
    ]
    assert west.tags["ami-1"] == {"bakery:pruning": "2026-06-01T00:00:00Z"}
