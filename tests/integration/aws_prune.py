"""A prune world on the moto server: the Auto Scaling group world (tests/integration/aws_groups.py:
web@1.0.0 behind group web-aws, web@1.0.1) and more versions of web baked in two regions with a
snapshot each, every one but two in use in its own way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import yaml

from bakery.config.load import load
from bakery.core import provenance
from bakery.core.debris import iso
from bakery.progress import Silent
from bakery.trust.context import TrustContext
from bakery.workspace import Workspace
from tests.integration.aws_groups import BASE_AMI, REGION, TARGET, World
from tests.integration.channel_moves import promote

COPY = "eu-central-1"
OLD = "2026-01-01T00:00:00Z"
OTHER_ACCOUNT = "210987654321"


@dataclass
class PruneWorld:
    world: World
    amis: dict[str, dict[str, str]] = field(default_factory=dict)  # version -> {region: AMI}
    snapshots: dict[str, dict[str, str]] = field(default_factory=dict)  # version -> {region: snapshot}

    def ec2(self, region: str = REGION) -> Any:
        return boto3.client("ec2", region_name=region, endpoint_url=self.world.endpoint)

    def exists(self, region: str, ami: str) -> bool:
        return bool(self.ec2(region).describe_images(ImageIds=[ami])["Images"])

    def snapshot_exists(self, region: str, snapshot: str) -> bool:
        found = self.ec2(region).describe_snapshots(OwnerIds=["self"])["Snapshots"]
        return snapshot in {s["SnapshotId"] for s in found}


def bake(pw: PruneWorld, name: str, version: str, *, created: str = OLD, parent: str | None = None) -> None:
    """web@`version` as a complete bakery bake leaves it: an AMI in each region with a snapshot of
    its own, all tagged with the bake's stamp and invocation."""
    invocation = f"{abs(hash((name, version))):012x}"[:12]
    stamp = {
        "image": name,
        "version": version,
        "target": TARGET,
        "state": "complete",
        "inputs-digest": "sha256:" + version.replace(".", "").ljust(64, "0"),
        "base": BASE_AMI,
        "created": created,
        "invocation": invocation,
        "parent": parent or "",
    }
    tags = [{"Key": k, "Value": v} for k, v in provenance.aws_tags(stamp, {}, None).items()]
    for region in (REGION, COPY):
        ec2 = pw.ec2(region)
        ami = ec2.register_image(
            Name=provenance.aws_ami_name(name, version, TARGET, invocation),
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
        )["ImageId"]
        # moto makes a snapshot of its own for every AMI it registers
        mapping = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"]
        snapshot = mapping[0]["Ebs"]["SnapshotId"]
        ec2.create_tags(Resources=[ami, snapshot], Tags=tags)
        pw.amis.setdefault(f"{name}@{version}", {})[region] = ami
        pw.snapshots.setdefault(f"{name}@{version}", {})[region] = snapshot


def build(world: World) -> PruneWorld:
    """The versions of web and what uses each (see the test for the list)."""
    pw = PruneWorld(world)
    for patch in (*range(2, 10), *range(11, 15), 20):
        bake(pw, "web", f"1.0.{patch}")
    bake(pw, "web", "1.0.10", created=iso(datetime.now(UTC)))
    bake(pw, "app", "1.0.0", parent="web@1.0.6")
    ec2, asg = pw.ec2(), world.client("autoscaling")
    # 1.0.1: a launch configuration and the Auto Scaling group launching from it
    asg.create_launch_configuration(
        LaunchConfigurationName="legacy-lc", ImageId=world.amis["1.0.1"], InstanceType="t3.micro"
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="legacy-asg",
        LaunchConfigurationName="legacy-lc",
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
    )
    # 1.0.2: version 2 of a launch template no group of images.yaml uses
    template = ec2.create_launch_template(
        LaunchTemplateName="batch-lt", LaunchTemplateData={"ImageId": BASE_AMI, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(
        LaunchTemplateId=template, LaunchTemplateData={"ImageId": pw.amis["web@1.0.2"][REGION]}
    )
    # 1.0.3: a running instance (in the copy's region)
    pw.ec2(COPY).run_instances(ImageId=pw.amis["web@1.0.3"][COPY], MinCount=1, MaxCount=1, InstanceType="t3.micro")
    # 1.0.7: shared with another account
    ec2.modify_image_attribute(
        ImageId=pw.amis["web@1.0.7"][REGION], LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]}
    )
    # 1.0.11: a launch template that takes its AMI from an SSM parameter (resolve:ssm:)
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=world.endpoint)
    ssm.put_parameter(Name="/golden/web", Value=pw.amis["web@1.0.11"][REGION], Type="String", DataType="aws:ec2:image")
    ec2.create_launch_template(
        LaunchTemplateName="golden-lt", LaunchTemplateData={"ImageId": "resolve:ssm:/golden/web:1"}
    )
    # 1.0.12: an EC2 Fleet whose override names it, scaled to zero (no instance runs it now)
    ec2.create_fleet(
        Type="maintain",
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": template, "Version": "1"},
                "Overrides": [{"ImageId": pw.amis["web@1.0.12"][REGION]}],
            }
        ],
        TargetCapacitySpecification={"TotalTargetCapacity": 0, "DefaultTargetCapacityType": "on-demand"},
    )
    # 1.0.13: a Spot Fleet request that launches it, scaled to zero
    ec2.request_spot_fleet(
        SpotFleetRequestConfig={
            "TargetCapacity": 0,
            "IamFleetRole": "arn:aws:iam::123456789012:role/spot-fleet",
            "AllocationStrategy": "lowestPrice",
            "LaunchSpecifications": [{"ImageId": pw.amis["web@1.0.13"][REGION], "InstanceType": "t3.micro"}],
        }
    )
    # 1.0.14: its snapshot shared with another account (who may make volumes of it)
    ec2.modify_snapshot_attribute(
        SnapshotId=pw.snapshots["web@1.0.14"][REGION],
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=[OTHER_ACCOUNT],
    )
    path = world.root / "images.yaml"
    config = yaml.safe_load(path.read_text())
    config["targets"][TARGET]["copy_to"] = [COPY]
    config["images"]["web"]["prune"] = {"keep": 1, "older_than_days": 30}
    config["images"]["app"] = {"version": "1.0", "from": "web", "playbooks": ["playbooks/base.yml"]}
    config["channels"] = {"stable": {}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    # 1.0.5 is the head of channel stable, 1.0.4 the head before it (its kept history)
    project = load(path)
    trust = TrustContext(project, Workspace.for_project(project.root), Silent())
    for version in ("1.0.4", "1.0.5"):
        promote(trust, "stable", TARGET, "web", version)
    return pw
