"""Signers whose private key never leaves a KMS: AWS KMS and Google Cloud KMS asymmetric keys.

The payload (DSSE's PAE bytes) is hashed here and only its digest is sent; the KMS signs it with
the algorithm that matches what securesystemslib makes of the key's public half, so the keyid a
signature names is the keyid of the PEM that `bakery keys export` prints for trust.keys. Every
signature is checked against that public key before it is used: a KMS (or anything between) that
answers with a wrong signature is caught at signing time, not at the next deploy.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Key, SecretsHandler, Signature, Signer, SSlibKey

from bakery.errors import ProviderError

if TYPE_CHECKING:  # models_trust is imported through bakery.models (which it builds on)
    from bakery.config.trust_models import AwsKmsKey, GcpKmsKey

ClientFactory = Callable[[str, str, "str | None"], Any]  # (service, region or location, endpoint) -> client

# securesystemslib's scheme for a public key -> the KMS algorithm that signs for it
AWS_ALGORITHMS = {
    "ecdsa-sha2-nistp256": "ECDSA_SHA_256",
    "ecdsa-sha2-nistp384": "ECDSA_SHA_384",
    "rsassa-pss-sha256": "RSASSA_PSS_SHA_256",
}
GCP_ALGORITHMS = {
    "EC_SIGN_P256_SHA256": "ecdsa-sha2-nistp256",
    "EC_SIGN_P384_SHA384": "ecdsa-sha2-nistp384",
    "RSA_SIGN_PSS_2048_SHA256": "rsassa-pss-sha256",
    "RSA_SIGN_PSS_3072_SHA256": "rsassa-pss-sha256",
    "RSA_SIGN_PSS_4096_SHA256": "rsassa-pss-sha256",
}


class _KmsSigner(Signer):
    """What both KMS signers share: a name for messages, the public key, a checked signature."""

    name: str

    def __init__(self, name: str, public_key: SSlibKey) -> None:
        self.name = name
        self._public_key = public_key

    @property
    def public_key(self) -> SSlibKey:
        return self._public_key

    @classmethod
    def from_priv_key_uri(
        cls, priv_key_uri: str, public_key: Key, secrets_handler: SecretsHandler | None = None
    ) -> NoReturn:
        raise NotImplementedError(f"{cls.__name__} is made from images.yaml's trust.signing, not from a key URI")

    def sign(self, payload: bytes) -> Signature:
        """A signature over `payload` by the KMS key. Raises ProviderError if the KMS refuses or
        answers with a signature that does not verify with the key's public half."""
        digest = hashlib.new(self._public_key.get_hash_algorithm_name(), payload).digest()
        signature = Signature(self._public_key.keyid, self._sign_digest(digest).hex())
        try:
            self._public_key.verify_signature(signature, payload)
        except UnverifiedSignatureError:
            raise ProviderError(
                f"{self.name}: the KMS answered with a signature that does not verify with the key's public key",
                hint="check the endpoint: something between bakery and the KMS changed the answer",
            ) from None
        return signature

    def _sign_digest(self, digest: bytes) -> bytes:
        raise NotImplementedError


class AwsKmsSigner(_KmsSigner):
    """An AWS KMS asymmetric key (KeyUsage SIGN_VERIFY: ECC_NIST_P256, ECC_NIST_P384 or RSA)."""

    def __init__(
        self, spec: AwsKmsKey, *, clients: ClientFactory | None = None, environ: Mapping[str, str] = os.environ
    ) -> None:
        """Reads the key's public half. Raises ProviderError naming the key and region if KMS
        refuses, or if the key cannot sign as bakery needs."""
        from bakery.providers.aws.errors import aws_errors

        self.spec = spec
        self._what = f"KMS key {spec.key_id} in {spec.region}"
        endpoint = spec.endpoint or environ.get("AWS_ENDPOINT_URL_KMS") or environ.get("AWS_ENDPOINT_URL")
        with aws_errors(f"{self._what}: read its public key"):
            self._client = (clients or aws_kms_client)("kms", spec.region, endpoint)
            answer = self._client.get_public_key(KeyId=spec.key_id)
        if answer.get("KeyUsage") != "SIGN_VERIFY":
            raise ProviderError(
                f"AWS: {self._what} is for {answer.get('KeyUsage')}, not SIGN_VERIFY",
                hint="create an asymmetric key with KeyUsage SIGN_VERIFY (KeySpec ECC_NIST_P256) to sign images",
            )
        key = _public_key(answer["PublicKey"], der=True, what=f"AWS: {self._what}")
        self.algorithm = AWS_ALGORITHMS.get(key.scheme, "")
        if self.algorithm not in answer.get("SigningAlgorithms", []):
            raise ProviderError(
                f"AWS: {self._what} ({answer.get('KeySpec')}) cannot sign with {self.algorithm or key.scheme}",
                hint="use a KeySpec ECC_NIST_P256, ECC_NIST_P384 or RSA_* key",
            )
        super().__init__(spec.key_id, key)

    def _sign_digest(self, digest: bytes) -> bytes:
        from bakery.providers.aws.errors import aws_errors

        with aws_errors(f"{self._what}: sign"):
            answer = self._client.sign(
                KeyId=self.spec.key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=self.algorithm
            )
        return bytes(answer["Signature"])  # ECDSA: DER, which securesystemslib verifies


class GcpKmsSigner(_KmsSigner):
    """A Cloud KMS asymmetric signing key version (EC_SIGN_P256_SHA256, EC_SIGN_P384_SHA384 or
    RSA_SIGN_PSS_*_SHA256)."""

    def __init__(self, spec: GcpKmsKey, *, clients: ClientFactory | None = None) -> None:
        """Reads the key version's public half. Raises ProviderError naming the key if Cloud KMS
        refuses, or if its algorithm cannot sign as bakery needs."""
        from bakery.core.retry import gcp_retry, request_timeout
        from bakery.providers.gcp.api import gcp_errors

        self.spec = spec
        self._what = f"KMS key {spec.key}"
        location = spec.key.split("/")[3]
        with gcp_errors(f"{self._what}: read its public key"):
            self._client = (clients or gcp_kms_client)("cloudkms", location, spec.endpoint)
            answer = self._client.get_public_key(
                request={"name": spec.key}, retry=gcp_retry(), timeout=request_timeout()
            )
        algorithm = getattr(answer.algorithm, "name", str(answer.algorithm))
        key = _public_key(answer.pem.encode(), der=False, what=f"GCP: {self._what}")
        if GCP_ALGORITHMS.get(algorithm) != key.scheme:
            raise ProviderError(
                f"GCP: {self._what} has algorithm {algorithm}, which bakery cannot sign with",
                hint=f"use a key version with one of {', '.join(GCP_ALGORITHMS)}",
            )
        super().__init__(spec.key, key)

    def _sign_digest(self, digest: bytes) -> bytes:
        from bakery.core.retry import gcp_retry, request_timeout
        from bakery.providers.gcp.api import gcp_errors

        hash_name = self._public_key.get_hash_algorithm_name()
        with gcp_errors(f"{self._what}: sign"):
            answer = self._client.asymmetric_sign(
                request={"name": self.spec.key, "digest": {hash_name: digest}},
                retry=gcp_retry(),
                timeout=request_timeout(),
            )
        return bytes(answer.signature)  # ECDSA: DER, which securesystemslib verifies


def aws_kms_client(service: str, region: str, endpoint: str | None) -> Any:
    """boto3's client for `service`, with bakery's retries and timeouts."""
    from bakery.core.retry import aws_client

    return aws_client(service, region, endpoint)


def gcp_kms_client(service: str, location: str, endpoint: str | None) -> Any:
    """google-cloud-kms's client over REST at `endpoint` (else Google's); anonymous on a
    plain-HTTP loopback endpoint (a fake in tests)."""
    from google.cloud import kms_v1

    options = {"api_endpoint": endpoint} if endpoint else None
    where = urlsplit(endpoint or "")
    if where.scheme == "http" and where.hostname in ("127.0.0.1", "localhost", "::1"):
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return kms_v1.KeyManagementServiceClient(credentials=credentials, transport="rest", client_options=options)
    return kms_v1.KeyManagementServiceClient(transport="rest", client_options=options)


def _public_key(data: bytes, *, der: bool, what: str) -> SSlibKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    try:
        return SSlibKey.from_crypto(load_der_public_key(data) if der else load_pem_public_key(data))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ProviderError(f"{what}: its public key cannot be read ({exc})") from None
