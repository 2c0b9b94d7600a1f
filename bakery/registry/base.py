"""The Store interface: the few operations the shared registry needs from a bucket or a directory.

Keys are '/'-separated relative names ("attestations/local/web/1.0.2.dsse.json"); each store
puts them under its own prefix. Every write that must not race is conditional: `create` only if
the key does not exist yet (S3 If-None-Match: *, GCS ifGenerationMatch=0, O_EXCL on disk) and
`replace` only if the object is still the version read (S3 If-Match: ETag, GCS
ifGenerationMatch=generation). A lost race raises `Conflict`; the caller reads again and decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bakery.errors import Conflict, TrustError

# No document bakery writes comes near this (an attestation is a few KiB); what is larger was
# not written by bakery, and reading it whole could exhaust memory.
MAX_OBJECT_BYTES = 8 * 1024 * 1024


def refused_object(where: str, key: str, why: str) -> TrustError:
    """A registry object that is no document of bakery's (too large, not a regular file, a
    link out of the registry): named with its key; exit 1."""
    return TrustError(
        f"registry {where}: {key} {why}",
        hint="remove it: bakery writes only regular files of documents it signs or checks there",
    )


def too_large(where: str, key: str, size: int) -> TrustError:
    return refused_object(where, key, f"is {size} bytes, more than the {MAX_OBJECT_BYTES} a registry document may be")


@dataclass(frozen=True)
class Blob:
    """An object's bytes and the version token a conditional `replace` of it needs."""

    data: bytes
    version: str  # S3: ETag; GCS: generation; local: content sha256


class Store(Protocol):
    """Objects by key. Methods raise ProviderError (bucket missing, access denied, unreachable:
    the message names the bucket and how to fix it) or Conflict; never an SDK's exception."""

    @property
    def where(self) -> str:
        """Where it is, for messages: 's3://bucket/prefix/', 'gs://bucket/prefix/', a directory."""

    def get(self, key: str) -> Blob | None:
        """The object at `key`, or None when there is none."""

    def create(self, key: str, data: bytes) -> str:
        """Write `key` only if it does not exist; its new version. Raises Conflict if it exists."""

    def replace(self, key: str, data: bytes, *, version: str) -> str:
        """Overwrite `key` only if it is still at `version`; its new version. Raises Conflict if
        it changed or is gone."""

    def delete(self, key: str) -> None:
        """Remove `key`; nothing happens if it is already gone."""

    def keys(self, prefix: str = "") -> list[str]:
        """Every key starting with `prefix`, sorted (the store's own prefix not included)."""

    def get_many(self, keys: list[str]) -> dict[str, Blob]:
        """The objects at `keys` that exist (fetched concurrently where the store is remote)."""


@dataclass(frozen=True)
class Stored:
    """One stored version of an object in write-once storage."""

    key: str
    version: str  # S3: VersionId; GCS: generation


class WriteOnce(Protocol):
    """Write-once storage (S3 Object Lock, a GCS retention policy) for what must outlive anyone
    who can write the registry. Methods raise ProviderError or Conflict, never an SDK's exception."""

    @property
    def where(self) -> str:
        """Where it is, for messages."""

    def lock(self) -> str:
        """In words, what keeps what is written there from being changed or removed. Raises
        ProviderError when nothing does (the bucket is not write-once)."""

    def create(self, key: str, data: bytes) -> str:
        """Write `key` once, retained; its version. Raises Conflict if it exists."""

    def versions(self, prefix: str = "") -> list[Stored]:
        """Every stored version under `prefix` (also those a delete marker or a newer version
        hides), sorted."""

    def read(self, stored: Stored) -> bytes | None:
        """The bytes of one stored version (at most MAX_OBJECT_BYTES), or None if it is gone."""


def update(store: Store, key: str, change: Callable[[Blob | None], bytes | None], *, attempts: int = 10) -> bool:
    """Read `key`, write what `change` makes of it (None: leave it) with a conditional create or
    replace, and start again after a lost race: the one read-modify-write every shared document
    goes through, so two machines never lose each other's write. Returns whether it wrote.
    Raises Conflict after `attempts` lost races, and whatever `change` or the store raise."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

    for attempt in Retrying(
        retry=retry_if_exception_type(Conflict),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(0.05, 1),
        reraise=True,
    ):
        with attempt:
            blob = store.get(key)
            data = change(blob)
            if data is None:
                return False
            if blob is None:
                store.create(key, data)
            else:
                store.replace(key, data, version=blob.version)
    return True


# boto3 and requests each keep 10 connections per host: more threads would only wait for one.
FETCH_THREADS = 10


class BucketStore:
    """What the S3 and GCS stores share: a thread-safe SDK client, a bucket, a key prefix ('' or
    ending in '/'), and `get_many` as concurrent `get`s (each one a round trip)."""

    def __init__(self, client: Any, *, bucket: str, prefix: str, endpoint: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint

    def get(self, key: str) -> Blob | None:
        raise NotImplementedError

    def get_many(self, keys: list[str]) -> dict[str, Blob]:
        from concurrent.futures import ThreadPoolExecutor

        if len(keys) <= 1:
            blobs = [self.get(key) for key in keys]
        else:
            with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(keys))) as pool:
                blobs = list(pool.map(self.get, keys))
        return {key: blob for key, blob in zip(keys, blobs, strict=True) if blob is not None}
