"""The local catalog: one immutable directory per image version, indexed in SQLite.

A version enters the catalog in one transaction, after its directory is complete and moved
into place; a directory without a row is debris of an interrupted record and is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from bakery.catalog import ImageRecord, version_key
from bakery.errors import BakeryError

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    name TEXT NOT NULL,
    target TEXT NOT NULL,
    version TEXT NOT NULL,
    inputs_digest TEXT NOT NULL,
    subject_sha256 TEXT NOT NULL,
    base TEXT NOT NULL,
    parent TEXT,
    path TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (name, target, version)
);
CREATE INDEX IF NOT EXISTS images_digest ON images (target, inputs_digest);
"""


class LocalStore:
    def __init__(self, db: Path, images: Path) -> None:
        self.db = db
        self.images = images

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            yield conn
        finally:
            conn.close()

    def directory(self, target: str, name: str, version: str) -> Path:
        return self.images / target / name / version

    def list(self, *, target: str, name: str | None = None) -> list[ImageRecord]:
        query = (
            "SELECT name, target, version, inputs_digest, subject_sha256, base, parent, path, created "
            "FROM images WHERE target = ?"
        )
        args: list[str] = [target]
        if name:
            query += " AND name = ?"
            args.append(name)
        with self._connect() as conn:
            rows = conn.execute(query, args).fetchall()
        records = [
            ImageRecord(
                name=r[0],
                target=r[1],
                version=r[2],
                kind="local",
                inputs_digest=r[3],
                subject_sha256=r[4],
                base=r[5],
                parent=r[6],
                locations=(r[7],),
                created=r[8],
            )
            for r in rows
        ]
        return sorted(records, key=lambda rec: (rec.name, version_key(rec.version)))

    def record(self, rec: ImageRecord, staged: Path) -> Path:
        """Move a complete image directory into place and index it, atomically as a pair."""
        final = self.directory(rec.target, rec.name, rec.version)
        if final.exists():
            if any(r.version == rec.version for r in self.list(target=rec.target, name=rec.name)):
                raise BakeryError(
                    f"{rec.ref} on {rec.target} is already in the catalog; versions are never overwritten"
                )
            remove_tree(final)  # debris of a record that was interrupted before its row was written
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        try:
            with self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        rec.name,
                        rec.target,
                        rec.version,
                        rec.inputs_digest,
                        rec.subject_sha256 or "",
                        rec.base,
                        rec.parent,
                        str(final),
                        rec.created,
                    ),
                )
                conn.execute("COMMIT")
        except BaseException:
            remove_tree(final)
            raise
        _freeze(final)
        return final

    def provenance(self, rec: ImageRecord) -> dict[str, object]:
        data: dict[str, object] = json.loads((Path(rec.locations[0]) / "provenance.json").read_text("utf-8"))
        return data


def remove_tree(path: Path) -> None:
    """rmtree that also removes frozen (read-only) directories."""
    if not path.exists():
        return
    for sub in [path, *path.rglob("*")]:
        if sub.is_dir() and not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(path)


def _freeze(directory: Path) -> None:
    """Read-only files and directory: a recorded version is not to be edited in place."""
    for path in directory.iterdir():
        path.chmod(0o444)
    directory.chmod(0o555)


@contextlib.contextmanager
def exclusive(lock_file: Path, on_wait: object = None) -> Iterator[None]:
    """Hold an exclusive lock; if another process holds it, call on_wait(pid) and wait."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            if callable(on_wait):
                on_wait(holder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
