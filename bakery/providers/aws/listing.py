"""How AMIs become images in bakery's catalog: one image per bake (its regional copies share the
invocation tag), two claimants where AMIs claim one bake twice in a region, and what each AMI
says of its own revocation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bakery.core import provenance
from bakery.core.catalog import ImageRecord
from bakery.core.text import shown


def record(target: str, stamp: dict[str, str], amis: dict[str, str], tags: dict[str, str]) -> ImageRecord:
    attestation = tags.get(provenance.AWS_ATTESTATION_TAG)
    signed = {"attestation": attestation} if attestation else {}
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
            **signed,
        },
    )


def revoked_marks(region: str, image: Mapping[str, Any], tags: Mapping[str, str]) -> list[str]:
    """What one AMI says of its own revocation (describe_images' answer and its tags), shown
    clean: its deprecation time and bakery's revoked tag."""
    out = []
    deprecated = image.get("DeprecationTime")
    if deprecated:
        out.append(f"{region}:{image['ImageId']} is deprecated from {shown(str(deprecated)[:64])}")
    if provenance.AWS_REVOKED_TAG in tags:
        value = shown(str(tags[provenance.AWS_REVOKED_TAG])[:64])
        out.append(f"{region}:{image['ImageId']} is tagged {provenance.AWS_REVOKED_TAG}={value}")
    return out


def claimants(
    regions: dict[str, list[tuple[str, dict[str, str]]]], limit: int = 16
) -> list[dict[str, tuple[str, dict[str, str]]]]:
    """The images one bake's AMIs make: one per choice of AMI in each region (one, unless AMIs
    claim the bake twice in a region), at most `limit` (each a conflict `bakery images` names)."""
    out: list[dict[str, tuple[str, dict[str, str]]]] = [{}]
    for region, amis in sorted(regions.items()):
        out = [{**partial, region: ami} for partial in out for ami in sorted(amis, key=lambda a: a[0])][:limit]
    return out
