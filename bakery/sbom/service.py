"""`bakery sbom` and `bakery diff`: an image's signed SBOM, checked against its verified
provenance, and what changed between two images (packages and the inputs of their bakes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bakery.core.catalog import ImageRecord
from bakery.errors import TrustError
from bakery.sbom import attest, diff
from bakery.sbom.dpkg import Package
from bakery.trust.attestation import payload_digest
from bakery.trust.signing import PAYLOAD_TYPE, verify
from bakery.trust.verify import Verifier

# The checks of `bakery verify` that say the provenance is trusted and is this image's as it is
# now; a revocation or failed tests do not change what is inside it.
PROVENANCE_CHECKS = ("attestation", "signature", "statement", "subject")


@dataclass(frozen=True)
class Provenanced:
    """An image with its verified provenance statement and that statement's digest."""

    record: ImageRecord
    statement: dict[str, Any]
    digest: str


@dataclass(frozen=True)
class ImageSbom:
    ref: str
    target: str
    provenance: str  # the digest of the provenance statement it is bound to
    key: str  # where it is in the registry
    signed_by: tuple[str, ...]
    system: str
    packages: tuple[Package, ...]
    document: dict[str, Any]  # the CycloneDX document


@dataclass(frozen=True)
class ImageDiff:
    target: str
    before: str
    after: str
    packages: diff.PackageDiff
    inputs: tuple[diff.InputChange, ...]


class Sboms:
    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.trust = verifier.trust

    def provenanced(self, ref: str, target: str | None) -> Provenanced:
        """The image `ref` names, with its provenance verified (signed by trusted keys, about this
        image, its subject the image as it is now). Raises UsageError (no such image) or
        TrustError naming every check that failed."""
        record, records = self.verifier.record(ref, target)
        verification = self.verifier.verify_record(record, records)
        problems = [f"{c.name}: {c.detail}" for c in verification.checks if c.name in PROVENANCE_CHECKS and not c.ok]
        envelope = self.verifier.attestations.get(record) if not problems else None
        if envelope is None or verification.digest is None or payload_digest(envelope) != verification.digest:
            raise TrustError(
                f"{record.ref} on {record.target}: its provenance does not verify: "
                + ("; ".join(problems) or "its attestation changed while it was read"),
                hint=f"bakery verify {record.ref} --target {record.target} says more",
            )
        verified = verify(envelope, self.trust.keys, self.trust.threshold, payload_type=PAYLOAD_TYPE)
        return Provenanced(record, verified.document, verification.digest)

    def show(self, ref: str, target: str | None) -> ImageSbom:
        """The image's SBOM, trusted: signed by a trusted key and bound to its verified provenance.
        Raises TrustError (exit 1) when there is none or it is not trusted."""
        image = self.provenanced(ref, target)
        return self._sbom(image)

    def _sbom(self, image: Provenanced) -> ImageSbom:
        record = image.record
        status = attest.read(self.trust, record.target, record.name, record.version, image.digest)
        if status.state != "present" or status.document is None:
            raise TrustError(
                f"{record.ref} on {record.target}: {status.detail}",
                hint="an SBOM is made by the bake; bake again to have one"
                if status.state == "none"
                else "it is not the SBOM a trusted key made for this image, as the audit log records it: restore "
                "the registry from a backup, or bake again (`bakery audit verify` checks the log)",
            )
        return ImageSbom(
            record.ref,
            record.target,
            image.digest,
            status.key,
            status.signed_by,
            status.system,
            status.packages,
            status.document,
        )

    def diff(self, before: str, after: str, target: str | None) -> ImageDiff:
        """What changed from image `before` to image `after` (both IMAGE@VERSION, on one target).
        Raises TrustError when either's provenance or SBOM is not trusted."""
        a = self.provenanced(before, target)
        b = self.provenanced(after, target or a.record.target)
        sbom_a, sbom_b = self._sbom(a), self._sbom(b)
        return ImageDiff(
            a.record.target,
            a.record.ref,
            b.record.ref,
            diff.packages(sbom_a.packages, sbom_b.packages),
            diff.inputs(a.statement, b.statement),
        )
