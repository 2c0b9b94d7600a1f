"""The rollout rooms' shared world: a project with one local group of 2, an in-memory group driver
(tests/fakes/driver.py) running web@1.0.0, and a catalog of web 1.0.0 to 1.0.2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bakery.core.catalog import ImageRecord
from bakery.groups.base import Release
from tests.conftest import VALID_YAML
from tests.fakes.driver import FakeDriver

GROUPS = """\
groups:
  web-local:
    image: web
    target: local
    local: {size: 2, port: 18080}
    strategy: {type: canary, canary_size: 1, batch_size: 1, bake_seconds: 0}
"""


def record(version: str, name: str = "web") -> ImageRecord:
    return ImageRecord(
        name,
        version,
        "local",
        "local",
        f"sha256:{version}",
        "2026-11-27T00:00:00Z",
        "sha256:base",
        locations=(f"/catalog/{name}/{version}",),
    )


class Catalog:
    def __init__(self) -> None:
        self.records = [record("1.0.0"), record("1.0.1"), record("1.0.2")]

    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        return [r for r in self.records if name in (None, r.name) and r.target == target]


@pytest.fixture
def world(project_dir: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDriver]:
    project_dir.write(VALID_YAML[: VALID_YAML.index("groups:")] + GROUPS)
    driver, catalog = FakeDriver(), Catalog()
    monkeypatch.setattr("bakery.rollout.service.get_driver", lambda *a, **k: driver)
    monkeypatch.setattr("bakery.rollout.service.Rollouts.target_provider", lambda self, target: catalog)
    driver.seed("web-local", Release("web@1.0.0", "/catalog/web/1.0.0", None, "sha256:1.0.0"))
    yield driver
