"""The Packer variables of an amazon-ebs bake, and what the AWS provider resolves for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bakery.config.kinds import TargetSpec, typed
from bakery.config.load import EffectiveImage
from bakery.config.targets.aws import AwsSource, AwsTarget
from bakery.providers.base import BuildMarks, PackerVariables, Prepared, Preview, per_bake

PREVIEW_TAGS = {"bakery:preview": "true"}  # on what a hand-built offline render makes; never a bake's marks


@dataclass(frozen=True, kw_only=True)
class AwsPrepared(Prepared):
    """The source AMI as resolved (an id, or the newest match of the filter), the endpoint the
    provider talks to, and the tags of a bake in progress."""

    source_ami: str = ""
    endpoint: str = ""
    build_tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AwsMarks(BuildMarks):
    """The bake's mark where AWS writes it at registration: the AMI's description and name."""

    image_description: str
    ami_name: str


@dataclass(frozen=True, kw_only=True)
class AwsVariables(PackerVariables):
    region: str
    source_ami: str
    source_ami_filter_name: str
    source_ami_filter_owners: tuple[str, ...]
    source_ami_most_recent: bool
    instance_type: str
    subnet_id: str
    vpc_id: str
    security_group_ids: tuple[str, ...]
    iam_instance_profile: str
    encrypt_boot: bool
    kms_key_id: str
    volume_size: int
    ssh_username: str
    ssh_interface: str
    ami_regions: tuple[str, ...]
    ami_users: tuple[str, ...]
    custom_endpoint_ec2: str = per_bake()  # where this machine reaches EC2
    build_tags: Mapping[str, str] = per_bake()
    communicator: str
    # The AMI's name carries the bake's invocation: the one mark AWS sets when CreateImage is
    # called (Packer sets descriptions and tags only later), and the copies inherit it.
    ami_name: str = per_bake()
    image_description: str | None = per_bake(default=None)  # the description with the bake's mark


def packer_variables(
    eff: EffectiveImage, spec: TargetSpec, version: str, prepared: Prepared | None, marks: BuildMarks | None
) -> AwsVariables:
    aws = typed(spec, AwsTarget, f"target '{eff.target}'")
    found = prepared if isinstance(prepared, AwsPrepared) else None
    source = eff.image.source.of("aws", AwsSource) if eff.image.source else None
    resolved_ami = found.source_ami if found else ""
    flt = source.filter if source and not resolved_ami else None
    filter_name, owners, most_recent = (flt.name, tuple(flt.owners), flt.most_recent) if flt else ("", (), True)
    if not resolved_ami and eff.image.parent:
        # Nothing resolved (an offline render): a child starts from its parent's newest AMI in this
        # account, which Packer finds by the name every bake gives it (IMAGE-VERSION-TARGET-INVOCATION).
        filter_name, owners = f"{eff.image.parent}-*-{eff.target}-*", ("self",)
    mark = marks if isinstance(marks, AwsMarks) else None
    return AwsVariables(
        region=aws.region,
        source_ami=resolved_ami or (source.ami if source else "") or "",
        source_ami_filter_name=filter_name,
        source_ami_filter_owners=owners,
        source_ami_most_recent=most_recent,
        instance_type=aws.instance_type,
        subnet_id=aws.subnet_id or "",
        vpc_id=aws.vpc_id or "",
        security_group_ids=aws.security_group_ids,
        iam_instance_profile=aws.iam_instance_profile or "",
        encrypt_boot=aws.encrypted,
        kms_key_id=aws.kms_key_id or "",
        volume_size=aws.volume_size,
        ssh_username=aws.ssh_username,
        ssh_interface=aws.ssh_interface,
        ami_regions=aws.copy_to,
        ami_users=aws.share_with,
        custom_endpoint_ec2=(found.endpoint if found else "") or aws.endpoint or "",
        build_tags=dict(found.build_tags) if found else {},
        communicator=aws.communicator,
        ami_name=(mark.ami_name if mark else "") or f"{eff.name}-{version}",
        image_description=mark.image_description if mark else None,
    )


def preview(eff: EffectiveImage, spec: TargetSpec, out: Path) -> Preview:
    """An offline render: nothing resolved (the declared source, or Packer's filter), no endpoint;
    the AMI and snapshots a `packer build` of it would make are tagged bakery:preview and described
    as a preview. They carry none of a bake's marks (invocation, state): bakery never records them."""
    typed(spec, AwsTarget, f"target '{eff.target}'")
    return Preview(
        prepared=AwsPrepared(base="", base_dependency=None, build_tags=PREVIEW_TAGS),
        # ami_name "": IMAGE-VERSION, the preview version
        marks=AwsMarks(
            image_description=f"{eff.image.description} [bakery preview: not recorded]".lstrip(), ami_name=""
        ),
    )
