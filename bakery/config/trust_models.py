"""The shape of images.yaml's `registry:` and `trust:` blocks (frozen pydantic models).

`registry:` says where the state several machines share lives (attestations, revocations, the
audit log, rollout records); `trust:` which keys may sign images, how many must, whether rollouts
insist on it, and how this machine signs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from bakery.config.model_base import ENDPOINT_PATTERN, REGION_PATTERN, Bool, Int, Model, _given

BUCKET_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$"
PREFIX_PATTERN = r"^([A-Za-z0-9._=-]+/)*$"  # '' or 'team/bakery/': '/'-separated, ending in '/'


class LocalRegistry(Model):
    """An embedded store under .bakery/registry/ (one machine, or a shared filesystem)."""

    kind: Literal["local"] = "local"
    path: str | None = None  # another directory (relative to images.yaml), e.g. on a shared mount


class S3Checkpoints(Model):
    """Write-once storage for signed checkpoints of the audit log's head: a bucket created with
    S3 Object Lock (same region and endpoint as the registry); each checkpoint is put with a
    retention of `retain_days` in `mode` (compliance: no one may delete it early, not even root)."""

    bucket: str = Field(pattern=BUCKET_PATTERN)
    prefix: str = Field("bakery-checkpoints/", pattern=PREFIX_PATTERN)
    mode: Literal["compliance", "governance"] = "compliance"
    retain_days: Int = Field(365, ge=1, le=36500)


class GcsCheckpoints(Model):
    """Write-once storage for signed checkpoints of the audit log's head: a bucket with a
    retention policy (locked, for one no one can shorten), same project and endpoint as the registry."""

    bucket: str = Field(pattern=BUCKET_PATTERN)
    prefix: str = Field("bakery-checkpoints/", pattern=PREFIX_PATTERN)


class S3Registry(Model):
    kind: Literal["s3"]
    bucket: str = Field(pattern=BUCKET_PATTERN)
    prefix: str = Field("bakery/", pattern=PREFIX_PATTERN)
    region: str = Field("us-east-1", pattern=REGION_PATTERN)
    endpoint: str | None = Field(None, pattern=ENDPOINT_PATTERN)  # else $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL
    checkpoints: S3Checkpoints | None = None


class GcsRegistry(Model):
    kind: Literal["gcs"]
    bucket: str = Field(pattern=BUCKET_PATTERN)
    prefix: str = Field("bakery/", pattern=PREFIX_PATTERN)
    project: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    endpoint: str | None = Field(None, pattern=ENDPOINT_PATTERN)  # else $STORAGE_EMULATOR_HOST
    checkpoints: GcsCheckpoints | None = None


Registry = Annotated[LocalRegistry | S3Registry | GcsRegistry, Field(discriminator="kind")]


class AwsKmsKey(Model):
    key_id: str = Field(min_length=1)  # key id, ARN or alias/...
    region: str = Field(pattern=REGION_PATTERN)
    endpoint: str | None = Field(None, pattern=ENDPOINT_PATTERN)  # else $AWS_ENDPOINT_URL_KMS / $AWS_ENDPOINT_URL


class GcpKmsKey(Model):
    # projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V
    key: str = Field(
        pattern=r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[0-9]+$"
    )
    endpoint: str | None = Field(None, pattern=ENDPOINT_PATTERN)


class Signing(Model):
    """How this machine signs (at most one). None of them: $BAKERY_SIGNING_KEY (a PEM or its path),
    else the workspace's own key (.bakery/keys/signing.key, made on first use)."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "anyOf": [_given("key_file", "aws_kms"), _given("key_file", "gcp_kms"), _given("aws_kms", "gcp_kms")]
            }
        }
    )

    key_file: str | None = None  # an ed25519 private key (PEM), relative to images.yaml or ~
    aws_kms: AwsKmsKey | None = None
    gcp_kms: GcpKmsKey | None = None

    @model_validator(mode="after")
    def _one(self) -> Signing:
        given = [k for k in ("key_file", "aws_kms", "gcp_kms") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one way to sign, not {' and '.join(given)}")
        return self


class TrustedKey(Model):
    """A public key whose signatures count: a PEM file (relative to images.yaml) or the PEM itself."""

    name: str = Field(min_length=1, max_length=64)  # how messages name it ("ops-2026")
    public_key: str = Field(min_length=1)


class Trust(Model):
    trusted: tuple[TrustedKey, ...] = Field((), alias="keys")  # `keys` is Model.keys()
    threshold: Int = Field(1, ge=1)  # signatures by distinct trusted keys an image needs
    require: Bool | None = None  # rollouts refuse what does not verify; default: on once keys are listed
    signing: Signing = Field(default_factory=Signing)

    @model_validator(mode="after")
    def _threshold(self) -> Trust:
        if self.trusted and self.threshold > len(self.trusted):
            raise ValueError(f"threshold {self.threshold} is more than the {len(self.trusted)} keys listed")
        return self

    @property
    def required(self) -> bool:
        return bool(self.trusted) if self.require is None else self.require
