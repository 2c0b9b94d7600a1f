"""A registry store in a directory: one file per key, for one machine or a shared filesystem.

`create` is atomic and complete: the bytes go to a temporary file beside the target, are synced,
then hard-linked to the key's name, which fails if the name exists (so a reader never sees half
an object, and of two creators exactly one wins, across processes). `replace` compares the
version (the content's sha256) and renames over the key under an exclusive lock on the store's
lock file, which `delete` takes too, so a replace never resurrects what was deleted meanwhile.
Names starting with '.' are the store's own (temporary files, the lock): no key may use them.

What is read back is untrusted: only regular files are read (opened without following a symlink
and without blocking, so a FIFO or a device is named, never waited on or read whole), no larger
than MAX_OBJECT_BYTES, and only in directories that really are inside the store (a directory
replaced by a symlink to elsewhere is refused, for reads and writes alike).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from bakery.errors import Conflict, ProviderError
from bakery.registry.base import MAX_OBJECT_BYTES, Blob, refused_object, too_large

LOCK_NAME = ".lock"


def version_of(data: bytes) -> str:
    """A local object's version: the sha256 of its bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """Objects as files under `root` (made on the first write)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._top = str(root)

    @property
    def where(self) -> str:
        return f"{self.root}/"

    def get(self, key: str) -> Blob | None:
        return self.get_many([key]).get(key)

    def create(self, key: str, data: bytes) -> str:
        path = Path(self._path(key))
        with self._errors(f"create {key}"):
            existing = path.parent
            while existing != self.root and not existing.exists():
                existing = existing.parent
            if existing.exists():
                self._inside(str(existing), key)  # before making anything below it
            path.parent.mkdir(parents=True, exist_ok=True)
            self._inside(str(path.parent), key)
            with self._staged(path, data) as staged:
                try:
                    os.link(staged, path)
                except FileExistsError:
                    raise Conflict(f"{key} exists already in {self.where}") from None
        return version_of(data)

    def replace(self, key: str, data: bytes, *, version: str) -> str:
        path = Path(self._path(key))
        with self._errors(f"replace {key}"), self._locked():
            self._inside(str(path.parent), key)
            current = self.get(key)
            if current is None:
                raise Conflict(f"{key} is gone from {self.where}")
            if current.version != version:
                raise Conflict(f"{key} changed in {self.where} since it was read")
            with self._staged(path, data) as staged:
                os.replace(staged, path)
        return version_of(data)

    def delete(self, key: str) -> None:
        path = Path(self._path(key))
        if not path.exists():
            return  # nothing to delete (and no lock file to make in a store never written)
        with (
            self._errors(f"delete {key}"),
            self._locked(),
            contextlib.suppress(FileNotFoundError, NotADirectoryError),
        ):
            self._inside(str(path.parent), key)
            path.unlink()

    def keys(self, prefix: str = "") -> list[str]:
        # Walk only the directory the prefix ends in: "audit/" or "audit/0001" both start there.
        top = prefix.rpartition("/")[0]
        directory = self._path(top) if top else self._top
        with self._errors(f"list {prefix or 'every key'}"):
            if os.path.isdir(directory):
                self._inside(directory, prefix)
            found = list(_walk(directory, f"{top}/" if top else ""))
        return sorted(key for key in found if key.startswith(prefix))

    def get_many(self, keys: list[str]) -> dict[str, Blob]:
        # One plain loop of open/read (no pathlib, one error guard): 10,000 small objects, such as
        # a long audit log being verified, are read in a fraction of a second.
        found: dict[str, Blob] = {}
        checked: set[str] = set()  # directories seen to be inside the store
        with self._errors(f"read {keys[0] if len(keys) == 1 else f'{len(keys)} objects'}"):
            for key in keys:
                path = self._path(key)
                directory = os.path.dirname(path)
                if directory not in checked:
                    if not os.path.isdir(directory):
                        continue  # no object there
                    self._inside(directory, key)
                    checked.add(directory)
                data = self._read(path, key)
                if data is not None:
                    found[key] = Blob(data, version_of(data))
        return found

    def _read(self, path: str, key: str) -> bytes | None:
        """The bytes of the regular file at `path`; None when there is none (or a directory)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise refused_object(self.where, key, "is a symbolic link, not a file of the registry") from None
            raise
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                return None  # a directory is only a prefix of keys
            if not stat.S_ISREG(info.st_mode):
                raise refused_object(self.where, key, f"is {_kind(info.st_mode)}, not a regular file")
            if info.st_size > MAX_OBJECT_BYTES:
                raise too_large(self.where, key, info.st_size)
            data = os.read(fd, info.st_size + 1)
            while len(data) <= MAX_OBJECT_BYTES and (more := os.read(fd, MAX_OBJECT_BYTES + 1 - len(data))):
                data += more  # the file grew since fstat
        finally:
            os.close(fd)
        if len(data) > MAX_OBJECT_BYTES:
            raise too_large(self.where, key, len(data))
        return data

    def _inside(self, directory: str, key: str) -> None:
        """Refuse a directory of `key` that is not where it seems: a symlink (at any depth below
        the store's root) to somewhere else."""
        real_root = os.path.realpath(self._top)
        relative = os.path.relpath(directory, self._top)
        wanted = real_root if relative == "." else os.path.join(real_root, relative)
        if os.path.realpath(directory) != wanted:
            top = key.split("/")[0]
            raise refused_object(
                self.where,
                key,
                f"lies in a directory that links out of the registry ({top}/ leads to {os.path.realpath(directory)})",
            )

    def _path(self, key: str) -> str:
        """The file of `key` (a string: reads of many objects skip pathlib's cost)."""
        parts = key.split("/")
        if not key or any(not part or part.startswith(".") for part in parts):
            # Keys are built by bakery, never typed by a user: a bad one is a bug, not a ProviderError.
            raise ValueError(f"not a registry key: {key!r} (empty parts and parts starting with '.' are refused)")
        return os.path.join(self._top, *parts)

    @contextlib.contextmanager
    def _staged(self, path: Path, data: bytes) -> Iterator[Path]:
        """`data` in a synced temporary file beside `path`, removed when the block ends (after a
        link it is a second name of the same file; after a rename it is already gone)."""
        staged = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            yield staged
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            hint = {
                errno.EACCES: "give this user read and write access to the directory",
                errno.EPERM: "give this user read and write access to the directory",
                errno.ENOSPC: "free some space on its filesystem",
                errno.EROFS: "point registry.path in images.yaml at a writable directory",
                errno.ENOTDIR: "a file stands where the registry's directories go: move it away",
                errno.EEXIST: "a file stands where the registry's directories go: move it away",
            }.get(exc.errno or 0, "check the directory (registry.path in images.yaml)")
            raise ProviderError(f"registry {self.where}: cannot {what}: {exc.strerror or exc}", hint=hint) from exc


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _walk(directory: str, base: str) -> Iterator[str]:
    """Every object's key below `directory` (whose own key prefix is `base`), in no order."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue  # temporary files and the lock
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, f"{base}{entry.name}/")
        else:
            yield f"{base}{entry.name}"
