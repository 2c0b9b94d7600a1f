"""The local catalog: immutable version directories indexed in SQLite, and the bake lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError
from bakery.providers.local.store import LocalStore
from bakery.workspace import exclusive, remove_tree


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "home" / "catalog.sqlite", tmp_path / "home" / "images")


def record_of(version: str, name: str = "web", target: str = "local", parent: str | None = None) -> ImageRecord:
    return ImageRecord(
        name=name,
        version=version,
        target=target,
        kind="local",
        inputs_digest="sha256:" + "a" * 64,
        created="2024-01-01T00:00:00Z",
        base="sha256:" + "b" * 64,
        parent=parent,
        subject_sha256="c" * 64,
    )


def staged(tmp_path: Path, label: str) -> Path:
    """A complete image directory as a bake leaves it before recording."""
    path = tmp_path / f"staged-{label}"
    path.mkdir()
    (path / "disk.qcow2").write_bytes(b"qcow2 " + label.encode())
    (path / "vmlinuz").write_bytes(b"kernel")
    (path / "initrd.img").write_bytes(b"initrd")
    (path / "provenance.json").write_text('{"subject": []}\n')
    return path


def test_record_then_list(store, tmp_path):
    final = store.record(record_of("1.0.0"), staged(tmp_path, "a"))
    assert final == tmp_path / "home" / "images" / "local" / "web" / "1.0.0"
    assert (final / "disk.qcow2").read_bytes() == b"qcow2 a"
    assert not (tmp_path / "staged-a").exists()  # moved, not copied
    (listed,) = store.list(target="local")
    assert listed == ImageRecord(
        name="web",
        version="1.0.0",
        target="local",
        kind="local",
        inputs_digest="sha256:" + "a" * 64,
        created="2024-01-01T00:00:00Z",
        base="sha256:" + "b" * 64,
        parent=None,
        locations=(str(final),),
        subject_sha256="c" * 64,
    )
    assert store.provenance(listed) == {"subject": []}


def test_list_orders_by_name_then_version_and_filters(store, tmp_path):
    versions = [("web", "1.0.10"), ("web", "1.0.9"), ("app", "2.0.0"), ("web", "1.1.0")]
    for i, (name, version) in enumerate(versions):
        store.record(
            record_of(version, name=name, parent="web@1.0.9" if name == "app" else None), staged(tmp_path, str(i))
        )
    store.record(record_of("1.0.0", target="other"), staged(tmp_path, "other"))
    listed = [r.ref for r in store.list(target="local")]
    assert listed == ["app@2.0.0", "web@1.0.9", "web@1.0.10", "web@1.1.0"]
    assert [r.ref for r in store.list(target="local", name="app")] == ["app@2.0.0"]
    assert store.list(target="local", name="app")[0].parent == "web@1.0.9"
    assert [r.ref for r in store.list(target="other")] == ["web@1.0.0"]
    assert store.list(target="nowhere") == []


def test_recording_a_version_twice_is_refused(store, tmp_path):
    first = store.record(record_of("1.0.0"), staged(tmp_path, "first"))
    second = staged(tmp_path, "second")
    with pytest.raises(BakeryError, match=r"web@1\.0\.0 on local is already in the catalog"):
        store.record(record_of("1.0.0"), second)
    assert (first / "disk.qcow2").read_bytes() == b"qcow2 first"
    assert len(store.list(target="local")) == 1
    assert second.is_dir()  # the refused bake's output is left for its caller


def test_same_version_on_another_target_is_separate(store, tmp_path):
    store.record(record_of("1.0.0"), staged(tmp_path, "a"))
    store.record(record_of("1.0.0", target="lab"), staged(tmp_path, "b"))
    assert len(store.list(target="local")) == len(store.list(target="lab")) == 1


def test_leftover_directory_without_a_row_is_replaced(store, tmp_path):
    debris = store.directory("local", "web", "1.0.0")
    debris.mkdir(parents=True)
    (debris / "disk.qcow2").write_bytes(b"half written")
    (debris / "junk").write_text("x")
    debris.chmod(0o555)
    final = store.record(record_of("1.0.0"), staged(tmp_path, "new"))
    assert final == debris
    names = sorted(p.name for p in final.iterdir())
    assert names == ["disk.qcow2", "initrd.img", "provenance.json", "vmlinuz"]
    assert (final / "disk.qcow2").read_bytes() == b"qcow2 new"
    assert [r.version for r in store.list(target="local")] == ["1.0.0"]


def test_recorded_version_is_frozen(store, tmp_path):
    final = store.record(record_of("1.0.0"), staged(tmp_path, "a"))
    assert stat.S_IMODE(final.stat().st_mode) == 0o555
    for name in ("disk.qcow2", "vmlinuz", "initrd.img", "provenance.json"):
        assert stat.S_IMODE((final / name).stat().st_mode) == 0o444, name


def test_remove_tree_removes_frozen_directories(store, tmp_path):
    final = store.record(record_of("1.0.0"), staged(tmp_path, "a"))
    nested = tmp_path / "nested"
    (nested / "a" / "b").mkdir(parents=True)
    (nested / "a" / "b" / "f").write_text("x")
    for path in (nested / "a" / "b", nested / "a", nested):
        path.chmod(0o555)
    remove_tree(final)
    remove_tree(nested)
    assert not final.exists() and not nested.exists()
    remove_tree(tmp_path / "never-existed")  # no error


# --- the bake lock --------------------------------------------------------------------------------

TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a+") as handle:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("blocked")
    else:
        print("acquired")
"""


def try_lock(lock: Path) -> str:
    done = subprocess.run([sys.executable, "-c", TRY_LOCK, str(lock)], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_exclusive_blocks_another_process_until_released(tmp_path):
    lock = tmp_path / "locks" / "local--web.lock"
    with exclusive(lock):
        assert lock.read_text() == str(os.getpid())
        assert try_lock(lock) == "blocked"
    assert try_lock(lock) == "acquired"
    assert lock.read_text() == ""


def test_exclusive_waits_for_the_holder_and_names_it(tmp_path):
    lock = tmp_path / "locks" / "local--web.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom pathlib import Path\nfrom bakery.workspace import exclusive\n"
            "with exclusive(Path(sys.argv[1])):\n    print('holding', flush=True)\n    sys.stdin.readline()\n",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        waited_for: list[str] = []
        told = threading.Event()
        acquired = threading.Event()

        def on_wait(pid: str) -> None:
            waited_for.append(pid)
            told.set()

        def take() -> None:
            with exclusive(lock, on_wait):
                acquired.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert told.wait(10), "on_wait was not called while another process held the lock"
        assert waited_for == [str(holder.pid)]
        assert not acquired.is_set()
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert acquired.wait(10), "the lock was not taken once its holder let go"
        taker.join(10)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)
