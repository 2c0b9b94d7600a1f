"""The toy kind's group driver: instances kept in memory (the driver of tests/fakes/driver.py),
one per bakery home so that every CLI invocation of a test sees the same groups."""

from __future__ import annotations

from pathlib import Path

from bakery.config.kinds import TargetSpec
from bakery.config.models import Group
from bakery.core.catalog import ImageRecord
from bakery.groups.base import GroupState, Release
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory
from bakery.workspace import Workspace
from tests.fakes.driver import FakeDriver
from tests.toykind.models import ToyGroup

_FLEETS: dict[Path, ToyDriver] = {}


class ToyDriver(FakeDriver):
    kind = "toy"

    def read(self, name: str, group: Group, target_spec: TargetSpec) -> GroupState:
        settings = group.block(ToyGroup)
        if settings is not None:
            self.group(name).size = settings.size
        return super().read(name, group, target_spec)

    def release_of(self, record: ImageRecord, target_spec: TargetSpec) -> Release:
        return Release.of(record, record.locations[0] if record.locations else record.ref)


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> ToyDriver:
    root = workspace.root.resolve()
    if root not in _FLEETS:
        _FLEETS[root] = ToyDriver()
    return _FLEETS[root]


def forget() -> None:
    _FLEETS.clear()
