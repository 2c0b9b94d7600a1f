"""The registry's Store contract, the same for the three stores, through the real clients: a
directory, S3 on moto's server (boto3) and GCS on tests/fakes/gcs.py (google-cloud-storage).
The races run in two OS processes, as two machines sharing a registry would."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import TypeAdapter

from bakery.config.trust_models import Registry
from bakery.errors import Conflict, ProviderError
from bakery.registry import Store, open_store
from bakery.registry.base import Blob
from bakery.workspace import Workspace
from tests.fakes.gcs import FakeGcs

KEYS = [f"race/k{i:03d}" for i in range(50)]
INCREMENTS = 30
RACE_SECONDS = 60  # a bound on a hung child, not a timing assertion


def opened(spec: dict[str, Any], root: str) -> Store:
    """The store images.yaml's `registry:` block `spec` names, as bakery opens it."""
    return open_store(
        TypeAdapter(Registry).validate_python(spec), root=Path(root), workspace=Workspace(Path(root) / ".bakery")
    )


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[FakeGcs]:
    with FakeGcs() as fake:
        yield fake


@pytest.fixture()
def gcs_endpoint(fake_gcs: FakeGcs) -> str:
    return fake_gcs.endpoint


MakeSpec = Callable[[str], dict[str, Any]]


@pytest.fixture(params=["local", "s3", "gcs"])
def make_spec(request: pytest.FixtureRequest) -> MakeSpec:
    """`make_spec(prefix)`: a registry block for a fresh bucket (or directory) of this test, with
    stores under different prefixes sharing it."""
    bucket = f"registry-{uuid.uuid4().hex[:12]}"
    if request.param == "local":
        return lambda prefix: {"kind": "local", "path": f"shared/{prefix}"}
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        return lambda prefix: {"kind": "s3", "bucket": bucket, "prefix": prefix, "endpoint": endpoint}
    fake: FakeGcs = request.getfixturevalue("fake_gcs")
    fake.add_bucket(bucket)
    endpoint = fake.endpoint
    return lambda prefix: {"kind": "gcs", "bucket": bucket, "prefix": prefix, "endpoint": endpoint}


@pytest.fixture()
def store(make_spec: MakeSpec, tmp_path: Path) -> Store:
    return opened(make_spec("team/bakery/"), str(tmp_path))


def test_create_then_get_gives_the_bytes_and_the_version_create_returned(store: Store) -> None:
    version = store.create("attestations/local/web/1.0.dsse.json", b'{"payload": "x"}')

    assert store.get("attestations/local/web/1.0.dsse.json") == Blob(b'{"payload": "x"}', version)


def test_create_of_an_existing_key_is_a_conflict_and_keeps_the_first_bytes(store: Store) -> None:
    store.create("audit/000001.json", b"first")

    with pytest.raises(Conflict, match=r"audit/000001\.json exists already"):
        store.create("audit/000001.json", b"second")
    assert store.get("audit/000001.json").data == b"first"


def test_replace_at_the_version_read_wins_and_at_a_stale_one_is_a_conflict(store: Store) -> None:
    first = store.create("revocations.json", b"[]")
    second = store.replace("revocations.json", b'["web@1.0"]', version=first)

    with pytest.raises(Conflict, match="changed"):
        store.replace("revocations.json", b'["lost"]', version=first)
    assert store.get("revocations.json") == Blob(b'["web@1.0"]', second)
    assert second != first


def test_replace_of_a_deleted_key_is_a_conflict(store: Store) -> None:
    version = store.create("head.json", b"1")
    store.delete("head.json")

    with pytest.raises(Conflict):
        store.replace("head.json", b"2", version=version)
    assert store.get("head.json") is None


def test_an_object_over_the_size_cap_is_named_with_its_key_and_not_read_whole(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bakery.errors import TrustError

    store.create("revocations/aws/web/1.0.0.json", b"x" * 64)
    store.create("revocations/aws/web/1.0.1.json", b"x" * 65)
    for module in ("base", "local", "s3", "gcs"):
        monkeypatch.setattr(f"bakery.registry.{module}.MAX_OBJECT_BYTES", 64, raising=False)
    assert store.get("revocations/aws/web/1.0.0.json") is not None
    with pytest.raises(TrustError) as refused:
        store.get_many(store.keys("revocations/"))
    assert f"registry {store.where}: revocations/aws/web/1.0.1.json is 65 bytes, more than the" in refused.value.message


def test_get_of_a_missing_key_is_none_and_delete_of_it_does_nothing(store: Store) -> None:
    assert store.get("nothing/here.json") is None
    store.delete("nothing/here.json")
    store.create("here.json", b"x")
    store.delete("here.json")
    store.delete("here.json")
    assert store.get("here.json") is None
    assert store.keys() == []


def test_keys_are_sorted_and_filtered_by_prefix_within_the_stores_own_prefix(
    make_spec: MakeSpec, tmp_path: Path
) -> None:
    ours, theirs = opened(make_spec("team-a/"), str(tmp_path)), opened(make_spec("team-b/"), str(tmp_path))
    for key in ("audit/0002.json", "audit/0010.json", "audit/0001.json", "audits.txt", "revocations.json"):
        ours.create(key, key.encode())
    theirs.create("audit/0003.json", b"not ours")

    assert ours.keys("audit/") == ["audit/0001.json", "audit/0002.json", "audit/0010.json"]
    assert ours.keys("audit/000") == ["audit/0001.json", "audit/0002.json"]
    assert ours.keys("audit") == ["audit/0001.json", "audit/0002.json", "audit/0010.json", "audits.txt"]
    assert ours.keys() == [*ours.keys("audit"), "revocations.json"]
    assert ours.keys("nothing/") == []
    assert theirs.keys() == ["audit/0003.json"]


def test_get_many_returns_the_objects_that_exist(store: Store) -> None:
    versions = {f"audit/{i:04d}.json": store.create(f"audit/{i:04d}.json", b"event %d" % i) for i in range(25)}

    found = store.get_many([*versions, "audit/9999.json"])

    assert found == {key: Blob(b"event %d" % int(key[6:10]), version) for key, version in versions.items()}
    assert store.get_many([]) == {}


def _create_all(spec: dict[str, Any], root: str, who: str, start: Any, results: Any) -> None:
    """In a child process: try to create every key of KEYS, each at the same moment as the other
    process (the barrier), so that the two requests for one key are in flight together; report
    the keys this one won."""
    store = opened(spec, root)
    store.get(KEYS[0])  # the client's first call sets it up
    won = []
    for key in KEYS:
        start.wait()
        try:
            store.create(key, who.encode())
            won.append(key)
        except Conflict:
            pass
    results.put((who, won))


def _increment(spec: dict[str, Any], root: str, who: str, start: Any, results: Any) -> None:
    """In a child process: add 1 to the counter INCREMENTS times, read-modify-write, again on Conflict."""
    store = opened(spec, root)
    store.get("counter")
    start.wait()
    lost = 0
    for _ in range(INCREMENTS):
        while True:
            blob = store.get("counter")
            assert blob is not None
            try:
                store.replace("counter", b"%d" % (int(blob.data) + 1), version=blob.version)
                break
            except Conflict:
                lost += 1
    results.put((who, lost))


def race(work: Callable[..., None], spec: dict[str, Any], root: Path) -> dict[str, Any]:
    """Run `work` in two fresh processes released at the same moment; what each reported."""
    context = multiprocessing.get_context("spawn")  # no fork of a process running server threads
    start, results = context.Barrier(2, timeout=RACE_SECONDS), context.Queue()
    children = [context.Process(target=work, args=(spec, str(root), who, start, results)) for who in ("a", "b")]
    for child in children:
        child.start()
    try:
        reported = dict(results.get(timeout=RACE_SECONDS) for _ in children)
    finally:
        for child in children:
            child.join(timeout=RACE_SECONDS)
    assert [child.exitcode for child in children] == [0, 0]
    return reported


def test_two_processes_creating_the_same_keys_leave_exactly_one_winner_each(
    make_spec: MakeSpec, store: Store, tmp_path: Path
) -> None:
    won = race(_create_all, make_spec("team/bakery/"), tmp_path)

    assert sorted(won["a"] + won["b"]) == KEYS  # every key won once, by one of them
    assert not set(won["a"]) & set(won["b"])
    stored = store.get_many(KEYS)
    assert {key: blob.data.decode() for key, blob in stored.items()} == {
        key: "a" if key in won["a"] else "b" for key in KEYS
    }


def test_two_processes_incrementing_one_counter_lose_no_update(
    make_spec: MakeSpec, store: Store, tmp_path: Path
) -> None:
    store.create("counter", b"0")

    race(_increment, make_spec("team/bakery/"), tmp_path)

    assert store.get("counter").data == b"%d" % (2 * INCREMENTS)


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_a_missing_bucket_is_a_provider_error_naming_it(kind: str, request: pytest.FixtureRequest) -> None:
    endpoint = request.getfixturevalue("moto_endpoint" if kind == "s3" else "gcs_endpoint")
    scheme = {"s3": "s3", "gcs": "gs"}[kind]
    store = opened({"kind": kind, "bucket": "no-such-bucket", "prefix": "ops/", "endpoint": endpoint}, "/nonexistent")

    for call in (lambda: store.get("x"), lambda: store.create("x", b"x"), store.keys, lambda: store.delete("x")):
        with pytest.raises(ProviderError) as failed:
            call()
        assert str(failed.value) == f"registry {scheme}://no-such-bucket/ops/: the bucket no-such-bucket does not exist"
        assert "create it" in (failed.value.hint or "")


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_an_endpoint_that_does_not_answer_is_a_provider_error_naming_the_bucket(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAKERY_REQUEST_TIMEOUT", "2")
    store = opened({"kind": kind, "bucket": "registry", "endpoint": "http://127.0.0.1:9"}, "/nonexistent")

    with pytest.raises(ProviderError, match=r"^registry (s3|gs)://registry/bakery/: cannot read x: ") as failed:
        store.get("x")
    assert "http://127.0.0.1:9" in (failed.value.hint or "")


def test_the_endpoint_comes_from_the_environment_when_images_yaml_names_none(
    moto_endpoint: str, gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint).create_bucket(Bucket="from-env")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    gcs = opened({"kind": "gcs", "bucket": "from-env"}, str(tmp_path))
    gcs.client.create_bucket("from-env")  # through the API: POST /storage/v1/b

    for store in (opened({"kind": "s3", "bucket": "from-env"}, str(tmp_path)), gcs):
        store.create("k", b"v")
        assert store.get("k").data == b"v"
