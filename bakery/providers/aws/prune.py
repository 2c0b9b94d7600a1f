"""What uses an AMI, and its removal by `bakery prune`: deprecate, deregister every regional
copy, delete their snapshots (unless another AMI uses one).

The first step writes what will go (every copy and its snapshots) into the prune's journal and
tags each AMI `bakery:pruning` before anything is removed: an interrupted prune leaves either a
whole image or a journal that names every snapshot still to delete, and a rerun finishes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bakery.core.catalog import ImageRecord
from bakery.errors import InUse
from bakery.providers.aws.access import AwsAccess
from bakery.providers.aws.bakes import snapshots
from bakery.providers.aws.errors import unless_gone
from bakery.providers.aws.trust import amis_of, deprecation_time, describe_image, supported
from bakery.providers.base import Usage
from bakery.steps import Journal, Step

PRUNING_TAG = "bakery:pruning"
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def usage(provider: AwsAccess, record: ImageRecord) -> Usage:
    """Launch template versions, launch configurations (and their Auto Scaling groups) and
    instances that use any copy of `record`, and the accounts its copies are shared with."""
    spec = provider.specs[record.target]
    uses: list[str] = []
    shared: list[str] = []
    for region, ami in sorted(amis_of(record).items()):
        ec2 = provider.ec2(spec, region)
        for template in _pages(ec2, "describe_launch_templates", "LaunchTemplates"):
            versions = _pages(
                ec2,
                "describe_launch_template_versions",
                "LaunchTemplateVersions",
                LaunchTemplateId=template["LaunchTemplateId"],
            )
            for v in versions:
                if v.get("LaunchTemplateData", {}).get("ImageId") == ami:
                    uses.append(
                        f"launch template {template['LaunchTemplateName']} version {v['VersionNumber']} in {region}"
                    )
        asg = provider.client("autoscaling", region, provider.endpoint(spec))
        configs = [
            c["LaunchConfigurationName"]
            for c in _pages(asg, "describe_launch_configurations", "LaunchConfigurations")
            if c.get("ImageId") == ami
        ]
        uses += [f"launch configuration {name} in {region}" for name in configs]
        for group in _pages(asg, "describe_auto_scaling_groups", "AutoScalingGroups"):
            if group.get("LaunchConfigurationName") in configs:
                uses.append(f"Auto Scaling group {group['AutoScalingGroupName']} in {region}")
        filters = [{"Name": "image-id", "Values": [ami]}, {"Name": "instance-state-name", "Values": LIVE_STATES}]
        for reservation in _pages(ec2, "describe_instances", "Reservations", Filters=filters):
            for instance in reservation.get("Instances", []):
                uses.append(f"instance {instance['InstanceId']} ({instance['State']['Name']}) in {region}")
        if describe_image(ec2, ami) is None:
            continue  # deregistered (an interrupted prune's): shared with no one
        with unless_gone():
            found = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")
            for grant in found.get("LaunchPermissions", []):
                who = grant.get("UserId") or grant.get("OrganizationArn") or grant.get("OrganizationalUnitArn")
                shared.append(f"{who or 'everyone (public)'} ({ami} in {region})")
    return Usage(uses=tuple(uses), shared_with=tuple(shared))


def prune_steps(provider: AwsAccess, record: ImageRecord, now: str) -> Sequence[Step]:
    spec = provider.specs[record.target]
    copies = amis_of(record)

    def note(journal: Journal) -> None:
        if journal.get("amis") is None:  # a rerun keeps what the first run saw
            seen: dict[str, dict[str, Any]] = {}
            for region, ami in sorted(copies.items()):
                image = describe_image(provider.ec2(spec, region), ami)
                seen[region] = {"ami": ami, "snapshots": snapshots(image) if image else []}
            journal.put("amis", seen)
        for region, copy in sorted(journal.get("amis").items()):
            with unless_gone():
                provider.ec2(spec, region).create_tags(
                    Resources=[copy["ami"]], Tags=[{"Key": PRUNING_TAG, "Value": now}]
                )

    def deprecate(journal: Journal) -> None:
        done = []
        for region, copy in sorted(journal.get("amis").items()):
            ec2 = provider.ec2(spec, region)
            if describe_image(ec2, copy["ami"]) is None:
                continue
            with unless_gone():
                if supported(ec2.enable_image_deprecation, ImageId=copy["ami"], DeprecateAt=deprecation_time(now)):
                    done.append(f"deprecated {copy['ami']} in {region}")
                else:
                    done.append(f"{copy['ami']} in {region}: deprecation not supported by this endpoint")
        journal.put("deprecation", done)

    def deregister(journal: Journal) -> None:
        # Read again right before the first copy goes: a long `--yes` run decided minutes ago.
        if not journal.get("destroying"):
            now_used = usage(provider, record).uses
            if now_used:
                raise InUse(f"{record.ref} on {record.target} is in use now: nothing deregistered", uses=now_used)
            journal.put("destroying", True)
        for region, copy in sorted(journal.get("amis").items()):
            with unless_gone():
                provider.ec2(spec, region).deregister_image(ImageId=copy["ami"])

    def delete_snapshots(journal: Journal) -> None:
        removed: list[str] = list(journal.get("removed", []))
        for region, copy in sorted(journal.get("amis").items()):
            ec2 = provider.ec2(spec, region)
            # Every AMI of the account in the region, read after this one's deregistration: one
            # listing, since not every endpoint filters by block-device-mapping.snapshot-id.
            users: dict[str, list[str]] = {}
            for image in provider.paginate(ec2, Owners=["self"]):
                for snapshot in snapshots(image):
                    users.setdefault(snapshot, []).append(image["ImageId"])
            deleted, kept = [], []
            for snapshot in copy["snapshots"]:
                others = [ami for ami in users.get(snapshot, []) if ami != copy["ami"]]
                if others:
                    kept.append(f"{snapshot} (used by {', '.join(sorted(others))})")
                    continue
                with unless_gone():
                    ec2.delete_snapshot(SnapshotId=snapshot)
                deleted.append(snapshot)
            line = f"{copy['ami']} in {region}" + (f" with {', '.join(deleted)}" if deleted else "")
            line += f"; kept {', '.join(kept)}" if kept else ""
            if line not in removed:
                removed.append(line)
                journal.put("removed", removed)

    return (
        Step("note", note, f"noting every copy of {record.ref} and its snapshots"),
        Step("deprecate", deprecate, "deprecating its AMIs"),
        Step("deregister", deregister, "deregistering its AMIs"),
        Step("snapshots", delete_snapshots, "deleting their snapshots"),
    )


def abandon(provider: AwsAccess, record: ImageRecord) -> list[str]:
    """Take the `bakery:pruning` tag off every copy of an image whose prune is abandoned."""
    spec = provider.specs[record.target]
    out = []
    for region, ami in sorted(amis_of(record).items()):
        with unless_gone():
            provider.ec2(spec, region).delete_tags(Resources=[ami], Tags=[{"Key": PRUNING_TAG}])
            out.append(f"untagged {ami} in {region}")
    return out


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        out += page.get(key, [])
    return out
