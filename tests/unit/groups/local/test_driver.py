"""The local group driver (bakery/groups/local/driver.py) where it starts nothing: the release of a
catalog image and `down` of a group that never ran. Its rollouts on the real HAProxy are in
tests/integration/test_groups_local.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bakery.config.models import Group, Health, LocalGroup, LocalTarget, Strategy
from bakery.core.catalog import ImageRecord
from bakery.errors import UsageError
from bakery.groups.base import Release
from bakery.groups.local.driver import LocalDriver
from bakery.progress import Recording
from bakery.providers.local.boot import free_port
from bakery.workspace import Workspace


def group(kind: str = "rolling", size: int = 2, **strategy_fields: Any) -> Group:
    return Group(
        image="web",
        target="local",
        local=LocalGroup(size=size, port=free_port(), memory=256, cpus=1),
        strategy=Strategy(type=kind, bake_seconds=1, **strategy_fields),  # type: ignore[arg-type]
        health=Health(grace_seconds=0, timeout_seconds=5, healthy_threshold=1, interval_seconds=1),
    )


TARGET = LocalTarget(kind="local", accelerator="tcg")


def test_release_of_a_catalog_image(tmp_path: Path) -> None:
    directory = tmp_path / "web" / "1.0.3"
    directory.mkdir(parents=True)
    record = ImageRecord("web", "1.0.3", "local", "local", "sha256:abc", "now", "base", locations=(str(directory),))
    driver = LocalDriver(Workspace(tmp_path), Recording())
    assert driver.release_of(record, TARGET) == Release("web@1.0.3", str(directory), None, "sha256:abc")
    gone = ImageRecord("web", "1.0.4", "local", "local", "sha256:d", "now", "base", locations=(str(tmp_path / "x"),))
    with pytest.raises(UsageError) as missing:
        driver.release_of(gone, TARGET)
    assert missing.value.message == "web@1.0.4 has no directory in the local catalog"


def test_down_of_a_group_that_never_ran_writes_nothing(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    assert LocalDriver(ws, Recording()).down("web-local", group(), TARGET) == []
    assert not (ws.root / "groups").exists()
