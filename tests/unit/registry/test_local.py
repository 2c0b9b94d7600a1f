"""The registry's directory store: what lands on disk, its conditional writes, and two processes
creating the same keys at once."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from bakery.config.trust_models import Registry
from bakery.errors import Conflict, ProviderError
from bakery.registry import open_store
from bakery.registry.base import Blob
from bakery.registry.local import LocalStore
from bakery.workspace import Workspace


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "registry")


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_open_store_puts_the_default_registry_in_the_workspace_and_a_path_beside_images_yaml(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / ".bakery")
    specs = TypeAdapter(list[Registry]).validate_python(
        [{"kind": "local"}, {"kind": "local", "path": "../shared/registry"}]
    )

    default, shared = (open_store(spec, root=tmp_path / "project", workspace=workspace) for spec in specs)
    default.create("a.json", b"1")
    shared.create("b.json", b"2")

    assert (tmp_path / ".bakery" / "registry" / "a.json").read_bytes() == b"1"
    assert (tmp_path / "project" / ".." / "shared" / "registry" / "b.json").read_bytes() == b"2"
    assert default.where == f"{tmp_path / '.bakery' / 'registry'}/"


def test_an_object_is_a_file_at_its_key_and_its_version_is_the_sha256_of_its_bytes(store: LocalStore) -> None:
    version = store.create("attestations/local/web/1.0.dsse.json", b"{}")

    assert version == hashlib.sha256(b"{}").hexdigest()
    assert (store.root / "attestations" / "local" / "web" / "1.0.dsse.json").read_bytes() == b"{}"
    assert store.get("attestations/local/web/1.0.dsse.json") == Blob(b"{}", version)


def test_conditional_writes_leave_no_temporary_file_whether_they_win_or_lose(store: LocalStore) -> None:
    first = store.create("head.json", b"1")
    with pytest.raises(Conflict):
        store.create("head.json", b"other")
    second = store.replace("head.json", b"2", version=first)
    with pytest.raises(Conflict):
        store.replace("head.json", b"3", version=first)
    store.delete("head.json")
    with pytest.raises(Conflict):
        store.replace("head.json", b"4", version=second)

    assert files_under(store.root) == [".lock"]
    assert store.get("head.json") is None


def test_a_store_whose_directory_does_not_exist_yet_is_empty(store: LocalStore) -> None:
    assert store.get("anything") is None
    assert store.keys() == []
    assert store.get_many(["a", "b/c"]) == {}
    store.delete("anything")
    assert not store.root.exists()


def test_keys_skip_temporary_files_and_the_lock(store: LocalStore) -> None:
    for key in ("audit/0002.json", "audit/0001.json", "revocations.json"):
        store.create(key, b"x")
    (store.root / "audit" / ".0003.json.5e1f.tmp").write_bytes(b"half an event")  # a writer that died
    store.delete("revocations.json")  # takes the lock: .lock exists now

    assert (store.root / ".lock").exists()
    assert store.keys() == ["audit/0001.json", "audit/0002.json"]
    assert store.keys("audit/") == ["audit/0001.json", "audit/0002.json"]
    assert store.get_many(store.keys("audit/0001")) == {"audit/0001.json": Blob(b"x", hashlib.sha256(b"x").hexdigest())}


@pytest.mark.parametrize("key", ["", "../outside", "/etc/passwd", "a//b", "a/../../b", ".lock", "audit/.x.tmp", "a/"])
def test_a_key_that_could_leave_the_directory_or_hit_its_own_files_is_refused(store: LocalStore, key: str) -> None:
    with pytest.raises(ValueError, match="not a registry key"):
        store.create(key, b"x")
    assert not store.root.exists()


def test_keys_never_list_outside_the_directory(store: LocalStore) -> None:
    store.create("a.json", b"x")

    with pytest.raises(ValueError, match="not a registry key"):
        store.keys("../")
    assert store.keys("a") == ["a.json"]


def test_a_file_where_the_directory_should_be_is_a_provider_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "registry").write_text("not a directory")
    store = LocalStore(tmp_path / "registry")

    with pytest.raises(ProviderError, match=rf"^registry {tmp_path}/registry/: cannot create a\.json: ") as failed:
        store.create("a.json", b"x")
    assert failed.value.hint


def _create_in_turn(root: str, who: str, keys: list[str], turn: Any, won: Any) -> None:
    """In a child process: for each key, wait for the other process, then both try to create it."""
    store = LocalStore(Path(root))
    for key in keys:
        turn.wait()
        try:
            store.create(key, who.encode())
        except Conflict:
            continue
        won.put((key, who))
    won.put((None, who))  # done


def test_two_processes_creating_the_same_keys_at_once_leave_exactly_one_winner_each(store: LocalStore) -> None:
    keys = [f"race/k{i:03d}" for i in range(50)]
    spawn = multiprocessing.get_context("spawn")
    turn, won = spawn.Barrier(2, timeout=60), spawn.Queue()
    racers = [spawn.Process(target=_create_in_turn, args=(str(store.root), who, keys, turn, won)) for who in "ab"]
    for racer in racers:
        racer.start()
    reported: list[tuple[str | None, str]] = []
    while sum(key is None for key, _ in reported) < len(racers):
        reported.append(won.get(timeout=60))
    for racer in racers:
        racer.join(timeout=60)

    assert [racer.exitcode for racer in racers] == [0, 0]
    winners = {key: who for key, who in reported if key is not None}
    assert len(reported) == len(keys) + len(racers)  # no key was won twice
    assert sorted(winners) == keys
    assert {key: blob.data.decode() for key, blob in store.get_many(keys).items()} == winners


# ------------------------------------------------------------------ what is read back is untrusted


def test_a_symlink_to_dev_zero_is_named_not_read(store: LocalStore) -> None:
    from bakery.errors import TrustError

    store.create("attestations/local/web/1.0.0.dsse.json", b"{}")
    planted = store.root / "attestations" / "local" / "web" / "1.0.1.dsse.json"
    planted.symlink_to("/dev/zero")
    with pytest.raises(TrustError) as refused:
        store.get("attestations/local/web/1.0.1.dsse.json")
    assert refused.value.message == (
        f"registry {store.where}: attestations/local/web/1.0.1.dsse.json is a symbolic link, not a file of the registry"
    )
    assert store.get("attestations/local/web/1.0.0.dsse.json") == Blob(b"{}", hashlib.sha256(b"{}").hexdigest())


def test_a_fifo_is_named_at_once_never_waited_on(store: LocalStore) -> None:
    import os

    from bakery.errors import TrustError

    store.create("revocations/aws/web/1.0.0.json", b"{}")
    os.mkfifo(store.root / "revocations" / "aws" / "web" / "1.0.1.json")
    keys = store.keys("revocations/")
    with pytest.raises(TrustError, match=r"revocations/aws/web/1.0.1.json is a FIFO \(named pipe\), not a regular"):
        store.get_many(keys)


def test_a_directory_linked_out_of_the_registry_is_refused_for_reads_and_writes(
    store: LocalStore, tmp_path: Path
) -> None:
    from bakery.errors import TrustError

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "aws" / "web").mkdir(parents=True)
    (elsewhere / "aws" / "web" / "1.0.0.json").write_text("{}")
    store.create("audit/head.json", b"{}")
    (store.root / "revocations").symlink_to(elsewhere)
    with pytest.raises(TrustError, match="links out of the registry"):
        store.get_many(store.keys("revocations/"))
    with pytest.raises(TrustError, match=r"revocations/ leads to .*elsewhere"):
        store.create("revocations/aws/web/1.0.1.json", b"{}")
    with pytest.raises(TrustError, match="links out of the registry"):
        store.replace("revocations/aws/web/1.0.0.json", b"[]", version=hashlib.sha256(b"{}").hexdigest())
    assert sorted(p.name for p in (elsewhere / "aws" / "web").iterdir()) == ["1.0.0.json"]
    assert (elsewhere / "aws" / "web" / "1.0.0.json").read_text() == "{}"


def test_an_object_over_the_size_cap_is_named_not_read_whole(store: LocalStore) -> None:
    from bakery.errors import TrustError
    from bakery.registry.base import MAX_OBJECT_BYTES

    store.create("audit/events/000000000001.json", b"{}")
    big = store.root / "audit" / "events" / "000000000002.json"
    with big.open("wb") as out:
        out.truncate(MAX_OBJECT_BYTES + 1)
    with pytest.raises(TrustError, match=rf"is {MAX_OBJECT_BYTES + 1} bytes, more than the {MAX_OBJECT_BYTES}"):
        store.get("audit/events/000000000002.json")
