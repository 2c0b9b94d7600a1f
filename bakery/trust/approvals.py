"""Approvals in the registry: `bakery approve IMAGE@VERSION --for CHANNEL` signs, with the
approver's own key, an in-toto Statement (APPROVAL_PREDICATE) naming the image's provenance
digest, the channel, who and when, and an optional comment. One document per approving key, at
approvals/TARGET/IMAGE/VERSION/CHANNEL/KEYID.dsse.json (approving again replaces one's own).

What counts is decided when a promotion reads them (bakery/promote/gates.py): a signature by a
key that is not in trust.keys counts for nothing and is named; so does an approval by the key that
built the image or the one promoting it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bakery.core import documents
from bakery.core.jcs import jcs_bytes
from bakery.core.text import shown
from bakery.errors import TrustError
from bakery.registry.base import Blob, update
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, short, sign, signer_public_key, verify

PREFIX = "approvals/"
APPROVAL_PREDICATE = "https://bakery.dev/approval/v1"


def prefix_of(target: str, image: str, version: str, channel: str) -> str:
    return f"{PREFIX}{target}/{image}/{version}/{channel}/"


@dataclass(frozen=True)
class Approval:
    """One approval document as read: by a trusted key (`key` its name) or not (`problem`)."""

    keyid: str
    key: str  # the trusted key's name; '' when the signature did not count
    by: str
    time: str
    comment: str
    provenance: str
    problem: str = ""  # why it counts for nothing (untrusted key, bad signature, another image)
    envelope: dict[str, Any] = field(default_factory=dict, repr=False)  # as signed (a promotion embeds it)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "keyid": self.keyid, "by": self.by, "time": self.time, "comment": self.comment}


class Approvals:
    def __init__(self, trust: TrustContext) -> None:
        self.trust = trust

    def approve(
        self, target: str, image: str, version: str, channel: str, *, provenance: str, by: str, time: str, comment: str
    ) -> Approval:
        """Sign and store this machine's approval (replacing its earlier one)."""
        signer = self.trust.signer()
        key = signer_public_key(signer)
        key = next((k for k in self.trust.keys if k.keyid == key.keyid), key)  # named as trust.keys names it
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [
                {"name": f"{image}@{version} on {target}", "digest": {"sha256": provenance.removeprefix("sha256:")}}
            ],
            "predicateType": APPROVAL_PREDICATE,
            "predicate": {
                "channel": channel,
                "image": image,
                "version": version,
                "target": target,
                "provenance": provenance,
                "keyid": key.keyid,
                "by": by,
                "time": time,
                "comment": comment,
            },
        }
        envelope = sign(jcs_bytes(statement), PAYLOAD_TYPE, [signer])
        data = json.dumps(envelope, indent=2, sort_keys=True).encode()

        def change(_there: Blob | None) -> bytes:
            return data + b"\n"

        update(self.trust.store, prefix_of(target, image, version, channel) + f"{key.keyid}.dsse.json", change)
        return Approval(key.keyid, key.name, by, time, comment, provenance, envelope=envelope)

    def read(self, target: str, image: str, version: str, channel: str) -> list[Approval]:
        """Every approval of `image@version` on `target` for `channel`, each verified on its own."""
        store = self.trust.store
        prefix = prefix_of(target, image, version, channel)
        found = store.get_many(store.keys(prefix))
        return [self._one(key, blob.data, (channel, image, version, target)) for key, blob in sorted(found.items())]

    def _one(self, key: str, data: bytes, wanted: tuple[str, str, str, str]) -> Approval:
        named = key.rsplit("/", 1)[-1].removesuffix(".dsse.json")
        try:
            envelope = documents.parse_object(data)
        except ValueError as exc:
            return Approval(named, "", "?", "", "", "", problem=f"{key} is not a signed approval: {exc}")
        return self.check(envelope, wanted, named=named, where=key)

    def check(self, envelope: dict[str, Any], wanted: tuple[str, str, str, str], *, named: str, where: str) -> Approval:
        """The approval `envelope` (found at `where`, said to be by key `named`) as it counts for
        (channel, image, version, target) `wanted`: signed by the trusted key it names, or with the
        `problem` that makes it count for nothing."""
        key = where
        try:
            verified = verify(envelope, self.trust.keys, 1, payload_type=PAYLOAD_TYPE)
        except TrustError as exc:
            return Approval(named, "", "?", "", "", "", problem=f"key {short(named)}: {exc.message}")
        predicate = verified.document.get("predicate")
        if verified.document.get("predicateType") != APPROVAL_PREDICATE or not isinstance(predicate, dict):
            return Approval(named, "", "?", "", "", "", problem=f"{key} is not an approval ({APPROVAL_PREDICATE})")
        said = tuple(predicate.get(k) for k in ("channel", "image", "version", "target"))
        keyid = str(predicate.get("keyid", ""))
        signer = verified.signed_by[0]
        if said != wanted:
            return Approval(keyid, "", "?", "", "", "", problem=f"{key} (by {signer}) approves {shown(said)}")
        if keyid != named or not any(k.keyid == keyid and k.name in verified.signed_by for k in self.trust.keys):
            return Approval(keyid, "", "?", "", "", "", problem=f"{key} is not signed by the key it names")
        return Approval(
            keyid,
            signer,
            str(predicate.get("by", "")),
            str(predicate.get("time", "")),
            str(predicate.get("comment", "")),
            str(predicate.get("provenance", "")),
            envelope=dict(envelope),
        )
