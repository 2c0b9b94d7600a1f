"""Signed provenance in the registry: one DSSE envelope per recorded image, at
attestations/TARGET/IMAGE/VERSION.dsse.json, whose payload is the image's in-toto Statement in
canonical JSON. The image itself carries the payload's digest (the statement digest), which a
co-signature does not change."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bakery.core import documents
from bakery.core.catalog import ImageRecord
from bakery.core.jcs import jcs_bytes, sha256
from bakery.errors import BakeryError, Conflict, TrustError
from bakery.registry.base import Blob, update
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, cosign, sign, signer_public_key


@dataclass(frozen=True)
class Signed:
    envelope: dict[str, Any]
    digest: str  # sha256 of the payload: the statement as signed, in canonical JSON
    keyid: str
    key_name: str


def key_of(target: str, name: str, version: str) -> str:
    return f"attestations/{target}/{name}/{version}.dsse.json"


def record_key(record: ImageRecord) -> str:
    return key_of(record.target, record.name, record.version)


def payload_digest(envelope: dict[str, Any]) -> str:
    """The statement digest of an envelope (its payload's sha256), without trusting it."""
    import base64
    import binascii

    try:
        return sha256(base64.b64decode(envelope["payload"], validate=True))
    except (KeyError, TypeError, binascii.Error):
        raise TrustError("the attestation is not a DSSE envelope (no base64 payload)") from None


class Attestations:
    def __init__(self, trust: TrustContext) -> None:
        self.trust = trust

    def sign(self, statement: dict[str, Any]) -> Signed:
        """A DSSE envelope over `statement` (canonical JSON) by this machine's signer."""
        signer = self.trust.signer()
        payload = jcs_bytes(statement)
        key = signer_public_key(signer)
        return Signed(sign(payload, PAYLOAD_TYPE, [signer]), sha256(payload), key.keyid, key.name)

    def put(
        self, target: str, name: str, version: str, envelope: dict[str, Any], *, recorded: Callable[[], bool]
    ) -> None:
        """Store the envelope of a new image: create-only, so an attestation is never replaced by
        another statement, unless the one there is an orphan (`recorded()` says no image carries
        that version: a bake killed between this write and its record left it). Raises BakeryError
        if an image of that version is recorded already."""
        key = key_of(target, name, version)
        try:
            self.trust.store.create(key, _bytes(envelope))
            return
        except Conflict:
            pass
        there = self.trust.store.get(key)
        if there is not None and not recorded():
            self.trust.store.replace(key, _bytes(envelope), version=there.version)
            return
        raise BakeryError(
            f"{name}@{version} on {target} already has an attestation in {self.trust.store.where}",
            hint="a version is never reused; another bake recorded it meanwhile: bake again",
        )

    def remove(self, target: str, name: str, version: str) -> None:
        self.trust.store.delete(key_of(target, name, version))

    def get(self, record: ImageRecord) -> dict[str, Any] | None:
        blob = self.trust.store.get(record_key(record))
        return None if blob is None else self._parsed(record, blob.data)

    def _parsed(self, record: ImageRecord, raw: bytes) -> dict[str, Any]:
        try:
            return documents.parse_object(raw)
        except ValueError as exc:
            raise TrustError(
                f"the attestation of {record.ref} ({record_key(record)} in {self.trust.store.where}) is not "
                f"a DSSE envelope: {exc}",
                hint="bake the image again, or remove the file if it is not bakery's",
            ) from None

    def cosign(self, record: ImageRecord) -> Signed:
        """Add this machine's signature to the image's envelope (for a threshold above 1). The
        payload is unchanged, so the digest on the image still matches. Raises TrustError when
        the image has no attestation."""
        signer = self.trust.signer()
        key = signer_public_key(signer)
        signed: list[dict[str, Any]] = []

        def add_signature(there: Blob | None) -> bytes:
            if there is None:
                raise TrustError(f"{record.ref} on {record.target} has no attestation to co-sign")
            signed[:] = [cosign(self._parsed(record, there.data), signer)]
            return _bytes(signed[0])

        update(self.trust.store, record_key(record), add_signature, attempts=8)
        return Signed(signed[0], payload_digest(signed[0]), key.keyid, key.name)


def _bytes(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n"
