"""KMS Sign with MessageType=DIGEST on moto's server, as AWS does it.

moto (5.2) reads MessageType and ignores it: a DIGEST request has its digest hashed again, so the
signature verifies against sha256(digest), not the digest (getmoto/moto#10202, open). AWS signs
the digest as given, which is how a signer whose message may exceed KMS's 4096-byte RAW limit
signs. `install()` (called in the server process, before it serves) answers DIGEST requests with
a signature over the digest itself; RAW requests stay moto's.
"""

from __future__ import annotations

import base64
import json
from typing import Any

_DIGEST_SIZES = {"256": 32, "384": 48, "512": 64}


def install() -> None:
    from moto.kms.exceptions import ValidationException
    from moto.kms.responses import KmsResponse

    original = KmsResponse.sign

    def sign(self: Any) -> str:
        if self._get_param("MessageType") != "DIGEST":
            return str(original(self))
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        algorithm = self._get_param("SigningAlgorithm")
        digest = self._get_param("Message")
        if key.key_usage != "SIGN_VERIFY" or algorithm not in key.signing_algorithms:
            raise ValidationException(f"{algorithm} is not a signing algorithm of key {key.id}")
        if len(digest) != _DIGEST_SIZES[algorithm[-3:]]:
            raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
        signature = _sign(key.private_key.private_key, algorithm, digest)
        return json.dumps(
            {"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(), "SigningAlgorithm": algorithm}
        )

    KmsResponse.sign = sign  # type: ignore[method-assign]


def _sign(private: Any, algorithm: str, digest: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

    hash_algorithm = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm[-3:]]
    prehashed = utils.Prehashed(hash_algorithm)
    if algorithm.startswith("ECDSA"):
        return bytes(private.sign(digest, ec.ECDSA(prehashed)))  # DER, as AWS answers
    if algorithm.startswith("RSASSA_PSS"):
        pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
        return bytes(private.sign(digest, pss, prehashed))
    return bytes(private.sign(digest, padding.PKCS1v15(), prehashed))
