"""The shared registry's stores, picked by images.yaml's `registry:` block.

`open_store` builds the one the block names: a directory (the default, under the workspace), an
S3 bucket or a GCS bucket. Cloud clients come from an injected factory (`clients(service, region
or project, endpoint)`), so tests hand in clients pointed at moto or the fake GCS server; the
SDKs are imported only when a cloud store is opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bakery.errors import Conflict
from bakery.registry.base import Blob, BucketStore, Store, WriteOnce

if TYPE_CHECKING:
    from bakery.config.trust_models import Registry
    from bakery.workspace import Workspace

__all__ = ["Blob", "BucketStore", "Conflict", "Store", "WriteOnce", "default_clients", "open_checkpoints", "open_store"]

LOCAL_GCS_PROJECT = "bakery-local"  # what a loopback emulator is told when images.yaml names no project


def open_store(
    spec: Registry,
    *,
    root: Path,
    workspace: Workspace,
    clients: Callable[..., Any] | None = None,
) -> Store:
    """The store `spec` describes. `root` is the directory of images.yaml: a local `path` is
    relative to it (or to ~ when it starts with ~/); without one, a local store lives in
    `workspace.root / "registry"`. `clients(service, region_or_project, endpoint)` makes the SDK
    client ("s3" or "storage"). Opening sends no request: a missing bucket shows on the first
    call, as a ProviderError; a GCS client that cannot be made (no credentials) raises one here."""
    make = clients or default_clients
    if spec.kind == "local":
        from bakery.registry.local import LocalStore

        return LocalStore(root / Path(spec.path).expanduser() if spec.path else workspace.root / "registry")
    if spec.kind == "s3":
        from bakery.registry.s3 import S3Store

        endpoint = spec.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return S3Store(make("s3", spec.region, endpoint), bucket=spec.bucket, prefix=spec.prefix, endpoint=endpoint)
    if spec.kind == "gcs":
        from bakery.registry import gcs

        endpoint = spec.endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
        return gcs.connect(make, bucket=spec.bucket, prefix=spec.prefix, project=spec.project, endpoint=endpoint)
    raise AssertionError(f"unknown registry kind {spec!r}")  # the models admit no other


def open_checkpoints(spec: Registry, *, clients: Callable[..., Any] | None = None) -> WriteOnce | None:
    """The write-once storage for the audit log's checkpoints that `spec` names (its
    `checkpoints:`, in the registry's cloud, region or project and endpoint), or None."""
    make = clients or default_clients
    if spec.kind == "s3" and spec.checkpoints is not None:
        from bakery.registry.s3 import S3WriteOnce

        vault = spec.checkpoints
        endpoint = spec.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        client = make("s3", spec.region, endpoint)
        return S3WriteOnce(
            client, bucket=vault.bucket, prefix=vault.prefix, endpoint=endpoint, mode=vault.mode, days=vault.retain_days
        )
    if spec.kind == "gcs" and spec.checkpoints is not None:
        from bakery.registry import gcs

        endpoint = spec.endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
        found = gcs.connect(
            make,
            bucket=spec.checkpoints.bucket,
            prefix=spec.checkpoints.prefix,
            project=spec.project,
            endpoint=endpoint,
            write_once=True,
        )
        assert isinstance(found, gcs.GcsWriteOnce)  # what write_once makes
        return found
    return None


def default_clients(service: str, where: str | None, endpoint: str | None) -> Any:
    """boto3's S3 client for `service` "s3" (`where`: the region), with bakery's retry policy;
    google-cloud-storage's Client for "storage" (`where`: the project, or None). On a plain-HTTP
    loopback endpoint (moto, an emulator) the GCS client is anonymous."""
    if service == "s3":
        from bakery.core.retry import aws_client

        return aws_client("s3", where, endpoint)
    if service == "storage":
        from google.cloud.storage import Client

        if endpoint and _loopback_http(endpoint):
            from google.auth.credentials import AnonymousCredentials

            return Client(
                project=where or LOCAL_GCS_PROJECT,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": endpoint},
            )
        return Client(project=where, client_options={"api_endpoint": endpoint} if endpoint else None)
    raise LookupError(f"no registry client for service {service!r} (known: s3, storage)")  # a bug in bakery


def _loopback_http(endpoint: str) -> bool:
    where = urlsplit(endpoint)
    return where.scheme == "http" and where.hostname in ("127.0.0.1", "localhost", "::1")
