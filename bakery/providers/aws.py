"""AWS target: AMIs baked by Packer's amazon-ebs builder, stamped with provenance tags.

The AMIs themselves are the catalog: bakery lists them by tag, one paginated call per region,
and writes its stamp (and the provenance document, in chunks) on every AMI, on each of its
snapshots and on every regional copy, then reads the tags back and repairs what is missing.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from bakery import provenance, render
from bakery.catalog import ImageRecord
from bakery.errors import ConfigError, ProviderError
from bakery.models import AwsTarget
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, ClientFactory, CloudProvider, Prepared
from bakery.retry import aws_config
from bakery.workspace import Workspace


def default_clients(service: str, region: str, endpoint: str | None) -> Any:
    import boto3

    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint, config=aws_config())


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(what: str) -> Callable[[F], F]:
    """Run a provider method with botocore's errors turned into ProviderError."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with _aws_errors(what):
                return method(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> AwsProvider:
    return AwsProvider(reporter, clients or default_clients)


class AwsProvider(CloudProvider):
    kind = "aws"
    spec_type = AwsTarget

    @staticmethod
    def endpoint(spec: AwsTarget) -> str | None:
        return spec.endpoint or os.environ.get("AWS_ENDPOINT_URL_EC2") or os.environ.get("AWS_ENDPOINT_URL")

    def ec2(self, spec: AwsTarget, region: str | None = None) -> Any:
        return self.client("ec2", region or spec.region, self.endpoint(spec))

    # --- before the build ---------------------------------------------------------------------

    @_guarded("looking up the source AMI")
    def resolve(self, request: BakeRequest) -> Prepared:
        """The concrete source AMI (an id, or the newest match of the filter), looked up now."""
        spec = self._spec(request)
        ec2 = self.ec2(spec)
        if request.parent is not None:
            ami = _location(request.parent, spec.region)
            image = self._describe_one(ec2, ami, what=f"parent {request.parent.ref}")
        else:
            source = request.project.config.images[request.eff.name].source
            assert source is not None and source.aws is not None
            if source.aws.ami:
                image = self._describe_one(ec2, source.aws.ami, what="source AMI")
            else:
                flt = source.aws.filter
                assert flt is not None
                key = (spec.region, self.endpoint(spec), flt.owners, flt.name, flt.most_recent)
                if key not in self._resolved:  # images sharing a base filter look it up once
                    self._resolved[key] = self._newest(ec2, spec, flt)
                image = self._resolved[key]
        ami = image["ImageId"]
        variables: dict[str, Any] = {"source_ami": ami}
        if self.endpoint(spec):
            variables["endpoint"] = self.endpoint(spec)
        return Prepared(
            variables=variables,
            base=ami,
            base_dependency={
                "name": f"ami:{image.get('Name', ami)}",
                "uri": f"ec2:{spec.region}:{ami}",
                "digest": {"awsImageId": ami},
            },
            parent=request.parent,
        )

    def _newest(self, ec2: Any, spec: AwsTarget, flt: Any) -> dict[str, Any]:
        found = self._paginate(
            ec2,
            Owners=list(flt.owners),
            Filters=[{"Name": "name", "Values": [flt.name]}, {"Name": "state", "Values": ["available"]}],
        )
        if not found:
            raise ProviderError(
                f"no AMI in {spec.region} matches name {flt.name!r} from owners {', '.join(flt.owners)}",
                hint="check source.aws.filter in images.yaml and the region of the target",
            )
        found.sort(key=lambda i: (i.get("CreationDate", ""), i["ImageId"]))
        image: dict[str, Any] = found[-1] if flt.most_recent else found[0]
        return image

    def prepare(self, request: BakeRequest) -> Prepared:
        resolved = self.resolve(request)
        pending = {
            "bakery:image": request.eff.name,
            "bakery:version": request.version,
            "bakery:target": request.eff.target,
            "bakery:state": "pending",
            "bakery:invocation": request.workdir.name.rsplit("-", 1)[-1],
        }
        return Prepared(
            variables={**resolved.variables, "build_tags": pending},
            base=resolved.base,
            base_dependency=resolved.base_dependency,
            parent=resolved.parent,
        )

    # --- after the build ----------------------------------------------------------------------

    def before_build(self, request: BakeRequest, skeleton: dict[str, Any]) -> dict[str, Any]:
        """Fail now, not after an AMI exists, if the tags cannot hold the provenance."""
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
            subject_digest={"awsImageId": f"ami-{'0' * 17}"},
            finished="2000-01-01T00:00:00Z",
        )
        provenance.aws_tags(provenance.stamp_of(final, state="complete"), request.eff.tags, final)
        return {}

    def discard(self, request: BakeRequest, artifacts: list[str]) -> None:
        spec = self._spec(request)
        for region, ami in sorted(_artifact_amis(artifacts).items()):
            try:
                with _aws_errors(f"removing {ami} in {region}"):
                    self._remove(spec, region, ami)
            except ProviderError as exc:
                self.reporter.note(f"{exc.message}: remove it by hand")

    @_guarded("reading the baked AMI")
    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, dict[str, str]]:
        spec = self._spec(request)
        amis = _artifact_amis(artifacts)
        if spec.region not in amis:
            raise ProviderError(f"Packer reported no AMI in {spec.region} (artifacts: {artifacts or 'none'})")
        return f"ec2:{spec.region}:{amis[spec.region]}", {"awsImageId": amis[spec.region]}

    @_guarded("tagging the baked AMIs")
    def publish(
        self,
        request: BakeRequest,
        prepared: Prepared,
        statement: dict[str, Any],
        inputs_digest: str,
        artifacts: list[str],
    ) -> ImageRecord:
        spec = self._spec(request)
        amis = _artifact_amis(artifacts)
        stamp = provenance.stamp_of(statement, state="complete")
        tags = provenance.aws_tags(stamp, request.eff.tags, statement)
        legacy = not render.wants_required_plugins(request.tools.get("packer", "1.6.6"))
        for region, ami in sorted(amis.items()):
            if legacy:  # Packer < 1.7 cannot ask for IMDSv2 at registration; set it before anyone launches
                self.ec2(spec, region).modify_image_attribute(ImageId=ami, ImdsSupport={"Value": "v2.0"})
            self.stamp(spec, region, ami, tags)
        return self._record(request.eff.target, stamp, {r: a for r, a in amis.items()}, tags)

    def stamp(self, spec: AwsTarget, region: str, ami: str, tags: dict[str, str]) -> None:
        """Tag the AMI and its snapshots, the state last; read back and repair what did not stick."""
        ec2 = self.ec2(spec, region)
        body = {k: v for k, v in tags.items() if k != "bakery:state"}
        for attempt in range(4):
            image = self._describe_one(ec2, ami, what="baked AMI")
            resources = [ami, *_snapshots(image)]
            missing = [r for r in resources if not _has(self._tags_of(ec2, r, image), body)]
            if not missing:
                break
            if attempt == 3:
                raise ProviderError(f"tags did not stick on {', '.join(missing)} in {region} after 3 writes")
            if attempt:
                self.reporter.note(f"repairing tags on {', '.join(missing)} in {region}")
            ec2.create_tags(Resources=missing, Tags=[{"Key": k, "Value": v} for k, v in body.items()])
        ec2.create_tags(Resources=resources, Tags=[{"Key": "bakery:state", "Value": tags["bakery:state"]}])

    # --- reading ------------------------------------------------------------------------------

    @_guarded("listing AMIs")
    def images(self, target: str, name: str | None = None, *, include_pending: bool = False) -> list[ImageRecord]:
        spec = self.specs[target]
        by_version: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = defaultdict(dict)
        for region in (spec.region, *spec.copy_to):
            filters = [{"Name": "tag:bakery:target", "Values": [target]}]
            if name:
                filters.append({"Name": "tag:bakery:image", "Values": [name]})
            for image in self._paginate(self.ec2(spec, region), Owners=["self"], Filters=filters):
                tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
                if tags.get("bakery:state") != "complete" and not include_pending:
                    continue
                key = (tags.get("bakery:image", ""), tags.get("bakery:version", ""))
                tags["bakery:registered"] = image.get("CreationDate", "")
                by_version[key][region] = (image["ImageId"], tags)
        records = []
        for (_image, _version), regions in by_version.items():
            primary = regions.get(spec.region) or next(iter(regions.values()))
            stamp = provenance.aws_stamp(primary[1])
            records.append(self._record(target, stamp, {r: a for r, (a, _) in regions.items()}, primary[1]))
        return records

    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        document = provenance.aws_document(record.extra.get("tags", {}))
        if document is None:
            raise ProviderError(f"{record.ref}: the provenance tags on {record.locations[0]} are incomplete")
        return document

    def clean_up(self, record: ImageRecord) -> None:
        """Deregister a half-recorded version everywhere, with its snapshots."""
        spec = self.specs[record.target]
        for location in record.locations:
            region, ami = location.split(":", 1)
            with _aws_errors(f"removing {ami} in {region}"):
                self._remove(spec, region, ami)

    def _remove(self, spec: AwsTarget, region: str, ami: str) -> None:
        ec2 = self.ec2(spec, region)
        images = self._paginate(ec2, ImageIds=[ami])
        ec2.deregister_image(ImageId=ami)
        for snapshot in (s for image in images for s in _snapshots(image)):
            ec2.delete_snapshot(SnapshotId=snapshot)

    # --- helpers ------------------------------------------------------------------------------

    def _spec(self, request: BakeRequest) -> AwsTarget:
        spec = request.project.config.targets[request.eff.target]
        assert isinstance(spec, AwsTarget)
        self.specs[request.eff.target] = spec
        return spec

    @staticmethod
    def _paginate(ec2: Any, **kwargs: Any) -> list[dict[str, Any]]:
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

    @staticmethod
    def _record(target: str, stamp: dict[str, str], amis: dict[str, str], tags: dict[str, str]) -> ImageRecord:
        return ImageRecord(
            name=stamp.get("image", ""),
            version=stamp.get("version", ""),
            target=target,
            kind="aws",
            inputs_digest=stamp.get("inputs-digest", ""),
            created=stamp.get("created", ""),
            base=stamp.get("base", ""),
            parent=stamp.get("parent") or None,
            locations=tuple(f"{region}:{ami}" for region, ami in sorted(amis.items())),
            subject_sha256=None,
            extra={
                "tags": {k: v for k, v in tags.items() if k != "bakery:registered"},
                "state": stamp.get("state", ""),
                "invocation": stamp.get("invocation", ""),
                "registered": tags.get("bakery:registered", ""),
            },
        )


def _artifact_amis(artifacts: Iterable[str]) -> dict[str, str]:
    """'eu-west-1:ami-1,eu-central-1:ami-2' (Packer's artifact id) -> {region: ami}."""
    out = {}
    for artifact in artifacts:
        for pair in artifact.split(","):
            region, _, ami = pair.partition(":")
            if ami.startswith("ami-"):
                out[region] = ami
    return out


def _snapshots(image: dict[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def _has(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in wanted.items())


def _location(record: ImageRecord, region: str) -> str:
    for location in record.locations:
        where, _, ami = location.partition(":")
        if where == region:
            return ami
    raise ProviderError(f"{record.ref} has no copy in {region}; add {region} to its target's copy_to")


@contextlib.contextmanager
def _aws_errors(what: str) -> Iterator[None]:
    """botocore's errors (no credentials, endpoint down, API refusals) as a ProviderError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ProviderError(f"AWS: {what}: {error.get('Code', '')} {error.get('Message', exc)}".strip()) from exc
    except BotoCoreError as exc:
        raise ProviderError(f"AWS: {what}: {exc}", hint="check AWS credentials, region and endpoint") from exc
