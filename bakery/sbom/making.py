"""The bake's side of SBOMs: the CycloneDX document made from what the provider read of the built
system, and its signed statement stored beside the image's provenance, bound to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bakery.progress import Reporter
from bakery.providers.base import PackageDb
from bakery.sbom import attest
from bakery.sbom.bom import build
from bakery.sbom.dpkg import parse_os_release, parse_status
from bakery.trust.context import TrustContext
from bakery.trust.testresults import Subject


@dataclass(frozen=True)
class Made:
    """An image's SBOM as made at bake time; without `bom`, `missing` says why there is none."""

    bom: dict[str, Any] | None
    packages: int = 0
    read_from: str = ""
    missing: str | None = None


def make(db: PackageDb, image: str, version: str, target: str, finished: str) -> Made:
    """The CycloneDX document of the system `db` was read from (finished at `finished`, RFC 3339).
    Raises PackageDbError when the database does not parse: the bake fails, an image is never
    recorded with a wrong SBOM."""
    if db.missing is not None:
        return Made(None, missing=db.missing)
    packages = parse_status(db.status)
    os = parse_os_release(db.os_release)
    stamp = datetime.fromisoformat(finished.replace("Z", "+00:00"))
    bom = build(packages, os, image=image, version=version, target=target, timestamp=stamp)
    return Made(bom, len(packages), db.read_from)


def store(trust: TrustContext, statement: dict[str, Any], provenance_digest: str, made: Made) -> str | None:
    """Sign and keep the SBOM of the image whose signed provenance is `statement` (its digest
    `provenance_digest`): its subject is the provenance's subject, annotated with that digest.
    Returns the digest of the SBOM statement stored (what the build's audit event names, and a
    reader holds the registry to). Without one, whatever an earlier, killed bake of that version
    left there goes, and None."""
    params = statement["predicate"]["buildDefinition"]["externalParameters"]
    if made.bom is None:
        remove(trust, params["target"], params["image"], params["version"])
        return None
    first = statement["subject"][0]
    subject = Subject(
        name=first["name"],
        sha256=first["digest"]["sha256"],
        image=params["image"],
        version=params["version"],
        target=params["target"],
        provenance=provenance_digest,
    )
    return attest.store(trust, subject, made.bom).digest


def remove(trust: TrustContext, target: str, name: str, version: str) -> None:
    attest.remove(trust, target, name, version)


def audit(trust: TrustContext, subject: str, made: Made, reporter: Reporter) -> None:
    """A bake without an SBOM says why, on the terminal and in the audit log (an SBOM made is
    its own record, in the registry)."""
    if made.bom is None:
        reporter.note(f"no SBOM for {subject}: {made.missing}")
        trust.record("sbom", subject, "skipped", details={"reason": made.missing})
