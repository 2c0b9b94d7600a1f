"""AWS target: AMIs baked by Packer's amazon-ebs builder, stamped with provenance tags.

The AMIs themselves are the catalog: bakery lists them by tag, one paginated call per region,
and writes its stamp (and the provenance document, in chunks) on every AMI, on each of its
snapshots and on every regional copy, then reads the tags back and repairs what is missing.

Every AMI a bake creates carries the bake's mark in its description from the moment it is
registered (`[bakery:<invocation>]`), long before Packer tags it: that is how a failed or
interrupted bake finds what it made, in every region, and how a later bake finds what a killed
one left behind. An AMI without the mark (or bakery's invocation tag) is never bakery's.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from bakery import packer
from bakery.config.models import Prune
from bakery.config.targets.aws import AwsSource, AwsTarget
from bakery.core import provenance
from bakery.core.catalog import ImageRecord
from bakery.core.debris import Leftover, Owner
from bakery.core.provenance import Dependency
from bakery.core.retry import aws_client, eventually
from bakery.errors import ConfigError, ProviderError
from bakery.progress import Reporter
from bakery.providers.aws import bakes as aws_bakes
from bakery.providers.aws import listing
from bakery.providers.aws import prune as aws_prune
from bakery.providers.aws import trust as aws_trust
from bakery.providers.aws import usage as aws_usage
from bakery.providers.aws.bakes import snapshots
from bakery.providers.aws.errors import guarded, unless_gone
from bakery.providers.aws.variables import AwsMarks, AwsPrepared
from bakery.providers.aws.variables import packer_variables as packer_variables  # the kind's Packer variables
from bakery.providers.aws.variables import preview as preview  # an offline render's values
from bakery.providers.base import BakeRequest, Claim, ClientFactory, CloudProvider, Prepared, Usage
from bakery.steps import Step
from bakery.workspace import Workspace


def default_clients(service: str, region: str, endpoint: str | None) -> Any:
    return aws_client(service, region, endpoint)


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> AwsProvider:
    return AwsProvider(reporter, clients or default_clients)


class AwsProvider(CloudProvider[AwsTarget]):
    kind = "aws"
    spec_type = AwsTarget

    def __init__(self, reporter: Reporter, clients: ClientFactory) -> None:
        super().__init__(reporter, clients)
        self.versions_seen: dict[str, str] = {}  # invocation -> version, once its AMI was seen

    @staticmethod
    def endpoint(spec: AwsTarget) -> str | None:
        return spec.endpoint or os.environ.get("AWS_ENDPOINT_URL_EC2") or os.environ.get("AWS_ENDPOINT_URL")

    def ec2(self, spec: AwsTarget, region: str | None = None) -> Any:
        return self.client("ec2", region or spec.region, self.endpoint(spec))

    @staticmethod
    def regions(spec: AwsTarget) -> tuple[str, ...]:
        return (spec.region, *spec.copy_to)

    # --- before the build ---------------------------------------------------------------------

    @guarded("looking up the source AMI")
    def resolve(self, request: BakeRequest) -> AwsPrepared:
        """The concrete source AMI (an id, or the newest match of the filter), looked up now."""
        spec = self._spec(request)
        ec2 = self.ec2(spec)
        if request.parent is not None:
            ami = _location(request.parent, spec.region)
            image = self._describe_one(ec2, ami, what=f"parent {request.parent.ref}")
        else:
            source = request.project.config.images[request.eff.name].source
            chosen = source.of("aws", AwsSource) if source else None
            if chosen is None:
                raise ConfigError(f"image '{request.eff.name}' has no aws source")
            if chosen.ami:
                image = self._describe_one(ec2, chosen.ami, what="source AMI")
            elif chosen.filter is not None:
                flt = chosen.filter
                key = (spec.region, self.endpoint(spec), flt.owners, flt.name, flt.most_recent)
                if key not in self._resolved:  # images sharing a base filter look it up once
                    self._resolved[key] = self._newest(ec2, spec, flt)
                image = self._resolved[key]
            else:
                raise ConfigError(f"image '{request.eff.name}': source.aws needs 'ami' or 'filter'")
        ami = image["ImageId"]
        return AwsPrepared(
            source_ami=ami,
            endpoint=self.endpoint(spec) or "",
            base=ami,
            base_dependency=Dependency(
                name=f"ami:{image.get('Name', ami)}", uri=f"ec2:{spec.region}:{ami}", digest={"awsImageId": ami}
            ),
            parent=request.parent,
        )

    def _newest(self, ec2: Any, spec: AwsTarget, flt: Any) -> dict[str, Any]:
        found = self.paginate(
            ec2,
            Owners=list(flt.owners),
            Filters=[{"Name": "name", "Values": [flt.name]}, {"Name": "state", "Values": ["available"]}],
        )
        if not found:
            raise ProviderError(
                f"no AMI in {spec.region} matches name {flt.name!r} from owners {', '.join(flt.owners)}",
                hint="check chosen.filter in images.yaml and the region of the target",
            )
        found.sort(key=lambda i: (i.get("CreationDate", ""), i["ImageId"]))
        image: dict[str, Any] = found[-1] if flt.most_recent else found[0]
        return image

    def prepare(self, request: BakeRequest) -> AwsPrepared:
        resolved = self.resolve(request)
        pending = {
            "bakery:image": request.eff.name,
            "bakery:version": request.version,
            "bakery:target": request.eff.target,
            "bakery:state": "pending",
            "bakery:invocation": request.invocation,
        }
        return replace(resolved, build_tags=pending)

    def before_build(self, request: BakeRequest, skeleton: dict[str, Any]) -> AwsMarks:
        """Fail now, not after an AMI exists, if the tags cannot hold the provenance; and mark the
        AMI's description with this bake's invocation, which AWS sets at registration."""
        for key in request.eff.tags:
            if key.lower().startswith("aws:") or len(key) > 128:
                raise ConfigError(
                    f"tag {key!r} of image {request.eff.name}: AWS tag keys are at most 128 "
                    "characters and may not start with 'aws:'"
                )
        # Sized as the final document will be: the longest subject name and a finish time.
        final = provenance.finalize(
            skeleton,
            subject_name=f"ec2:{'x' * 20}:ami-{'0' * 17}",
            subject_digest={"awsImageId": f"ami-{'0' * 17}", "sha256": "0" * 64},
            finished="2000-01-01T00:00:00Z",
        )
        tags = provenance.aws_tags(provenance.stamp_of(final, state="complete"), request.eff.tags, final)
        # Besides: owner and heartbeat while the bake runs, the attestation, a revocation's two.
        extra = 2 + 1 + len(aws_trust.REVOCATION_TAGS)
        room = provenance.AWS_MAX_TAGS - len(tags) - extra
        if room < 0:
            raise ConfigError(
                f"image {request.eff.name}: {len(tags) + extra} tags exceed AWS's limit of {provenance.AWS_MAX_TAGS} "
                f"({len(request.eff.tags)} from images.yaml); remove {-room} of them"
            )
        description = provenance.aws_description(request.eff.image.description, request.invocation)
        if len(description) > provenance.AWS_DESCRIPTION_MAX:
            raise ConfigError(
                f"image {request.eff.name}: its description is {len(request.eff.image.description)} characters; "
                f"AMI descriptions hold {provenance.AWS_DESCRIPTION_MAX - provenance.AWS_MARK_LENGTH} "
                "beside bakery's mark"
            )
        return AwsMarks(
            image_description=description,
            ami_name=provenance.aws_ami_name(request.eff.name, request.version, request.eff.target, request.invocation),
        )

    # --- after the build ----------------------------------------------------------------------

    @guarded("reading the baked AMIs")
    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, dict[str, str]]:
        """The primary AMI, and the digest of the descriptor of every AMI the bake made (its
        copies, their snapshots and creation times), read now."""
        spec = self._spec(request)
        amis = self._baked(spec, artifacts)
        described = aws_trust.descriptor_of(
            aws_trust.read(self, spec, amis, ref=f"{request.eff.name}@{request.version}")
        )
        digest = {"awsImageId": amis[spec.region], "sha256": aws_trust.subject_digest(described)}
        return f"ec2:{spec.region}:{amis[spec.region]}", digest

    @guarded("tagging the baked AMIs")
    def publish(
        self,
        request: BakeRequest,
        prepared: Prepared,
        statement: dict[str, Any],
        inputs_digest: str,
        artifacts: list[str],
        attestation: str | None = None,
    ) -> ImageRecord:
        spec = self._spec(request)
        amis = self._baked(spec, artifacts)
        stamp = provenance.stamp_of(statement, state="complete")
        tags = provenance.aws_tags(stamp, request.eff.tags, statement)
        if attestation is not None:
            tags[provenance.AWS_ATTESTATION_TAG] = attestation
        legacy = not packer.wants_required_plugins(request.tools.get("packer", "1.6.6"))
        for region, ami in sorted(amis.items()):
            if legacy:  # Packer < 1.7 cannot ask for IMDSv2 at registration; set it before anyone launches
                self.ec2(spec, region).modify_image_attribute(ImageId=ami, ImdsSupport={"Value": "v2.0"})
            self.stamp(spec, region, ami, tags)
        return listing.record(request.eff.target, stamp, dict(amis), tags)

    def stamp(self, spec: AwsTarget, region: str, ami: str, tags: dict[str, str]) -> None:
        """Tag the AMI and its snapshots, the state last; read back and repair what did not stick
        (tags are eventually consistent: reads back off between attempts)."""
        ec2 = self.ec2(spec, region)
        body = {k: v for k, v in tags.items() if k != "bakery:state"}
        attempt = 0

        def missing_after_write() -> list[str]:
            nonlocal attempt
            image = self._describe_one(ec2, ami, what="baked AMI")
            missing = [r for r in [ami, *snapshots(image)] if not _has(self._tags_of(ec2, r, image), body)]
            if missing:
                if attempt:
                    self.reporter.note(f"repairing tags on {', '.join(missing)} in {region}")
                attempt += 1
                ec2.create_tags(Resources=missing, Tags=[{"Key": k, "Value": v} for k, v in body.items()])
            return missing

        if eventually(missing_after_write, attempts=5):
            raise ProviderError(f"tags did not stick on {ami} or its snapshots in {region} after 4 writes")
        image = self._describe_one(ec2, ami, what="baked AMI")
        ec2.create_tags(
            Resources=[ami, *snapshots(image)], Tags=[{"Key": "bakery:state", "Value": tags["bakery:state"]}]
        )
        # The heartbeat is only for bakes still running; a stale one on a complete AMI is harmless.
        with unless_gone():
            ec2.delete_tags(Resources=[ami], Tags=[{"Key": provenance.AWS_HEARTBEAT_TAG}])

    # --- reading ------------------------------------------------------------------------------

    @guarded("listing AMIs")
    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        spec = self.specs[target]
        # One image = one bake: its regional copies share the invocation. Two AMIs of one bake in
        # one region (an impostor that copied the invocation tag) are two claimants, each listed
        # with the bake's other copies and never folded into one: verification tells them apart.
        by_bake: dict[str, dict[str, list[tuple[str, dict[str, str]]]]] = defaultdict(lambda: defaultdict(list))
        marks: dict[str, list[str]] = {}
        for region in self.regions(spec):
            filters = [{"Name": "tag:bakery:target", "Values": [target]}]
            if name:
                filters.append({"Name": "tag:bakery:image", "Values": [name]})
            for image in self.paginate(self.ec2(spec, region), Owners=["self"], Filters=filters):
                tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
                if tags.get("bakery:state") != "complete":
                    continue
                bake = tags.get("bakery:invocation") or image["ImageId"]
                tags["bakery:registered"] = image.get("CreationDate", "")
                by_bake[bake][region].append((image["ImageId"], tags))
                marks[image["ImageId"]] = listing.revoked_marks(region, image, tags)
        records = []
        for regions in by_bake.values():
            for claimant in listing.claimants(regions):
                primary = claimant.get(spec.region) or next(iter(claimant.values()))
                stamp = provenance.aws_stamp(primary[1])
                amis = {r: a for r, (a, _) in claimant.items()}
                own = tuple(m for _, ami in sorted(amis.items()) for m in marks.get(ami, []))
                records.append(replace(listing.record(target, stamp, amis, primary[1]), revoked_marks=own))
        return records

    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        document = provenance.aws_document(record.extra.get("tags", {}))
        if document is None:
            raise ProviderError(f"{record.ref}: the provenance tags on {record.locations[0]} are incomplete")
        return document

    # --- trust (aws_trust.py) -----------------------------------------------------------------

    @guarded("reading the AMIs of an image")
    def descriptor(self, record: ImageRecord) -> dict[str, Any]:
        return aws_trust.descriptor(self, record)

    @guarded("reading the tags of an image's AMIs and snapshots")
    def claims(self, record: ImageRecord) -> list[Claim]:
        return aws_trust.claims(self, record)

    @guarded("marking AMIs revoked")
    def mark_revoked(self, record: ImageRecord, *, at: str, reason: str, replacement: ImageRecord | None) -> str:
        """AMI deprecation where the endpoint has it, tags otherwise (AWS's deprecation holds
        neither a reason nor a replacement: the registry's revocation does)."""
        return aws_trust.mark_revoked(self, record, at=at, reason=reason)

    @guarded("removing the revocation from AMIs")
    def unmark_revoked(self, record: ImageRecord) -> str:
        return aws_trust.unmark_revoked(self, record)

    # --- what bakes leave behind (aws_bakes.py) ------------------------------------------------

    @guarded("looking for AMIs of bakes")
    def marked(
        self, target: str, name: str, *, version: str | None = None, invocation: str | None = None
    ) -> list[Leftover]:
        return aws_bakes.marked(self, target, name, version=version, invocation=invocation)

    @guarded("writing the bake's heartbeat")
    def heartbeat(self, target: str, name: str, owner: Owner) -> None:
        aws_bakes.heartbeat(self, target, name, owner)

    @guarded("removing AMIs")
    def remove(self, leftover: Leftover) -> list[str]:
        return aws_bakes.remove(self, leftover)

    # --- prune (aws_prune.py) ------------------------------------------------------------------

    @guarded("reading what uses the AMIs")
    def usage(self, records: Sequence[ImageRecord]) -> list[Usage]:
        return aws_usage.usage(self, records)

    def prune_steps(
        self, record: ImageRecord, *, replacement: ImageRecord | None, now: str, policy: Prune
    ) -> Sequence[Step]:
        """Deprecate, deregister every copy, delete their snapshots (AWS has no ladder to climb)."""
        return [
            replace(s, run=guarded(f"pruning {record.ref}: {s.name}")(s.run))
            for s in aws_prune.prune_steps(self, record, now)
        ]

    def prune_next(self, record: ImageRecord, *, replacement: ImageRecord | None, now: str) -> str | None:
        return None

    def prune_restore(self, record: ImageRecord, *, act: bool) -> str | None:
        return None  # no ladder: an AMI a prune left stands whole and undeprecated only if abandoned

    @guarded("untagging AMIs")
    def prune_abandon(self, record: ImageRecord) -> list[str]:
        return aws_prune.abandon(self, record)

    # --- helpers ------------------------------------------------------------------------------

    def _baked(self, spec: AwsTarget, artifacts: list[str]) -> dict[str, str]:
        """{region: ami} Packer reported; ProviderError unless every region of the target has one."""
        amis = _artifact_amis(artifacts)
        missing = [r for r in self.regions(spec) if r not in amis]
        if missing:
            raise ProviderError(f"Packer reported no AMI in {', '.join(missing)} (artifacts: {artifacts or 'none'})")
        return amis

    def _spec(self, request: BakeRequest) -> AwsTarget:
        spec = request.project.config.targets[request.eff.target]
        if not isinstance(spec, AwsTarget):
            raise ConfigError(f"target '{request.eff.target}' is not an aws target")
        self.specs[request.eff.target] = spec
        return spec

    @staticmethod
    def paginate(ec2: Any, **kwargs: Any) -> list[dict[str, Any]]:
        images: list[dict[str, Any]] = []
        for page in ec2.get_paginator("describe_images").paginate(**kwargs):
            images += page.get("Images", [])
        return images

    def _describe_one(self, ec2: Any, ami: str, *, what: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            found = ec2.describe_images(ImageIds=[ami]).get("Images", [])
        except ClientError as exc:
            raise ProviderError(f"{what} {ami}: {exc.response['Error'].get('Message', exc)}") from None
        if not found:
            raise ProviderError(f"{what} {ami} does not exist (or is not visible to this account)")
        image: dict[str, Any] = found[0]
        return image

    @staticmethod
    def _tags_of(ec2: Any, resource: str, image: dict[str, Any]) -> dict[str, str]:
        if resource.startswith("ami-"):
            return {t["Key"]: t["Value"] for t in image.get("Tags", [])}
        found = ec2.describe_snapshots(SnapshotIds=[resource]).get("Snapshots", [])
        return {t["Key"]: t["Value"] for t in (found[0].get("Tags", []) if found else [])}


def _artifact_amis(artifacts: Iterable[str]) -> dict[str, str]:
    """'eu-west-1:ami-1,eu-central-1:ami-2' (Packer's artifact id) -> {region: ami}."""
    out = {}
    for artifact in artifacts:
        for pair in artifact.split(","):
            region, _, ami = pair.partition(":")
            if ami.startswith("ami-"):
                out[region] = ami
    return out


def _has(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in wanted.items())


def _location(record: ImageRecord, region: str) -> str:
    for location in record.locations:
        where, _, ami = location.partition(":")
        if where == region:
            return ami
    raise ProviderError(f"{record.ref} has no copy in {region}; add {region} to its target's copy_to")
