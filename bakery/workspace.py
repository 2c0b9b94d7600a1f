"""Where bakery keeps its state for one project: caches, the local catalog, build logs."""

from __future__ import annotations

import os
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
