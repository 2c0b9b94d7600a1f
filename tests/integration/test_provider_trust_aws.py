"""What the AWS provider knows for trust, through boto3 against moto's server: the subject bound
to the descriptor of every AMI and snapshot in every region, the attestation tag, the claims the
tags make, and revocation (AMI deprecation where the endpoint has it, tags on moto, which lacks it).

Each test makes its AMIs as Packer's amazon-ebs does (an instance, CreateImage, CopyImage to the
copy_to region) and then plays the Baker's part: subject, then publish with the attestation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bakery.bake import inputs
from bakery.config import load as config
from bakery.core import jcs, provenance
from bakery.core.catalog import ImageRecord
from bakery.core.debris import iso
from bakery.errors import ProviderError
from bakery.progress import Recording
from bakery.providers.aws.provider import AwsProvider, default_clients
from bakery.providers.base import BakeRequest
from tests.integration.aws_world import ec2, tags_of

ATTESTATION = "sha256:" + "a7" * 32
AT = "2026-02-01T00:00:00Z"
REVOKED = {"bakery:revoked", "bakery:revoked-reason"}


@dataclass
class Baked:
    provider: AwsProvider
    record: ImageRecord  # as images() lists it
    statement: dict[str, Any]
    amis: dict[str, str]  # region -> ami
    snapshots: dict[str, str]  # region -> its snapshot


def make_provider(wrap: Any = None) -> AwsProvider:
    """The provider with clients from boto3, each handed to `wrap` (an endpoint's differences)."""
    clients = default_clients if wrap is None else lambda *where: wrap(default_clients(*where))
    return AwsProvider(Recording(), clients)


def bake(project_root: Path, moto: str, provider: AwsProvider) -> Baked:
    project = config.load(project_root / "images.yaml")
    invocation = "7e57ab1e0001"
    request = BakeRequest(project, project.effective("app", "aws"), "0.3.0", project_root, None, invocation=invocation)
    prepared = provider.resolve(request)
    skeleton = inputs.statement_skeleton(
        project,
        request.eff,
        version="0.3.0",
        prepared=prepared,
        digest="sha256:" + "d1" * 32,
        tools={"packer": "1.11.0", "ansible": "2.17.0"},
        git={"uri": "git+file:///src", "commit": "c0ffee" * 6 + "c0ff", "dirty": False},
        invocation=invocation,
        started="2026-01-01T00:00:00Z",
        builder="amazon-ebs",
        files={},
    )
    provider.before_build(request, skeleton)  # the tags, an attestation and a revocation fit
    amis = packer_build(moto, provenance.aws_ami_name("app", "0.3.0", "aws", invocation))
    artifacts = [",".join(f"{region}:{ami}" for region, ami in amis.items())]
    name, digest = provider.subject(request, artifacts)
    statement = provenance.finalize(skeleton, subject_name=name, subject_digest=digest, finished=AT)
    provider.publish(request, prepared, statement, "sha256:" + "d1" * 32, artifacts, attestation=ATTESTATION)
    (record,) = provider.images("aws", "app")
    images = {r: ec2(moto, r).describe_images(ImageIds=[a])["Images"][0] for r, a in amis.items()}
    snapshots = {r: image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] for r, image in images.items()}
    return Baked(provider, record, statement, amis, snapshots)


def packer_build(moto: str, name: str) -> dict[str, str]:
    """What amazon-ebs makes: an AMI of a build instance, and its copy in the copy_to region."""
    west = ec2(moto, "eu-west-1")
    instance = west.run_instances(ImageId="ami-0babe000000000003", MinCount=1, MaxCount=1)["Instances"][0]
    ami = west.create_image(InstanceId=instance["InstanceId"], Name=name)["ImageId"]
    copy = ec2(moto, "eu-central-1").copy_image(Name=name, SourceImageId=ami, SourceRegion="eu-west-1")["ImageId"]
    return {"eu-west-1": ami, "eu-central-1": copy}


@pytest.fixture()
def baked(aws_project: Path, moto: str) -> Baked:
    return bake(aws_project, moto, make_provider())


# --- the subject binds every AMI and snapshot ---------------------------------------------------------


def test_the_subject_is_the_digest_of_the_descriptor_read_again_later(baked: Baked, moto: str) -> None:
    described = baked.provider.descriptor(baked.record)
    created = {
        r: ec2(moto, r).describe_images(ImageIds=[a])["Images"][0]["CreationDate"] for r, a in baked.amis.items()
    }
    assert described == {
        "kind": "aws",
        "images": {
            region: {"image": baked.amis[region], "snapshots": [baked.snapshots[region]], "created": created[region]}
            for region in ("eu-west-1", "eu-central-1")
        },
    }
    assert baked.statement["subject"][0]["digest"] == {
        "awsImageId": baked.amis["eu-west-1"],
        "sha256": jcs.digest(described).removeprefix("sha256:"),
    }
    assert baked.provider.descriptor(baked.record) == described  # stable
    ec2(moto).create_tags(Resources=[baked.amis["eu-west-1"]], Tags=[{"Key": "team", "Value": "other"}])
    assert bound_again(baked).descriptor(baked.record) == described  # tags are not part of it


def bound_again(baked: Baked, wrap: Any = None) -> AwsProvider:
    """A provider of another process (its own clients), as `bakery verify` would use."""
    provider = make_provider(wrap)
    provider.bind("aws", baked.provider.specs["aws"])
    return provider


def test_a_deregistered_copy_is_named(baked: Baked, moto: str) -> None:
    copy = baked.amis["eu-central-1"]
    ec2(moto, "eu-central-1").deregister_image(ImageId=copy)
    with pytest.raises(ProviderError, match=re.escape(f"app@0.3.0: AMI {copy} in eu-central-1 is gone")):
        baked.provider.descriptor(baked.record)
    (now,) = baked.provider.images("aws", "app")  # listed now: without the copy
    with pytest.raises(
        ProviderError, match=re.escape("app@0.3.0 has no AMI in eu-central-1: its copy there was deregistered")
    ):
        baked.provider.descriptor(now)


class Losing:
    """An endpoint that lost a snapshot (AWS and moto refuse to delete one an AMI uses)."""

    def __init__(self, client: Any, lost: str) -> None:
        self.client, self.lost = client, lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def describe_snapshots(self, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.describe_snapshots(**kwargs)
        answer["Snapshots"] = [s for s in answer["Snapshots"] if s["SnapshotId"] != self.lost]
        return answer


def test_a_snapshot_that_is_gone_is_named(baked: Baked) -> None:
    lost = baked.snapshots["eu-west-1"]
    provider = bound_again(baked, lambda client: Losing(client, lost))
    ami = baked.amis["eu-west-1"]
    with pytest.raises(ProviderError, match=re.escape(f"app@0.3.0: snapshot {lost} of AMI {ami} in eu-west-1 is gone")):
        provider.descriptor(baked.record)


# --- the attestation tag and the claims of the tags ---------------------------------------------------


def test_the_attestation_tag_is_on_every_ami_snapshot_and_copy(baked: Baked, moto: str) -> None:
    for region, ami in baked.amis.items():
        for resource in (ami, baked.snapshots[region]):
            tags = tags_of(ec2(moto, region), resource)
            assert tags["bakery:attestation"] == ATTESTATION, (region, resource)
            assert len(tags) <= 50 - len(REVOKED)  # room for a revocation's tags
    assert baked.record.extra["attestation"] == ATTESTATION


def test_claims_name_every_ami_and_snapshot_with_its_tags(baked: Baked) -> None:
    claims = baked.provider.claims(baked.record)
    expected = []
    for region in ("eu-central-1", "eu-west-1"):  # regions in order, each AMI then its snapshot
        expected += [f"{baked.amis[region]} in {region}", f"{baked.snapshots[region]} in {region}"]
    assert [c.location for c in claims] == expected
    stamp = provenance.stamp_of(baked.statement, state="complete")
    for claim in claims:
        assert dict(claim.stamp) == stamp, claim.location
        assert claim.attestation == ATTESTATION
        assert claim.document == baked.statement
        assert claim.names["commit"] == "tag bakery:commit"
        assert claim.names["attestation"] == "tag bakery:attestation"


def test_a_tag_changed_by_hand_shows_in_its_claim(baked: Baked, moto: str) -> None:
    snapshot = baked.snapshots["eu-central-1"]
    ec2(moto, "eu-central-1").create_tags(
        Resources=[snapshot],
        Tags=[{"Key": "bakery:commit", "Value": "f" * 40}, {"Key": "bakery:provenance-00", "Value": "x"}],
    )
    ec2(moto, "eu-central-1").delete_tags(Resources=[snapshot], Tags=[{"Key": "bakery:attestation"}])
    claims = {c.location: c for c in baked.provider.claims(baked.record)}
    changed = claims.pop(f"{snapshot} in eu-central-1")
    assert changed.stamp["commit"] == "f" * 40
    assert changed.attestation is None and changed.document is None  # the chunks no longer decode
    assert all(c.stamp["commit"] != "f" * 40 and c.attestation == ATTESTATION for c in claims.values())


# --- revocation ---------------------------------------------------------------------------------------


def test_revocation_falls_back_to_tags_where_the_endpoint_has_no_deprecation(baked: Baked, moto: str) -> None:
    described, claims = baked.provider.descriptor(baked.record), baked.provider.claims(baked.record)
    west, central = baked.amis["eu-west-1"], baked.amis["eu-central-1"]
    for _ in range(2):  # idempotent
        said = baked.provider.mark_revoked(baked.record, at=AT, reason="CVE-2026-1 " + "x" * 300, replacement=None)
        assert said == (
            f"AWS: tagged {central} in eu-central-1, {west} in eu-west-1 and their snapshots bakery:revoked={AT} "
            "(the endpoint has no AMI deprecation)"
        )
    for region, ami in baked.amis.items():
        for resource in (ami, baked.snapshots[region]):
            tags = tags_of(ec2(moto, region), resource)
            assert tags["bakery:revoked"] == AT
            assert tags["bakery:revoked-reason"] == ("CVE-2026-1 " + "x" * 300)[:256]
    assert baked.provider.descriptor(baked.record) == described
    assert [c.stamp for c in baked.provider.claims(baked.record)] == [c.stamp for c in claims]
    # The listing reads the marks back: what verify checks against the registry.
    (listed,) = [r for r in baked.provider.images(baked.record.target) if r.ref == baked.record.ref]
    assert listed.revoked_marks == (
        f"eu-central-1:{central} is tagged bakery:revoked={AT}",
        f"eu-west-1:{west} is tagged bakery:revoked={AT}",
    )

    for _ in range(2):
        said = baked.provider.unmark_revoked(baked.record)
        assert said == (
            f"AWS: removed tags bakery:revoked, bakery:revoked-reason from {central} in eu-central-1, "
            f"{west} in eu-west-1 and their snapshots"
        )
    for region, ami in baked.amis.items():
        for resource in (ami, baked.snapshots[region]):
            assert not REVOKED & set(tags_of(ec2(moto, region), resource))
    (listed,) = [r for r in baked.provider.images(baked.record.target) if r.ref == baked.record.ref]
    assert listed.revoked_marks == ()


class Deprecating:
    """An endpoint that has AMI deprecation (moto has not): it records each call."""

    def __init__(self, client: Any, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.client, self.calls = client, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def enable_image_deprecation(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("enable", kwargs))
        return {"Return": True}

    def disable_image_deprecation(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("disable", kwargs))
        return {"Return": True}


def test_revocation_is_ami_deprecation_where_the_endpoint_has_it(baked: Baked, moto: str) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    provider = bound_again(baked, lambda client: Deprecating(client, calls))
    later = iso(datetime.now(UTC) + timedelta(days=30))
    west, central = baked.amis["eu-west-1"], baked.amis["eu-central-1"]
    said = provider.mark_revoked(baked.record, at=later, reason="cve", replacement=None)
    assert said == f"AWS: deprecated {central} in eu-central-1, {west} in eu-west-1 from {later}"
    assert [(what, kw["ImageId"], iso(kw["DeprecateAt"])) for what, kw in calls] == [
        ("enable", central, later),
        ("enable", west, later),
    ]
    assert not REVOKED & set(tags_of(ec2(moto), west))

    calls.clear()  # a time in the past: AWS refuses it, so it is soon after now
    provider.mark_revoked(baked.record, at="2020-01-01T00:00:00Z", reason="cve", replacement=None)
    assert len(calls) == 2 and all(kw["DeprecateAt"] > datetime.now(UTC) for _, kw in calls)

    calls.clear()
    said = provider.unmark_revoked(baked.record)
    assert said.startswith(f"AWS: cancelled the deprecation of {central} in eu-central-1, {west} in eu-west-1; ")
    assert [(what, kw["ImageId"]) for what, kw in calls] == [("disable", central), ("disable", west)]
