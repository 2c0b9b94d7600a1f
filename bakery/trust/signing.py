"""DSSE envelopes: signing a payload, co-signing it, and verifying it against trusted keys.

The envelope format, its Pre-Authentication Encoding and every signature check are
securesystemslib's; this module decides what counts (keys listed in trust.keys, distinct keys up to
the threshold) and says in words what did not. The payload is parsed as JSON only once enough
trusted signatures have checked, so a forged payload never reaches a parser.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bakery.core import documents
from bakery.errors import TrustError

if TYPE_CHECKING:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import Signer, SSlibKey

__all__ = [
    "AUDIT_PAYLOAD_TYPE",
    "PAYLOAD_TYPE",
    "PublicKey",
    "Signer",
    "Verified",
    "cosign",
    "short",
    "sign",
    "signer_public_key",
    "verify",
    "verify_many",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
AUDIT_PAYLOAD_TYPE = "application/vnd.bakery.audit+json"


def __getattr__(name: str) -> Any:
    """`Signer`, securesystemslib's, imported on first use: securesystemslib.signer loads boto3
    and google-cloud-kms (for KMS signers of its own), which `bakery --help` must not wait for."""
    if name == "Signer":
        from securesystemslib.signer import Signer

        return Signer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class PublicKey:
    """A key whose signatures may count: how messages name it, its keyid, the key itself."""

    name: str  # trust.keys[].name, "workspace key", or a KMS key's id
    keyid: str  # securesystemslib's keyid (sha256 of the key's canonical form)
    key: SSlibKey


@dataclass(frozen=True)
class Verified:
    payload: bytes
    document: dict[str, Any]  # json.loads(payload), parsed only after the signatures checked
    signed_by: tuple[str, ...]  # names of the trusted keys whose signatures verified


def short(keyid: str) -> str:
    """A keyid as messages show it: its first 8 hex digits."""
    return keyid[:8] + "…"


def sign(payload: bytes, payload_type: str, signers: Sequence[Signer]) -> dict[str, Any]:
    """A DSSE envelope (its JSON form) over `payload`, signed by each of `signers` over the PAE
    bytes. A signer's own errors (a KMS refusing) pass through as they are."""
    from securesystemslib.dsse import Envelope

    if not signers:
        raise ValueError("sign() needs at least one signer")
    envelope = Envelope(payload, payload_type, {})
    for signer in signers:
        envelope.sign(signer)
    return _as_json(envelope)


def cosign(envelope: Mapping[str, Any], signer: Signer) -> dict[str, Any]:
    """`envelope` with one more signature, by `signer`, over the same payload (replacing one
    that the same key made before). Raises TrustError if `envelope` is not DSSE JSON."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import Signature

    parsed = _parse(envelope)
    signatures = {sig.keyid: Signature(sig.keyid, sig.raw.hex()) for sig in parsed.signatures}
    out = Envelope(parsed.payload, parsed.payload_type, signatures)
    out.sign(signer)
    return _as_json(out)


def signer_public_key(signer: Signer) -> PublicKey:
    """The signer's public key, named as the signer names itself (bakery's signers carry a
    `name`: the key file, "workspace key", the KMS key), else by its keyid."""
    from securesystemslib.signer import SSlibKey

    key = signer.public_key
    if not isinstance(key, SSlibKey):
        raise TypeError(f"bakery signs with SSlibKey keys, not {type(key).__name__}")
    name = getattr(signer, "name", None) or f"key {short(key.keyid)}"
    return PublicKey(str(name), key.keyid, key)


def verify(envelope: Mapping[str, Any], keys: Sequence[PublicKey], threshold: int, *, payload_type: str) -> Verified:
    """The envelope's payload, once signatures by at least `threshold` distinct keys of `keys`
    verify over its PAE bytes. Raises TrustError naming each signature that did not count (an
    unknown key, a signature that does not match) and how many valid ones there were."""
    return _Trusted(keys, threshold, payload_type).check(envelope)


def verify_many(
    envelopes: Sequence[Mapping[str, Any]],
    keys: Sequence[PublicKey],
    threshold: int,
    payload_type: str,
    workers: int | None = None,
) -> list[Verified | TrustError]:
    """verify() for each envelope, in order: its Verified or the TrustError it raised.
    `workers` threads (default: one per CPU) each take a contiguous slice (cryptography releases
    the GIL while it verifies; one task per envelope would cost more than the check itself)."""
    trusted = _Trusted(keys, threshold, payload_type)
    workers = max(1, min(workers or os.cpu_count() or 1, len(envelopes) // 64 or 1))
    if workers == 1:
        return trusted.check_all(envelopes)
    size = -(-len(envelopes) // workers)
    slices = [envelopes[i : i + size] for i in range(0, len(envelopes), size)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        return [result for part in pool.map(trusted.check_all, slices) for result in part]


# ------------------------------------------------------------------------------------- internals


@dataclass(frozen=True)
class _Sig:
    keyid: str  # '' when the envelope names none (DSSE makes keyid optional)
    raw: bytes


@dataclass(frozen=True)
class _Parsed:
    payload: bytes
    payload_type: str
    signatures: tuple[_Sig, ...]


def _as_json(envelope: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = envelope.to_dict()
    return out


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a base64 string")
    try:  # DSSE allows the URL-safe alphabet too
        return base64.b64decode(value, altchars=b"-_" if "-" in value or "_" in value else None, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None


def _parse(envelope: object) -> _Parsed:
    """The envelope's parts, decoded once. Raises TrustError saying what is not DSSE about it."""
    try:
        if not isinstance(envelope, dict | Mapping):  # dict first: no ABC check for the usual case
            raise ValueError(f"it is a JSON {type(envelope).__name__}, not an object")
        missing = [field for field in ("payload", "payloadType", "signatures") if field not in envelope]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        payload_type, signatures = envelope["payloadType"], envelope["signatures"]
        if not isinstance(payload_type, str):
            raise ValueError("payloadType is not a string")
        if not isinstance(signatures, list):
            raise ValueError("signatures is not a list")
        sigs = []
        for i, entry in enumerate(signatures):
            if not isinstance(entry, dict | Mapping):
                raise ValueError(f"signatures[{i}] is not an object")
            keyid = entry.get("keyid", "")
            if not isinstance(keyid, str):
                raise ValueError(f"signatures[{i}].keyid is not a string")
            sigs.append(_Sig(keyid, _b64(entry.get("sig"), f"signatures[{i}].sig")))
        return _Parsed(_b64(envelope["payload"], "payload"), payload_type, tuple(sigs))
    except ValueError as exc:
        raise TrustError(f"the envelope is not DSSE JSON: {exc}") from None


class _Trusted:
    """The trusted keys, indexed once, and the rules an envelope must meet."""

    def __init__(self, keys: Sequence[PublicKey], threshold: int, payload_type: str) -> None:
        from securesystemslib.dsse import Envelope
        from securesystemslib.exceptions import UnverifiedSignatureError
        from securesystemslib.signer import Signature

        # imported once here, not per envelope: verify_many runs check() ten thousand times
        self._envelope, self._signature, self._unverified = Envelope, Signature, UnverifiedSignatureError
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, not {threshold}")
        self.by_keyid = {key.keyid: key for key in keys}
        # ed25519 keys, loaded once into cryptography's own objects: securesystemslib would load
        # the key again for each of ten thousand signatures (the bulk of `audit verify`).
        self._ed25519 = {key.keyid: _ed25519(key) for key in keys if key.key.keytype == "ed25519"}
        self.threshold = threshold
        self.payload_type = payload_type
        listed = ", ".join(f"{key.name} {short(key.keyid)}" for key in keys)
        self.listed = f"trusted: {listed}" if listed else "no key is trusted"

    def check_all(self, envelopes: Sequence[Mapping[str, Any]]) -> list[Verified | TrustError]:
        results: list[Verified | TrustError] = []
        for envelope in envelopes:
            try:
                results.append(self.check(envelope))
            except TrustError as exc:
                results.append(exc)
        return results

    def check(self, envelope: Mapping[str, Any]) -> Verified:
        parsed = _parse(envelope)
        if parsed.payload_type != self.payload_type:
            raise TrustError(f"payloadType is {parsed.payload_type!r}, expected {self.payload_type}")
        if not parsed.signatures:
            raise TrustError("the envelope has no signatures", hint="sign it (bakery signs each image it records)")
        pae = self._envelope(parsed.payload, parsed.payload_type, {}).pae()
        matched = [(sig, self._match(sig, pae)) for sig in parsed.signatures]
        valid = {key.keyid: key.name for _sig, key in matched if key is not None}  # a key signing twice counts once
        if len(valid) < self.threshold:
            # a bad signature by a key whose other signature counted changes nothing: not named
            problems = [self._problem(sig) for sig, key in matched if key is None and sig.keyid not in valid]
            problems = [*dict.fromkeys(problems), self._count(valid)]
            raise TrustError(problems[0], problems=tuple(problems), hint=self._hint(problems))
        return Verified(parsed.payload, _document(parsed.payload), tuple(valid.values()))

    def _problem(self, sig: _Sig) -> str:
        """Why a signature that verified with no trusted key did not count."""
        if not sig.keyid:
            return f"a signature names no keyid and matches none of the trusted keys ({self.listed})"
        if sig.keyid not in self.by_keyid:
            return f"signed by key {short(sig.keyid)} which is not in trust.keys ({self.listed})"
        name = self.by_keyid[sig.keyid].name
        return f"the signature by {name} does not match the payload (changed after signing?)"

    def _match(self, sig: _Sig, pae: bytes) -> PublicKey | None:
        """The trusted key whose signature `sig` is, or None. A signature without a keyid is
        tried against every trusted key."""
        candidates = [self.by_keyid[sig.keyid]] if sig.keyid in self.by_keyid else []
        if not sig.keyid:
            candidates = list(self.by_keyid.values())
        for key in candidates:
            fast = self._ed25519.get(key.keyid)
            if fast is not None:
                from cryptography.exceptions import InvalidSignature

                try:
                    fast.verify(sig.raw, pae)
                except (InvalidSignature, ValueError):
                    continue
                return key
            try:
                key.key.verify_signature(self._signature(key.keyid, sig.raw.hex()), pae)
            except self._unverified:  # VerificationError (a malformed signature) too
                continue
            return key
        return None

    def _count(self, valid: Mapping[str, str]) -> str:
        n = len(valid)
        names = f" ({', '.join(valid.values())})" if valid else ""
        counted = f"{n} valid signature{'' if n == 1 else 's'}{names}" if n else "no valid signature"
        return f"{counted} of the {self.threshold} trust.threshold needs"

    @staticmethod
    def _hint(problems: Sequence[str]) -> str | None:
        if any("not in trust.keys" in p for p in problems):
            return "if you trust that key, list its public key under trust.keys in images.yaml"
        return None


def _document(payload: bytes) -> dict[str, Any]:
    try:
        return documents.parse_object(payload)
    except ValueError as exc:
        raise TrustError(f"the signed payload is {exc}") from None


def _ed25519(key: PublicKey) -> Any:
    """The cryptography Ed25519PublicKey of an ed25519 trusted key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.key.keyval["public"]))
