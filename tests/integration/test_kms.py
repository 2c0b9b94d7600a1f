"""KMS signers through the real clients: boto3 against moto's KMS, google-cloud-kms against the
fake Cloud KMS (tests/fakes/gcp_kms.py). A signature is only good if securesystemslib's verify,
with the public key the KMS hands out, accepts it over the exact DSSE payload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key
from securesystemslib.signer import SSlibKey

from bakery.config.models import Trust
from bakery.config.trust_models import AwsKmsKey, GcpKmsKey
from bakery.errors import ProviderError
from bakery.trust.keys import load_signer, load_trusted, public_pem
from bakery.trust.kms import AwsKmsSigner, GcpKmsSigner
from bakery.trust.signing import PAYLOAD_TYPE, PublicKey, sign, signer_public_key, verify
from bakery.workspace import Workspace
from tests.fakes.gcp_kms import FakeKms

REGION = "eu-west-1"
# Bigger than KMS's 4096-byte limit for a RAW message: only a digest can be signed.
STATEMENT = {"_type": "https://in-toto.io/Statement/v1", "predicate": {"notes": "x" * 10_000}}
PAYLOAD = json.dumps(STATEMENT).encode()
KEY_VERSION = "projects/bakery-demo/locations/europe-west1/keyRings/bakery/cryptoKeys/images/cryptoKeyVersions/1"


def kms_client(endpoint: str) -> Any:
    return boto3.client("kms", region_name=REGION, endpoint_url=endpoint)


def aws_key(endpoint: str, spec: str = "ECC_NIST_P256", usage: str = "SIGN_VERIFY") -> str:
    return str(kms_client(endpoint).create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"])


def kms_public_key(endpoint: str, key_id: str) -> PublicKey:
    """The key as AWS hands it out, read apart from the signer."""
    der = kms_client(endpoint).get_public_key(KeyId=key_id)["PublicKey"]
    key = SSlibKey.from_crypto(load_der_public_key(der))
    return PublicKey("aws kms", key.keyid, key)


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ECC_NIST_P384", "RSA_2048"])
def test_an_aws_kms_key_signs_what_verify_accepts(moto: str, spec: str) -> None:
    key_id = aws_key(moto, spec)
    signer = AwsKmsSigner(AwsKmsKey(key_id=key_id, region=REGION, endpoint=moto))

    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [signer])

    verified = verify(envelope, [kms_public_key(moto, key_id)], 1, payload_type=PAYLOAD_TYPE)
    assert verified.document == STATEMENT
    assert signer_public_key(signer).name == key_id


def test_load_signer_uses_aws_kms_at_the_environment_endpoint_and_export_gives_its_trusted_key(
    moto: str, tmp_path: Path
) -> None:
    key_id = aws_key(moto)
    config = Trust.model_validate({"signing": {"aws_kms": {"key_id": key_id, "region": REGION}}})
    workspace = Workspace(tmp_path / ".bakery")

    signer = load_signer(config, root=tmp_path, workspace=workspace, environ={"AWS_ENDPOINT_URL_KMS": moto})
    listed = Trust.model_validate({"keys": [{"name": "release", "public_key": public_pem(signer)}]})
    keys = load_trusted(listed, root=tmp_path, workspace=workspace)

    assert verify(sign(PAYLOAD, PAYLOAD_TYPE, [signer]), keys, 1, payload_type=PAYLOAD_TYPE).signed_by == ("release",)
    assert not workspace.root.exists()  # no workspace key was made


def test_an_unknown_aws_kms_key_names_the_key_and_region(moto: str) -> None:
    with pytest.raises(ProviderError) as caught:
        AwsKmsSigner(AwsKmsKey(key_id="alias/nope", region=REGION, endpoint=moto))

    assert caught.value.message.startswith(
        "AWS: KMS key alias/nope in eu-west-1: read its public key: NotFoundException"
    )


def test_an_aws_kms_key_that_cannot_sign_is_refused(moto: str) -> None:
    key_id = aws_key(moto, "RSA_2048", usage="ENCRYPT_DECRYPT")

    with pytest.raises(ProviderError) as caught:
        AwsKmsSigner(AwsKmsKey(key_id=key_id, region=REGION, endpoint=moto))

    assert caught.value.message == f"AWS: KMS key {key_id} in eu-west-1 is for ENCRYPT_DECRYPT, not SIGN_VERIFY"


@pytest.fixture()
def fake_kms() -> Iterator[FakeKms]:
    with FakeKms() as kms:
        yield kms


def gcp_public_key(kms: FakeKms, name: str) -> PublicKey:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = SSlibKey.from_crypto(load_pem_public_key(kms.public_pem(name).encode()))
    return PublicKey("gcp kms", key.keyid, key)


@pytest.mark.parametrize("algorithm", ["EC_SIGN_P256_SHA256", "EC_SIGN_P384_SHA384"])
def test_a_cloud_kms_key_signs_what_verify_accepts_and_only_a_digest_is_sent(fake_kms: FakeKms, algorithm: str) -> None:
    fake_kms.add_key(KEY_VERSION, algorithm)
    signer = GcpKmsSigner(GcpKmsKey(key=KEY_VERSION, endpoint=fake_kms.endpoint))

    envelope = sign(PAYLOAD, PAYLOAD_TYPE, [signer])

    verified = verify(envelope, [gcp_public_key(fake_kms, KEY_VERSION)], 1, payload_type=PAYLOAD_TYPE)
    assert verified.document == STATEMENT
    method, path, body = fake_kms.requests[-1]
    assert (method, path) == ("POST", f"/v1/{KEY_VERSION}:asymmetricSign")
    assert set(body) <= {"name", "digest", "digestCrc32c"} and "x" * 100 not in json.dumps(body)


def test_load_signer_uses_cloud_kms(fake_kms: FakeKms, tmp_path: Path) -> None:
    fake_kms.add_key(KEY_VERSION)
    config = Trust.model_validate({"signing": {"gcp_kms": {"key": KEY_VERSION, "endpoint": fake_kms.endpoint}}})

    signer = load_signer(config, root=tmp_path, workspace=Workspace(tmp_path / ".bakery"), environ={})

    assert public_pem(signer) == fake_kms.public_pem(KEY_VERSION)
    assert signer_public_key(signer).name == KEY_VERSION


def test_an_unknown_cloud_kms_key_is_named(fake_kms: FakeKms) -> None:
    with pytest.raises(ProviderError) as caught:
        GcpKmsSigner(GcpKmsKey(key=KEY_VERSION, endpoint=fake_kms.endpoint))

    assert caught.value.message == (
        f"GCP: KMS key {KEY_VERSION}: read its public key: 404 CryptoKeyVersion {KEY_VERSION} not found."
    )


def test_a_cloud_kms_algorithm_bakery_cannot_sign_with_is_refused(fake_kms: FakeKms) -> None:
    fake_kms.add_key(KEY_VERSION, "RSA_SIGN_PKCS1_2048_SHA256")

    with pytest.raises(ProviderError) as caught:
        GcpKmsSigner(GcpKmsKey(key=KEY_VERSION, endpoint=fake_kms.endpoint))

    assert caught.value.message == (
        f"GCP: KMS key {KEY_VERSION} has algorithm RSA_SIGN_PKCS1_2048_SHA256, which bakery cannot sign with"
    )


def test_a_signature_that_does_not_verify_is_caught_when_signing(fake_kms: FakeKms) -> None:
    fake_kms.add_key(KEY_VERSION)
    signer = GcpKmsSigner(GcpKmsKey(key=KEY_VERSION, endpoint=fake_kms.endpoint))
    fake_kms.bad_signature = b"\x30\x06\x02\x01\x01\x02\x01\x01"  # a well-formed DER signature (r=1, s=1)

    with pytest.raises(ProviderError) as caught:
        sign(PAYLOAD, PAYLOAD_TYPE, [signer])

    assert caught.value.message == (
        f"{KEY_VERSION}: the KMS answered with a signature that does not verify with the key's public key"
    )
