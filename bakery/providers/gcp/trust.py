"""What a GCP image is and says, for trust: the descriptor its signed provenance binds (project,
name, id, creation time and what it was made from), the claims its labels make, and its
revocation (GCP's own deprecation, with the replacement's link).

The descriptor holds only what never changes once an image exists: never labels, family,
description or deprecation status (images.patch and images.deprecate change those), so a
revocation or a relabel leaves the signed subject as it was.
"""

from __future__ import annotations

import binascii
import gzip
import zlib
from typing import TYPE_CHECKING, Any

from bakery.core import jcs, provenance
from bakery.core.catalog import ImageRecord
from bakery.core.text import shown
from bakery.errors import ProviderError
from bakery.providers.base import Claim
from bakery.providers.gcp.access import GcpAccess

if TYPE_CHECKING:
    from bakery.providers.gcp.api import Compute

# Image fields set at creation and never changed after: attribute -> key in the descriptor.
FIXED = {
    "source_disk": "sourceDisk",
    "source_disk_id": "sourceDiskId",
    "source_image": "sourceImage",
    "source_image_id": "sourceImageId",
    "source_snapshot": "sourceSnapshot",
    "source_snapshot_id": "sourceSnapshotId",
    "disk_size_gb": "diskSizeGb",
}
NAMES = {
    **{field: f"label {provenance.GCP_PREFIX}{field}" for field in provenance.STAMP_FIELDS},
    "attestation": f"label {provenance.GCP_ATTESTATION_LABEL}",
}


def descriptor_of(project: str, image: Any) -> dict[str, Any]:
    """The canonical description of one image as the Compute API shows it (numbers as strings:
    int64 ids do not fit JSON's exact integers)."""
    described = {
        "kind": "gcp",
        "project": project,
        "image": image.name,
        "id": str(image.id),
        "created": image.creation_timestamp,
    }
    for attribute, key in FIXED.items():
        value = getattr(image, attribute)
        if value:
            described[key] = str(value)
    return described


def digest_set(project: str, image: Any) -> dict[str, str]:
    """The provenance subject's digests: the image's id, and the sha256 (hex) of its descriptor."""
    described = jcs.digest(descriptor_of(project, image))
    return {"gceImageId": str(image.id), "sha256": described.removeprefix("sha256:")}


def attestation_of(labels: dict[str, str]) -> str | None:
    """The attestation digest in an image's label ('sha256:<hex>'); a label that is not a digest
    as it is (labels are written by hand too); None without the label."""
    label = labels.get(provenance.GCP_ATTESTATION_LABEL)
    if label is None:
        return None
    try:
        return provenance.gcp_read_digest(label)
    except ValueError:
        return label


def skeleton(description: str) -> dict[str, Any] | None:
    """The provenance Packer wrote into an image's description; None if there is none to read."""
    if provenance.DESCRIPTION_MARKER not in (description or ""):
        return None
    try:
        document = provenance.unpack(description.split(provenance.DESCRIPTION_MARKER, 1)[1])
    except (ValueError, binascii.Error, gzip.BadGzipFile, zlib.error, EOFError):
        return None
    return document if isinstance(document, dict) else None


def statement(project: str, image: Any, *, finished: str) -> dict[str, Any] | None:
    """The provenance statement of an image as signed: the description's, completed with its
    subject and finish time. None if the description holds no provenance."""
    known = skeleton(image.description)
    if known is None:
        return None
    return provenance.finalize(
        known, subject_name=f"gce:{project}/{image.name}", subject_digest=digest_set(project, image), finished=finished
    )


def located(record: ImageRecord) -> tuple[str, str]:
    project, _, name = record.locations[0].partition("/")
    return project, name


def live(provider: GcpAccess, record: ImageRecord) -> tuple[str, Any]:
    """(project, image) of `record` read now; ProviderError if the image is gone."""
    project, name = located(record)
    image = provider.compute(provider.specs[record.target]).find(project, name)
    if image is None:
        raise ProviderError(
            f"{record.ref}: GCP image {project}/{name} is gone (deleted, or not visible to these credentials)"
        )
    return project, image


def descriptor(provider: GcpAccess, record: ImageRecord) -> dict[str, Any]:
    return descriptor_of(*live(provider, record))


def claims(provider: GcpAccess, record: ImageRecord) -> list[Claim]:
    """What the image says in its labels and description. A label bakery cannot read is shown as
    it is, so a mismatch names it with its value."""
    project, image = live(provider, record)
    labels = dict(image.labels)
    stamp, unreadable = provider.read_stamp(image)
    for field in unreadable:
        stamp[field] = labels[provenance.GCP_PREFIX + field]
    document = statement(project, image, finished=stamp.get("created") or image.creation_timestamp)
    return [
        Claim(
            location=f"image {image.name} in {project}",
            stamp=stamp,
            names=NAMES,
            attestation=attestation_of(labels),
            document=document,
            problems=() if document is not None else ("its description holds no readable provenance",),
        )
    ]


def revoked_marks(project: str, image: Any) -> tuple[str, ...]:
    """What a GCP image says of its own revocation: a deprecation status other than ACTIVE."""
    if "deprecated" not in image:
        return ()
    state = str(image.deprecated.state or "ACTIVE")
    if state == "ACTIVE":
        return ()
    when = image.deprecated.deprecated or image.deprecated.obsolete or image.deprecated.deleted or ""
    since = f" from {shown(str(when)[:64])}" if when else ""
    return (f"{project}/{image.name} is {shown(state[:32])}{since}",)


def mark_revoked(provider: GcpAccess, record: ImageRecord, *, at: str, replacement: ImageRecord | None) -> str:
    """Deprecate the image (state DEPRECATED, from `at`, with the replacement's link)."""
    api = provider.compute(provider.specs[record.target])
    project, name = located(record)
    status = {"state": "DEPRECATED", "deprecated": at}
    instead = ""
    if replacement is not None:
        if replacement.kind != "gcp":
            raise ProviderError(f"{record.ref}: its replacement {replacement.ref} is not a GCP image")
        other_project, other = located(replacement)
        status["replacement"] = api.get(other_project, other, what=f"replacement {replacement.ref}").self_link
        instead = f", replaced by {other_project}/{other}"
    if not _set(api, project, name, status, record=record):
        return f"GCP: image {project}/{name} is already gone"
    return f"GCP: deprecated image {project}/{name} from {at}{instead}"


def unmark_revoked(provider: GcpAccess, record: ImageRecord) -> str:
    """Clear the image's deprecation (state ACTIVE)."""
    api = provider.compute(provider.specs[record.target])
    project, name = located(record)
    if not _set(api, project, name, {"state": "ACTIVE"}, record=record):
        return f"GCP: image {project}/{name} is already gone"
    return f"GCP: image {project}/{name} is no longer deprecated"


def _set(api: Compute, project: str, name: str, status: dict[str, str], *, record: ImageRecord) -> bool:
    """Set the deprecation status and check it was set; False if the image is gone."""
    if api.find(project, name) is None:
        return False
    image = api.deprecate(project, name, status)
    now = image.deprecated.state if "deprecated" in image else "ACTIVE"
    if (now or "ACTIVE") != status["state"]:
        raise ProviderError(f"{record.ref}: GCP image {project}/{name} is {now} after it was set {status['state']}")
    return True
