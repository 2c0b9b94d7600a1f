"""What an AWS image is and says, for trust: the descriptor its signed provenance binds (every
AMI, its snapshots and creation time, in every region), the claims its tags make, and its
revocation (AMI deprecation where the endpoint has it, tags where it does not).

The descriptor holds only what never changes once an AMI exists: ids and creation times, never
tags or deprecation, so a revocation or a tag written later leaves the signed subject as it was.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bakery.core import jcs, provenance
from bakery.core.catalog import ImageRecord
from bakery.core.debris import iso, utc
from bakery.core.text import tag_value
from bakery.errors import ProviderError, UsageError
from bakery.providers.aws.access import AwsAccess
from bakery.providers.aws.bakes import snapshots
from bakery.providers.aws.errors import GONE
from bakery.providers.base import Claim

if TYPE_CHECKING:
    from bakery.config.targets.aws import AwsTarget

# What an endpoint without an action answers (AWS: InvalidAction; others: 501 or NotImplemented).
UNSUPPORTED = ("InvalidAction", "UnsupportedOperation", "NotImplemented", "UnknownOperationException")
# AWS refuses a deprecation time in the past and rounds to the minute: "now" is soon after now.
SOONEST = timedelta(minutes=2)
REVOCATION_TAGS = (provenance.AWS_REVOKED_TAG, provenance.AWS_REVOKED_REASON_TAG)
NAMES = {
    **{field: f"tag {provenance.AWS_PREFIX}{field}" for field in provenance.STAMP_FIELDS},
    "attestation": f"tag {provenance.AWS_ATTESTATION_TAG}",
}


@dataclass(frozen=True)
class Copy:
    """One AMI of an image as it is now, in one region, with its snapshots."""

    region: str
    image: Mapping[str, Any]  # describe_images' answer
    snapshots: Mapping[str, Mapping[str, Any]]  # id -> describe_snapshots' answer

    @property
    def ami(self) -> str:
        return str(self.image["ImageId"])


def amis_of(record: ImageRecord) -> dict[str, str]:
    """{region: ami} of a record's locations ('eu-west-1:ami-0abc')."""
    return dict(location.split(":", 1) for location in record.locations)


def read(provider: AwsAccess, spec: AwsTarget, amis: Mapping[str, str], *, ref: str) -> list[Copy]:
    """Every AMI of `amis` and its snapshots, read now. ProviderError naming the first that is
    gone (an AMI deregistered, a snapshot deleted) or not available."""
    copies = []
    for region, ami in sorted(amis.items()):
        ec2 = provider.ec2(spec, region)
        image = describe_image(ec2, ami)
        if image is None:
            raise ProviderError(f"{ref}: AMI {ami} in {region} is gone (deregistered, or not visible to this account)")
        if image.get("State") != "available":
            raise ProviderError(f"{ref}: AMI {ami} in {region} is {image.get('State', 'in no state')}, not available")
        wanted = snapshots(image)
        found: dict[str, Mapping[str, Any]] = {}
        if wanted:
            answer = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": wanted}])
            found = {s["SnapshotId"]: s for s in answer.get("Snapshots", [])}
        gone = [s for s in wanted if s not in found]
        if gone:
            raise ProviderError(f"{ref}: snapshot {gone[0]} of AMI {ami} in {region} is gone")
        copies.append(Copy(region, image, {s: found[s] for s in wanted}))
    return copies


def descriptor_of(copies: list[Copy]) -> dict[str, Any]:
    """The canonical description of what exists: per region the AMI, its snapshots and its
    creation time (nothing a tag or a deprecation changes)."""
    return {
        "kind": "aws",
        "images": {
            c.region: {"image": c.ami, "snapshots": sorted(c.snapshots), "created": c.image.get("CreationDate", "")}
            for c in copies
        },
    }


def subject_digest(descriptor: Mapping[str, Any]) -> str:
    """The provenance subject's sha256 (hex, as in-toto digest sets hold it) of a descriptor."""
    return jcs.digest(descriptor).removeprefix("sha256:")


def descriptor(provider: AwsAccess, record: ImageRecord) -> dict[str, Any]:
    """The descriptor of `record` read live, over every region of its target. ProviderError
    naming a region without an AMI, or an AMI or snapshot that is gone."""
    spec = provider.specs[record.target]
    amis = amis_of(record)
    for region in provider.regions(spec):
        if region not in amis:
            raise ProviderError(
                f"{record.ref} has no AMI in {region}: its copy there was deregistered, "
                f"or {region} was added to target {record.target} after the bake"
            )
    return descriptor_of(read(provider, spec, amis, ref=record.ref))


def claims(provider: AwsAccess, record: ImageRecord) -> list[Claim]:
    """What every AMI and every snapshot of `record` says in its tags, in every region."""
    spec = provider.specs[record.target]
    found = []
    for copy in read(provider, spec, amis_of(record), ref=record.ref):
        resources = [(copy.ami, copy.image), *copy.snapshots.items()]
        for resource, described in resources:
            tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
            found.append(
                Claim(
                    location=f"{resource} in {copy.region}",
                    stamp=provenance.aws_stamp(tags),
                    names=NAMES,
                    attestation=tags.get(provenance.AWS_ATTESTATION_TAG),
                    document=_document(tags),
                    problems=_document_problems(tags),
                )
            )
    return found


def mark_revoked(provider: AwsAccess, record: ImageRecord, *, at: str, reason: str) -> str:
    """Deprecate every AMI of `record` from `at` (or soon after now: AWS accepts no time in the
    past); where the endpoint has no AMI deprecation, tag the AMIs and their snapshots with the
    time and the reason instead. What is already gone is skipped. Returns what was done."""
    spec = provider.specs[record.target]
    when = deprecation_time(at)
    tags = [
        {"Key": provenance.AWS_REVOKED_TAG, "Value": at},
        {"Key": provenance.AWS_REVOKED_REASON_TAG, "Value": tag_value(reason, limit=provenance.AWS_MAX_VALUE)},
    ]
    deprecated, tagged, gone = [], [], []
    for region, ami in sorted(amis_of(record).items()):
        ec2 = provider.ec2(spec, region)
        image = describe_image(ec2, ami)
        if image is None:
            gone.append(f"{ami} in {region}")
        elif supported(ec2.enable_image_deprecation, ImageId=ami, DeprecateAt=when):
            deprecated.append(f"{ami} in {region}")
        else:
            ec2.create_tags(Resources=[ami, *snapshots(image)], Tags=tags)
            tagged.append(f"{ami} in {region}")
    return _line(
        (deprecated, f"deprecated {{}} from {iso(when)}"),
        (
            tagged,
            f"tagged {{}} and their snapshots {provenance.AWS_REVOKED_TAG}={at} (the endpoint has no AMI deprecation)",
        ),
        (gone, "{} already gone"),
    )


def unmark_revoked(provider: AwsAccess, record: ImageRecord) -> str:
    """Cancel the deprecation of every AMI of `record` (where the endpoint has it) and remove the
    revocation tags from the AMIs and their snapshots. Returns what was done."""
    spec = provider.specs[record.target]
    cancelled, cleared, gone = [], [], []
    for region, ami in sorted(amis_of(record).items()):
        ec2 = provider.ec2(spec, region)
        image = describe_image(ec2, ami)
        if image is None:
            gone.append(f"{ami} in {region}")
            continue
        if supported(ec2.disable_image_deprecation, ImageId=ami):
            cancelled.append(f"{ami} in {region}")
        ec2.delete_tags(Resources=[ami, *snapshots(image)], Tags=[{"Key": key} for key in REVOCATION_TAGS])
        cleared.append(f"{ami} in {region}")
    return _line(
        (cancelled, "cancelled the deprecation of {}"),
        (cleared, f"removed tags {', '.join(REVOCATION_TAGS)} from {{}} and their snapshots"),
        (gone, "{} already gone"),
    )


def describe_image(ec2: Any, ami: str) -> dict[str, Any] | None:
    """The AMI as EC2 describes it now; None when it is gone."""
    from botocore.exceptions import ClientError

    try:
        found = ec2.describe_images(ImageIds=[ami]).get("Images", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in GONE:
            return None
        raise
    image: dict[str, Any] | None = found[0] if found else None
    return image


def _document(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """The provenance in the chunk tags; None when they are missing or do not decode (tags are
    written by hand too)."""
    try:
        return provenance.aws_document(tags)
    except (ValueError, binascii.Error, OSError, EOFError, zlib.error):
        return None


def _document_problems(tags: Mapping[str, str]) -> tuple[str, ...]:
    """Why the provenance every bakery AMI and snapshot carries in its chunk tags is not there."""
    chunks = provenance.AWS_PREFIX + "provenance-chunks"
    if chunks not in tags:
        return (f"tag {chunks} is missing (the provenance document is not there)",)
    if _document(tags) is None:
        return (f"the provenance tags ({chunks} and {provenance.AWS_PREFIX}provenance-NN) do not decode",)
    return ()


def _unsupported(exc: Any) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return exc.response.get("Error", {}).get("Code") in UNSUPPORTED or status == 501


def deprecation_time(at: str) -> datetime:
    moment = utc(at)
    if moment is None:
        raise UsageError(f"revocation time {at!r} is not an ISO 8601 time such as 2026-03-01T10:00:00Z")
    return max(moment, datetime.now(UTC) + SOONEST)


def supported(call: Any, **kwargs: Any) -> bool:
    """Make `call`; False if the endpoint does not have that action."""
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as exc:
        if _unsupported(exc):
            return False
        raise
    return True


def _line(*parts: tuple[list[str], str]) -> str:
    return "AWS: " + ("; ".join(template.format(", ".join(done)) for done, template in parts if done) or "no AMI")
