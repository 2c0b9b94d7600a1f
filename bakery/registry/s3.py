"""A registry store in an S3 bucket, under a prefix, through boto3.

Conditional writes are S3's own: `create` puts with If-None-Match: * and `replace` with
If-Match: <ETag read>. S3 answers 412 PreconditionFailed when the condition does not hold, and
409 ConditionalRequestConflict when another conditional write to the key is in flight; both are
a lost race (Conflict), as is a 404 on `replace` (the object was deleted meanwhile). The ETag is
the version. boto3 clients are thread safe, so `get_many` fetches with a few threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from bakery.errors import Conflict, ProviderError
from bakery.providers.aws.errors import one_line
from bakery.registry.base import MAX_OBJECT_BYTES, Blob, BucketStore, Stored, too_large

LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict")
DENIED = ("AccessDenied", "403", "AllAccessDisabled", "AccountProblem")
BAD_CREDENTIALS = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
)


class S3Store(BucketStore):
    """Objects under `prefix` ('' or ending in '/') in `bucket`."""

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def get(self, key: str) -> Blob | None:
        return self._get(key)

    def _get(self, key: str, **version: str) -> Blob | None:
        from botocore.exceptions import ClientError

        with self._errors(f"read {key}"):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key, **version)
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "NoSuchVersion"):
                    return None
                raise
            size = int(answer.get("ContentLength") or 0)
            if size > MAX_OBJECT_BYTES:
                answer["Body"].close()
                raise too_large(self.where, key, size)
            data: bytes = answer["Body"].read(MAX_OBJECT_BYTES + 1)
        if len(data) > MAX_OBJECT_BYTES:
            raise too_large(self.where, key, len(data))
        return Blob(data, str(answer["ETag"]))

    def create(self, key: str, data: bytes) -> str:
        with self._errors(f"create {key}", lost=f"{key} exists already in {self.where}"):
            answer = self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, IfNoneMatch="*")
        return str(answer["ETag"])

    def replace(self, key: str, data: bytes, *, version: str) -> str:
        lost = f"{key} changed in {self.where} since it was read, or is gone"
        with self._errors(f"replace {key}", lost=lost, gone=True):
            answer = self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, IfMatch=version)
        return str(answer["ETag"])

    def delete(self, key: str) -> None:
        with self._errors(f"delete {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)  # S3 deletes what is gone too

    def keys(self, prefix: str = "") -> list[str]:
        start = len(self.prefix)
        with self._errors(f"list {prefix or 'every key'}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            return sorted(item["Key"][start:] for page in pages for item in page.get("Contents", ()))

    @contextlib.contextmanager
    def _errors(self, what: str, *, lost: str | None = None, gone: bool = False) -> Iterator[None]:
        """botocore's errors as Conflict (a lost race, when `lost` says how) or ProviderError."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            if lost and (code in LOST_RACE or (gone and code == "NoSuchKey")):
                raise Conflict(lost) from exc
            raise self._refused(what, code, exc) from exc
        except NoCredentialsError as exc:
            raise ProviderError(
                f"registry {self.where}: cannot {what}: no AWS credentials",
                hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`",
            ) from exc
        except (BotoCoreError, OSError) as exc:
            raise ProviderError(
                f"registry {self.where}: cannot {what}: {one_line(exc)}",
                hint=f"check the endpoint {self.endpoint or 'of S3'} (registry.endpoint in images.yaml, else "
                "$AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL) and the network",
            ) from exc

    def _refused(self, what: str, code: str, exc: Any) -> ProviderError:
        message = one_line(exc.response.get("Error", {}).get("Message") or exc)
        if code == "NoSuchBucket":
            return ProviderError(
                f"registry {self.where}: the bucket {self.bucket} does not exist",
                hint=f"create it (aws s3 mb s3://{self.bucket}) or set registry.bucket in images.yaml to one that does",
            )
        if code in DENIED:
            return ProviderError(
                f"registry {self.where}: access denied to {what}",
                hint=f"grant s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on "
                f"arn:aws:s3:::{self.bucket} and its {self.prefix or ''}* objects to these credentials",
            )
        if code in BAD_CREDENTIALS:
            return ProviderError(
                f"registry {self.where}: cannot {what}: AWS refused the credentials ({code})",
                hint="check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and the session token's expiry",
            )
        return ProviderError(f"registry {self.where}: cannot {what}: {code} {message}".strip())


class S3WriteOnce(S3Store):
    """Checkpoints in a bucket with S3 Object Lock: each is created once (If-None-Match: *) with a
    retention of `days` in `mode` ("compliance" or "governance"). A locked version can be hidden
    behind a delete marker or a newer version, never removed early: `versions` lists them all."""

    def __init__(self, client: Any, *, bucket: str, prefix: str, endpoint: str | None, mode: str, days: int) -> None:
        super().__init__(client, bucket=bucket, prefix=prefix, endpoint=endpoint)
        self.mode, self.days = mode, days

    def lock(self) -> str:
        from botocore.exceptions import ClientError

        with self._errors("read the bucket's Object Lock configuration"):
            try:
                answer = self.client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) != "ObjectLockConfigurationNotFoundError":
                    raise
                answer = {}
        if answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise ProviderError(
                f"checkpoints {self.where}: the bucket {self.bucket} has no S3 Object Lock, so a checkpoint written "
                "there could be deleted or overwritten; none is written",
                hint="name a bucket created with Object Lock (aws s3api create-bucket --bucket NAME "
                "--object-lock-enabled-for-bucket) under registry.checkpoints.bucket in images.yaml",
            )
        return f"S3 Object Lock, {self.mode} mode, {self.days} days"

    def create(self, key: str, data: bytes) -> str:
        import datetime as dt

        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.days)
        with self._errors(f"create {key}", lost=f"{key} exists already in {self.where}"):
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                IfNoneMatch="*",
                ObjectLockMode=self.mode.upper(),
                ObjectLockRetainUntilDate=until,
            )
        return str(answer.get("VersionId") or answer["ETag"])

    def versions(self, prefix: str = "") -> list[Stored]:
        start = len(self.prefix)
        with self._errors(f"list the versions of {prefix or 'every key'}"):
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            found = [
                Stored(item["Key"][start:], str(item["VersionId"]))
                for page in pages
                for item in page.get("Versions", ())
            ]
        return sorted(found, key=lambda stored: (stored.key, stored.version))

    def read(self, stored: Stored) -> bytes | None:
        blob = self._get(stored.key, VersionId=stored.version)
        return None if blob is None else blob.data


def _code(exc: Any) -> str:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(error.get("Code") or status or "")
