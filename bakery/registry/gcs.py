"""A registry store in a GCS bucket, under a prefix, through google-cloud-storage.

Conditional writes are GCS's generation preconditions: `create` uploads with ifGenerationMatch=0
(only if no live object has the name) and `replace` with ifGenerationMatch=<generation read>;
GCS answers 412 when the condition does not hold, also when the object is gone, and that is a
lost race (Conflict). The generation is the version: `get` downloads the bytes and takes the
generation from the same answer's x-goog-generation header, so bytes and version always match.
Calls use bakery's retry policy (429 and 5xx, not network errors) and request timeout rather than
the library's two-minute default, so an unreachable endpoint is reported at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from bakery.core.retry import gcp_retry, request_timeout
from bakery.errors import Conflict, ProviderError
from bakery.providers.gcp.api import api_error, network_error, one_line
from bakery.registry.base import MAX_OBJECT_BYTES, Blob, BucketStore, Stored, too_large

CONTENT_TYPE = "application/octet-stream"


def connect(
    clients: Callable[..., Any],
    *,
    bucket: str,
    prefix: str,
    project: str | None,
    endpoint: str | None,
    write_once: bool = False,
) -> GcsStore:
    """A store on `bucket` with a client from `clients("storage", project, endpoint)` (a
    GcsWriteOnce for checkpoints when `write_once`); a client that cannot be made (no
    credentials found) is a ProviderError naming the bucket."""
    where = f"gs://{bucket}/{prefix}"
    with gcs_errors(where, bucket, "connect", endpoint=endpoint):
        client = clients("storage", project, endpoint)
    kind = GcsWriteOnce if write_once else GcsStore
    return kind(client, bucket=bucket, prefix=prefix, endpoint=endpoint)


class GcsStore(BucketStore):
    """Objects under `prefix` ('' or ending in '/') in `bucket`."""

    def __init__(self, client: Any, *, bucket: str, prefix: str, endpoint: str | None = None) -> None:
        super().__init__(client, bucket=bucket, prefix=prefix, endpoint=endpoint)
        self._bucket = client.bucket(bucket)
        # A 404 on an object does not say whether the bucket exists: the first one is checked.
        self._bucket_seen = False
        self._call = {"retry": gcp_retry(), "timeout": request_timeout()}

    @property
    def where(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}"

    def get(self, key: str) -> Blob | None:
        return self._get(key)

    def _get(self, key: str, generation: int | None = None) -> Blob | None:
        from google.api_core.exceptions import NotFound

        blob = self._bucket.blob(self.prefix + key, generation=generation)
        with self._errors(f"read {key}"):
            try:
                # At most one byte past the cap: a larger object is named, never read whole.
                data: bytes = blob.download_as_bytes(start=0, end=MAX_OBJECT_BYTES, **self._call)
            except NotFound:
                self._check_bucket()
                return None
        if len(data) > MAX_OBJECT_BYTES:
            raise too_large(self.where, key, blob.size or len(data))
        return Blob(data, str(blob.generation))

    def create(self, key: str, data: bytes) -> str:
        return self._upload(key, data, generation=0, lost=f"{key} exists already in {self.where}")

    def replace(self, key: str, data: bytes, *, version: str) -> str:
        lost = f"{key} changed in {self.where} since it was read, or is gone"
        return self._upload(key, data, generation=int(version), lost=lost)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with self._errors(f"delete {key}"):
            try:
                self._bucket.blob(self.prefix + key).delete(**self._call)
            except NotFound:
                self._check_bucket()

    def keys(self, prefix: str = "") -> list[str]:
        start = len(self.prefix)
        with self._errors(f"list {prefix or 'every key'}"):
            found = self.client.list_blobs(self._bucket, prefix=self.prefix + prefix, **self._call)
            return sorted(blob.name[start:] for blob in found)

    def _upload(self, key: str, data: bytes, *, generation: int, lost: str) -> str:
        blob = self._bucket.blob(self.prefix + key)
        with self._errors(f"write {key}", lost=lost):
            blob.upload_from_string(data, content_type=CONTENT_TYPE, if_generation_match=generation, **self._call)
        return str(blob.generation)

    def _check_bucket(self) -> None:
        """Raise ProviderError (through the caller's _errors) if the bucket does not exist. A
        listing, not a bucket read: roles/storage.objectAdmin may list objects but not get buckets."""
        if not self._bucket_seen:
            list(self.client.list_blobs(self._bucket, prefix=self.prefix, max_results=1, **self._call))
            self._bucket_seen = True

    def _errors(self, what: str, *, lost: str | None = None) -> contextlib.AbstractContextManager[None]:
        return gcs_errors(self.where, self.bucket, what, lost=lost, endpoint=self.endpoint)


class GcsWriteOnce(GcsStore):
    """Checkpoints in a bucket with a retention policy: GCS refuses to delete or replace an object
    younger than the policy's period, and a locked policy cannot be shortened or removed."""

    def lock(self) -> str:
        with self._errors("read the bucket's retention policy (storage.buckets.get)"):
            self._bucket.reload(**self._call)
        period = self._bucket.retention_period
        if not period:
            raise ProviderError(
                f"checkpoints {self.where}: the bucket {self.bucket} has no retention policy, so a checkpoint "
                "written there could be deleted or overwritten; none is written",
                hint=f"set one (gcloud storage buckets update gs://{self.bucket} --retention-period=1y, then "
                "--lock-retention-period), or name a bucket that has one under registry.checkpoints.bucket",
            )
        locked = "locked" if self._bucket.retention_policy_locked else "NOT locked: its owner may still remove it"
        return f"GCS retention policy of {int(period) // 86400} days ({locked})"

    def versions(self, prefix: str = "") -> list[Stored]:
        start = len(self.prefix)
        with self._errors(f"list {prefix or 'every key'}"):
            found = self.client.list_blobs(self._bucket, prefix=self.prefix + prefix, **self._call)
            stored = [Stored(blob.name[start:], str(blob.generation)) for blob in found]
        return sorted(stored, key=lambda one: (one.key, one.version))

    def read(self, stored: Stored) -> bytes | None:
        blob = self._get(stored.key, generation=int(stored.version))
        return None if blob is None else blob.data


@contextlib.contextmanager
def gcs_errors(
    where: str, bucket: str, what: str, *, lost: str | None = None, endpoint: str | None = None
) -> Iterator[None]:
    """The client's errors as Conflict (a 412, when `lost` says how) or one-line ProviderError
    naming `where` and how to fix it. A 404 that reaches here is the bucket's: objects' 404s
    are handled by the callers."""
    import requests
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        yield
    except exceptions.PreconditionFailed as exc:
        if lost is None:
            raise ProviderError(f"registry {where}: cannot {what}: {api_error(exc)}") from exc
        raise Conflict(lost) from exc
    except exceptions.NotFound as exc:
        raise ProviderError(
            f"registry {where}: the bucket {bucket} does not exist",
            hint=f"create it (gcloud storage buckets create gs://{bucket}) or set registry.bucket in images.yaml "
            "to one that does",
        ) from exc
    except exceptions.Forbidden as exc:
        raise ProviderError(
            f"registry {where}: access denied to {what} ({api_error(exc)})",
            hint=f"grant roles/storage.objectAdmin on gs://{bucket} to these credentials",
        ) from exc
    except (exceptions.Unauthorized, auth_exceptions.GoogleAuthError) as exc:
        raise ProviderError(
            f"registry {where}: cannot {what}: {one_line(exc)}",
            hint="check GCP credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login)",
        ) from exc
    except exceptions.GoogleAPICallError as exc:
        raise ProviderError(f"registry {where}: cannot {what}: {api_error(exc)}") from exc
    except exceptions.RetryError as exc:
        cause = exc.cause
        why = api_error(cause) if isinstance(cause, exceptions.GoogleAPICallError) else one_line(cause or exc)
        raise ProviderError(f"registry {where}: cannot {what}: still failing after retries: {why}") from exc
    except (requests.RequestException, OSError) as exc:  # requests' errors are OSErrors too
        raise ProviderError(
            f"registry {where}: cannot {what}: {network_error(exc)}",
            hint=f"check the endpoint {endpoint or 'of Cloud Storage'} (registry.endpoint in images.yaml, else "
            "$STORAGE_EMULATOR_HOST) and the network",
        ) from exc
