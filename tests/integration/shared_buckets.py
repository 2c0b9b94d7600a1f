"""One registry bucket that several machines share, as a callable that opens a Store on it (a
picklable one: each OS process of a test opens its own): in S3 (the moto server) or in GCS
(tests/fakes/gcs.py). Test modules import the fixtures `in_s3` and `in_gcs` by name."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest

from bakery.registry import default_clients, gcs
from bakery.registry.base import Store
from bakery.registry.s3 import S3Store
from tests.fakes.gcs import serve

PREFIX = "team/bakery/"


def s3_store(endpoint: str, bucket: str) -> Store:
    return S3Store(default_clients("s3", "us-east-1", endpoint), bucket=bucket, prefix=PREFIX, endpoint=endpoint)


def gcs_store(endpoint: str) -> Store:
    return gcs.connect(default_clients, bucket="registry", prefix=PREFIX, project=None, endpoint=endpoint)


@pytest.fixture
def in_s3(moto_endpoint: str) -> Callable[[], Store]:
    bucket = f"shared-{uuid.uuid4().hex[:12]}"  # the moto server lives for the session: a bucket of our own
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    return functools.partial(s3_store, moto_endpoint, bucket)


@pytest.fixture
def in_gcs() -> Iterator[Callable[[], Store]]:
    with serve("registry") as endpoint:
        yield functools.partial(gcs_store, endpoint)
