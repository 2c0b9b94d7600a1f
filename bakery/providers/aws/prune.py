"""An AMI's removal by `bakery prune` (what uses it: usage.py): deprecate, deregister every regional
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
from bakery.providers.aws.usage import usage
from bakery.steps import Journal, Step

PRUNING_TAG = "bakery:pruning"


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
            now_used = usage(provider, [record])[0].uses
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
