"""Who an image was built from. Two sources claim it: the signed statement (its
internalParameters.parent) and the image's own marks (the bakery:parent tag, a label, the local
catalog). Where the statement's signature verifies, its parent is authoritative; anywhere else
both claims are followed, never fewer: stripping a tag cannot hide a revoked ancestor.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from bakery.core import documents
from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError
from bakery.trust.attestation import Attestations


class Ancestry:
    """The parents each image claims, its attestation read once per image."""

    def __init__(self, attestations: Attestations) -> None:
        self.attestations = attestations
        self._claimed: dict[tuple[str, str], str | None] = {}

    def claimed(self, record: ImageRecord) -> str | None:
        """The parent the image's statement names (its signature not checked here: a claim)."""
        key = (record.target, record.ref)
        if key not in self._claimed:
            self._claimed[key] = self._read(record)
        return self._claimed[key]

    def parents(self, record: ImageRecord) -> list[str]:
        """Every parent claimed for `record`: its marks' and its statement's."""
        claims = [record.parent, self.claimed(record)]
        return list(dict.fromkeys(p for p in claims if p))

    def verified(self, record: ImageRecord, signed_parent: str | None) -> Callable[[ImageRecord], list[str]]:
        """Parents with `record`'s own taken from its verified statement (`signed_parent`), and
        every ancestor's claims followed."""
        return lambda r: ([signed_parent] if signed_parent else []) if r.ref == record.ref else self.parents(r)

    def _read(self, record: ImageRecord) -> str | None:
        try:
            envelope = self.attestations.get(record)
        except BakeryError:
            return None  # an unreadable attestation claims nothing; verify names it
        if envelope is None:
            return None
        return parent_in_payload(envelope.get("payload"))


def parent_in_payload(payload: object) -> str | None:
    """The parent a DSSE payload (base64 of an in-toto statement) names, or None."""
    if not isinstance(payload, str):
        return None
    try:
        statement = documents.parse_object(base64.b64decode(payload, validate=True))
    except (ValueError, binascii.Error):
        return None
    return parent_in_statement(statement)


def parent_in_statement(statement: object) -> str | None:
    try:
        parent = statement["predicate"]["buildDefinition"]["internalParameters"]["parent"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    return parent if isinstance(parent, str) and parent else None
