"""The bake's world for the unit tier: the fake provider, a stand-in `packer` on PATH, and a
recording reporter (tests/unit/bake/test_service.py, test_traces.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bakery.bake import tools
from bakery.bake.service import Baker, BuildResult
from bakery.progress import Recording
from bakery.workspace import Workspace
from tests.fakes.provider import FakePacker, FakeProvider


@pytest.fixture()
def packer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePacker]:
    stand_in = FakePacker(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{stand_in.bin_dir}{os.pathsep}{os.environ['PATH']}")
    tools.packer_version.cache_clear()  # the version is read once per process: read the stand-in's
    yield stand_in
    tools.packer_version.cache_clear()


@dataclass
class World:
    project_dir: Any
    fake: FakeProvider
    packer: FakePacker
    reporter: Recording

    @property
    def ws(self) -> Workspace:
        return Workspace(self.project_dir.home)

    def bake(self, *, force: bool = False) -> BuildResult:
        baker = Baker(self.project_dir.load(), self.ws, self.reporter, provider=self.fake)
        return baker.bake("web", "aws", force=force)

    def work_directories(self) -> list[str]:
        return [p.name for p in self.ws.builds.iterdir() if p.is_dir()]

    def logs(self) -> list[Path]:
        return sorted(self.ws.builds.glob("*.log"))


@pytest.fixture()
def world(project_dir: Any, tmp_path: Path, packer: FakePacker) -> World:
    return World(project_dir, FakeProvider(inbox=tmp_path / "cloud"), packer, Recording())
