"""Where bakery keeps its state for one project (caches, the local catalog, build logs), and the
two ways state is touched safely: an exclusive lock file, and removing a tree made read-only."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def for_project(cls, project_root: Path) -> Workspace:
        """$BAKERY_HOME, else .bakery/ beside images.yaml."""
        home = os.environ.get("BAKERY_HOME")
        return cls(Path(home).resolve() if home else project_root / ".bakery")

    @property
    def base_cache(self) -> Path:
        return self.root / "cache" / "base"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def catalog_db(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def probes(self) -> Path:
        return self.root / "cache" / "probes"

    def ensure(self) -> Workspace:
        for path in (self.base_cache, self.images, self.builds, self.locks, self.probes):
            path.mkdir(parents=True, exist_ok=True)
        return self


def remove_tree(path: Path) -> None:
    """rmtree that also removes frozen (read-only) directories."""
    if not path.exists():
        return
    for sub in [path, *path.rglob("*")]:
        if sub.is_dir() and not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(path)


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
