"""The Packer variables of a googlecompute bake, and what the GCP provider resolves for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bakery.config.kinds import TargetSpec, typed
from bakery.config.load import EffectiveImage
from bakery.config.targets.gcp import GcpSource, GcpTarget
from bakery.core.provenance import gcp_labels
from bakery.providers.base import BuildMarks, PackerVariables, Prepared, Preview, per_bake

PREVIEW_LABELS = {"bakery-preview": "true"}  # on what a hand-built offline render makes; never a bake's marks


@dataclass(frozen=True, kw_only=True)
class GcpPrepared(Prepared):
    """The source image as resolved (a family's current image), and the project that holds it."""

    source_image: str = ""
    source_image_project_id: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GcpMarks(BuildMarks):
    """What Packer sets when it creates the image: the description (the image's own, then the
    provenance known so far) and bakery's labels (the pending stamp, the invocation, the owner)."""

    image_description: str
    gcp_build_labels: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class GcpVariables(PackerVariables):
    project_id: str
    zone: str
    machine_type: str
    source_image: str
    source_image_family: str
    source_image_project_id: tuple[str, ...]
    gcp_image_name: str = per_bake()
    image_family: str
    image_tags: Mapping[str, str]  # the image's tags as GCP labels
    network: str
    subnetwork: str
    service_account_email: str
    disk_size: int
    ssh_username: str
    use_internal_ip: bool
    network_tags: tuple[str, ...]
    gcp_build_labels: Mapping[str, str] = per_bake()
    image_description: str | None = per_bake(default=None)


def packer_variables(
    eff: EffectiveImage, spec: TargetSpec, version: str, prepared: Prepared | None, marks: BuildMarks | None
) -> GcpVariables:
    gcp = typed(spec, GcpTarget, f"target '{eff.target}'")
    found = prepared if isinstance(prepared, GcpPrepared) else None
    mark = marks if isinstance(marks, GcpMarks) else None
    source = eff.image.source.of("gcp", GcpSource) if eff.image.source else None
    image = (found.source_image if found else "") or (source.image if source else "") or ""
    family = "" if image else (source.family or "" if source else "")
    projects = (found.source_image_project_id if found else ()) or (
        (source.project,) if source and source.project else ()
    )
    if not image and eff.image.parent:
        # Nothing resolved (an offline render): a child starts from its parent's newest image,
        # which Packer finds as the current image of the family every bake of the parent joins.
        family, projects = eff.image.parent, (gcp.project,)
    return GcpVariables(
        project_id=gcp.project,
        zone=gcp.zone,
        machine_type=gcp.machine_type,
        source_image=image,
        source_image_family=family,
        source_image_project_id=projects,
        gcp_image_name=f"{eff.name}-{version.replace('.', '-')}",
        image_family=eff.name,
        image_tags=gcp_labels(eff.tags),
        network=gcp.network or "",
        subnetwork=gcp.subnetwork or "",
        service_account_email=gcp.service_account_email or "",
        disk_size=gcp.disk_size,
        ssh_username=gcp.ssh_username,
        use_internal_ip=gcp.use_internal_ip,
        network_tags=gcp.network_tags,
        gcp_build_labels=dict(mark.gcp_build_labels) if mark else {},
        image_description=mark.image_description if mark else None,
    )


def preview(eff: EffectiveImage, spec: TargetSpec, out: Path) -> Preview:
    """An offline render: the declared source or family (a child: its parent's family); the image
    a `packer build` of it would make is labelled bakery-preview and described as a preview, with
    none of a bake's labels (invocation, state): bakery never records it."""
    typed(spec, GcpTarget, f"target '{eff.target}'")
    description = f"{eff.image.description} [bakery preview: not recorded]".lstrip()
    return Preview(marks=GcpMarks(image_description=description, gcp_build_labels=PREVIEW_LABELS))
