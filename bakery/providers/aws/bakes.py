"""What AWS bakes leave behind: the AMIs (with their copies) that carry a bake's mark, the owner
and heartbeat a running bake writes on them, and their removal with their snapshots."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from bakery.core import provenance
from bakery.core.debris import Leftover, Owner, iso
from bakery.providers.aws.access import AwsAccess
from bakery.providers.aws.errors import GONE, unless_gone


def marked(
    provider: AwsAccess, target: str, name: str, *, version: str | None = None, invocation: str | None = None
) -> list[Leftover]:
    spec = provider.specs[target]
    found: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    for region in provider.regions(spec):
        wanted = f"{name}-{version}*" if version else f"{name}-*"
        for image in provider.paginate(
            provider.ec2(spec, region), Owners=["self"], Filters=[{"Name": "name", "Values": [wanted]}]
        ):
            parsed = provenance.parse_aws_ami_name(name, target, image.get("Name", ""))
            if parsed and (version is None or parsed[0] == version):
                found.append((region, image, {t["Key"]: t["Value"] for t in image.get("Tags", [])}))
    # An AMI is a bake's by the invocation in its name (set at CreateImage, kept by copies);
    # AMIs of older bakes by the description mark or the invocation tag.
    owner_of: dict[str, str] = {}
    for _region, image, tags in found:
        parsed = provenance.parse_aws_ami_name(name, target, image["Name"])
        bake = (
            (parsed[1] if parsed else None)
            or provenance.aws_mark(image.get("Description", ""))
            or tags.get("bakery:invocation")
        )
        if bake:
            owner_of[image["ImageId"]] = bake
    bakes: dict[str, list[tuple[str, dict[str, Any], dict[str, str]]]] = defaultdict(list)
    for region, image, tags in found:
        bake = owner_of.get(image["ImageId"])
        if bake is None or tags.get("bakery:target", target) != target:
            continue
        if invocation is None or bake == invocation:
            bakes[bake].append((region, image, tags))
    return [_leftover(provider, target, name, bake, copies) for bake, copies in sorted(bakes.items())]


def _leftover(
    provider: AwsAccess, target: str, name: str, bake: str, copies: list[tuple[str, dict[str, Any], dict[str, str]]]
) -> Leftover:
    copies.sort(key=lambda c: (c[1].get("CreationDate", ""), c[0]))
    tags: dict[str, str] = {}
    for _region, _image, these in reversed(copies):  # the earliest copy's tags win
        tags.update(these)
    parsed = provenance.parse_aws_ami_name(name, target, copies[0][1]["Name"])
    version = parsed[0] if parsed else ""
    provider.versions_seen[bake] = version
    owner = _unpack_owner(tags.get(provenance.AWS_OWNER_TAG, ""))
    return Leftover(
        target=target,
        image=name,
        version=version,
        invocation=bake,
        locations=tuple(f"{region}:{image['ImageId']}" for region, image, _ in copies),
        created=copies[0][1].get("CreationDate", ""),
        state=tags.get("bakery:state", "") if tags.get("bakery:invocation", bake) == bake else "",
        owner=owner if owner and owner.invocation == bake else None,
        heartbeat=tags.get(provenance.AWS_HEARTBEAT_TAG),
    )


def heartbeat(provider: AwsAccess, target: str, name: str, owner: Owner) -> None:
    version = provider.versions_seen.get(owner.invocation)
    beat = [
        {"Key": provenance.AWS_OWNER_TAG, "Value": _pack_owner(owner)},
        {"Key": provenance.AWS_HEARTBEAT_TAG, "Value": iso(datetime.now(UTC))},
    ]
    spec = provider.specs[target]
    for leftover in marked(provider, target, name, version=version, invocation=owner.invocation):
        if leftover.state == "complete":
            continue
        for location in leftover.locations:
            region, _, ami = location.partition(":")
            provider.ec2(spec, region).create_tags(Resources=[ami], Tags=beat)


def remove(provider: AwsAccess, leftover: Leftover) -> list[str]:
    from botocore.exceptions import ClientError

    spec = provider.specs[leftover.target]
    removed = []
    for location in leftover.locations:
        region, _, ami = location.partition(":")
        ec2 = provider.ec2(spec, region)
        try:
            images = ec2.describe_images(ImageIds=[ami]).get("Images", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in GONE:
                continue
            raise
        if not images:
            continue
        its = snapshots(images[0])
        with unless_gone():
            ec2.deregister_image(ImageId=ami)
        # An AMI still pending (being created or copied) may not list its snapshot yet; AWS names
        # the AMI in the description of the snapshots it makes for it.
        named = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "description", "Values": [f"*{ami}*"]}])
        its += [s["SnapshotId"] for s in named.get("Snapshots", []) if s["SnapshotId"] not in its]
        for snapshot in its:
            with unless_gone():
                ec2.delete_snapshot(SnapshotId=snapshot)
        removed.append(f"{ami} in {region}" + (f" with {', '.join(its)}" if its else ""))
    return removed


def snapshots(image: dict[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def _pack_owner(owner: Owner) -> str:
    return ";".join(f"{k}={v}" for k, v in owner.fields().items())


def _unpack_owner(text: str) -> Owner | None:
    fields = dict(part.partition("=")[::2] for part in text.split(";") if "=" in part)
    return Owner.from_fields(fields)
