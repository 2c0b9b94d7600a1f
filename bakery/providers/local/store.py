"""The local catalog: one immutable directory per image version, indexed in SQLite.

A version enters the catalog in one transaction, after its directory is complete and moved
into place; a directory without a row is debris of an interrupted record and is removed.
Beside each entry, what trust adds to it (the directory itself never changes): the digest of
its signed attestation, the stamp fields of its provenance the entry does not hold (commit,
dirty, invocation), and its revocation while it is revoked.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bakery.core.catalog import ImageRecord, version_key
from bakery.errors import BakeryError, ProviderError
from bakery.providers.base import Claim
from bakery.workspace import remove_tree

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
CREATE TABLE IF NOT EXISTS trust (
    name TEXT NOT NULL,
    target TEXT NOT NULL,
    version TEXT NOT NULL,
    attestation TEXT,
    stamp TEXT,
    revoked TEXT,
    PRIMARY KEY (name, target, version)
);
"""
_COLUMNS = (
    "i.name, i.target, i.version, i.inputs_digest, i.subject_sha256, i.base, i.parent, i.path, i.created, "
    "t.attestation, t.stamp, t.revoked"
)
_JOIN = "images i LEFT JOIN trust t ON t.name = i.name AND t.target = i.target AND t.version = i.version"


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
        query = f"SELECT {_COLUMNS} FROM {_JOIN} WHERE i.target = ?"
        args: list[str] = [target]
        if name:
            query += " AND i.name = ?"
            args.append(name)
        with self._connect() as conn:
            rows = conn.execute(query, args).fetchall()
        records = [_record(row) for row in rows]
        return sorted(records, key=lambda rec: (rec.name, version_key(rec.version)))

    def entry(self, rec: ImageRecord) -> ImageRecord | None:
        """The catalog entry of `rec`'s name, target and version as it is now; None if there is none."""
        query = f"SELECT {_COLUMNS} FROM {_JOIN} WHERE i.name = ? AND i.target = ? AND i.version = ?"
        with self._connect() as conn:
            row = conn.execute(query, (rec.name, rec.target, rec.version)).fetchone()
        return None if row is None else _record(row)

    def claim(self, rec: ImageRecord) -> Claim:
        """What `rec`'s catalog entry says now (its stamp as the catalog holds it, each field named
        "catalog entry <field>"), with the provenance.json in its directory. ProviderError without
        an entry."""
        entry = self.entry(rec)
        if entry is None:
            raise ProviderError(f"{rec.ref} on {rec.target} has no catalog entry")
        stamp = {
            **entry.extra.get("stamp", {}),
            "image": entry.name,
            "version": entry.version,
            "target": entry.target,
            "state": "complete",  # the catalog holds nothing else
            "inputs-digest": entry.inputs_digest,
            "base": entry.base,
            "parent": entry.parent or "",
            "created": entry.created,
        }
        problems: tuple[str, ...] = ()
        try:
            document = self.provenance(entry)
        except (OSError, ValueError) as exc:
            document = None  # gone, or not JSON: the claim carries none, and says so
            problems = (f"its provenance.json cannot be read ({exc})",)
        return Claim(
            problems=problems,
            location=f"catalog entry {entry.ref} on {entry.target}",
            stamp=stamp,
            names={field: f"catalog entry {field}" for field in [*stamp, "attestation"]},
            attestation=entry.extra.get("attestation"),
            document=document,
        )

    def revoke(self, rec: ImageRecord, revoked: Mapping[str, str | None] | None) -> None:
        """Write (None: clear) the revocation of `rec`'s entry. ProviderError if it has no entry."""
        value = None if revoked is None else json.dumps(dict(revoked), sort_keys=True)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            if self._missing(conn, rec):
                conn.execute("ROLLBACK")
                raise ProviderError(f"{rec.ref} on {rec.target} has no catalog entry")
            conn.execute(
                "INSERT INTO trust (name, target, version, revoked) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name, target, version) DO UPDATE SET revoked = excluded.revoked",
                (rec.name, rec.target, rec.version, value),
            )
            conn.execute("COMMIT")

    def forget(self, rec: ImageRecord) -> Path | None:
        """Remove `rec`'s catalog entry (bakery prune), in one transaction; returns its directory
        (None when there was no entry). The directory is left for the caller to delete."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT path FROM images WHERE name = ? AND target = ? AND version = ?",
                (rec.name, rec.target, rec.version),
            ).fetchone()
            for table in ("images", "trust"):
                conn.execute(
                    f"DELETE FROM {table} WHERE name = ? AND target = ? AND version = ?",
                    (rec.name, rec.target, rec.version),
                )
            conn.execute("COMMIT")
        return None if row is None else Path(row[0])

    @staticmethod
    def _missing(conn: sqlite3.Connection, rec: ImageRecord) -> bool:
        found = conn.execute(
            "SELECT 1 FROM images WHERE name = ? AND target = ? AND version = ?", (rec.name, rec.target, rec.version)
        ).fetchone()
        return found is None

    def record(
        self, rec: ImageRecord, staged: Path, *, attestation: str | None = None, stamp: Mapping[str, str] | None = None
    ) -> Path:
        """Move a complete image directory into place and index it (with the digest of its signed
        attestation and the stamp of its provenance, if any), atomically as a pair."""
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
                # A new entry starts unrevoked, whatever an entry of that version left here.
                conn.execute(
                    "INSERT OR REPLACE INTO trust (name, target, version, attestation, stamp) VALUES (?, ?, ?, ?, ?)",
                    (rec.name, rec.target, rec.version, attestation, _kept(stamp)),
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


def _kept(stamp: Mapping[str, str] | None) -> str | None:
    """The fields of a stamp the images table does not hold, as JSON."""
    if not stamp:
        return None
    return json.dumps({k: v for k, v in stamp.items() if k in ("commit", "dirty", "invocation")}, sort_keys=True)


def _record(row: tuple[Any, ...]) -> ImageRecord:
    extra: dict[str, Any] = {}
    if row[9]:
        extra["attestation"] = row[9]
    if row[10]:
        extra["stamp"] = json.loads(row[10])
    marks: tuple[str, ...] = ()
    if row[11]:
        extra["revoked"] = json.loads(row[11])
        marks = (f"the local catalog marks {row[0]}@{row[2]} on {row[1]} revoked",)
    return ImageRecord(
        name=row[0],
        target=row[1],
        version=row[2],
        kind="local",
        inputs_digest=row[3],
        subject_sha256=row[4],
        base=row[5],
        parent=row[6],
        locations=(row[7],),
        created=row[8],
        extra=extra,
        revoked_marks=marks,
    )


def _freeze(directory: Path) -> None:
    """Read-only files and directory: a recorded version is not to be edited in place."""
    for path in directory.iterdir():
        path.chmod(0o444)
    directory.chmod(0o555)
