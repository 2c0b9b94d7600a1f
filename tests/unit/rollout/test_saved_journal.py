"""A rollout journal as bakery wrote it before the rollout service was split into rooms
(.bakery/rollouts/GROUP.json, every key as it was) still resumes, and still rolls back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bakery.core.catalog import ImageRecord
from bakery.groups.base import Instance, Release
from bakery.workspace import Workspace
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
OLD = Release("web@1.0.0", "/catalog/web/1.0.0", None, "sha256:1.0.0")
NEW = Release("web@1.0.2", "/catalog/web/1.0.2", None, "sha256:1.0.2")


def record(version: str) -> ImageRecord:
    return ImageRecord(
        "web",
        version,
        "local",
        "local",
        f"sha256:{version}",
        "2026-11-27T00:00:00Z",
        "sha256:base",
        locations=(f"/catalog/web/{version}",),
    )


class Catalog:
    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        return [record(v) for v in ("1.0.0", "1.0.2") if name in (None, "web")]


def saved_journal() -> dict[str, Any]:
    """What the previous version wrote when wave-2 of r-0123456789ab was interrupted."""
    return {
        "rollout": {
            "id": "r-0123456789ab",
            "kind": "rollout",
            "to": {
                "image": "web@1.0.2",
                "image_id": "/catalog/web/1.0.2",
                "template": None,
                "inputs_digest": "sha256:1.0.2",
            },
            "previous": {
                "image": "web@1.0.0",
                "image_id": "/catalog/web/1.0.0",
                "template": None,
                "inputs_digest": "sha256:1.0.0",
            },
            "strategy": "canary",
            "size": 2,
            "who": "alice@build-1",
            "started": "2026-12-01T10:00:00Z",
            "reason": None,
            "host": "build-1",
            "pid": 4242,
        },
        "status": "interrupted",
        "done": ["template", "wave-1"],
        "current": "wave-2",
        "phase": "forward",
        "values": {"moved": 1},
        "started": "2026-12-01T10:00:00Z",
        "updated": "2026-12-01T10:00:09Z",
        "error": "interrupted during wave-2",
    }


@pytest.fixture
def world(project_dir: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDriver]:
    project_dir.write(VALID_YAML[: VALID_YAML.index("groups:")] + GROUPS)
    driver = FakeDriver()
    monkeypatch.setattr("bakery.rollout.service.get_driver", lambda *a, **k: driver)
    monkeypatch.setattr("bakery.rollout.service.Rollouts.target_provider", lambda self, target: Catalog())
    driver.seed("web-local", OLD)
    group = driver.group("web-local")  # wave 1 done: one instance on the new image
    group.intended = NEW
    group.instances = [group.instances[0], Instance("vm-9", NEW.image, NEW.image_id, "serving", "healthy")]
    path = Workspace.for_project(project_dir.root).root / "rollouts" / "web-local.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved_journal(), indent=2, sort_keys=True))
    yield driver


def test_a_journal_of_the_previous_version_resumes_at_its_step(world: FakeDriver, bakery_cli: Any) -> None:
    resumed = bakery_cli("rollout", "web-local", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming rollout r-0123456789ab of web-local at wave-2" in resumed.stderr
    assert world.runs("web-local") == {"web@1.0.2": 2}
    entry = world.history("web-local", None, None)[-1]  # type: ignore[arg-type]
    assert (entry.id, entry.result, entry.from_, entry.to, entry.who) == (
        "r-0123456789ab",
        "succeeded",
        OLD,
        NEW,
        "alice@build-1",
    )


def test_a_journal_of_the_previous_version_is_undone_by_rollback(world: FakeDriver, bakery_cli: Any) -> None:
    undone = bakery_cli("rollback", "web-local", "--yes")
    assert undone.exit_code == 0, undone.output
    assert world.runs("web-local") == {"web@1.0.0": 2}
    entry = world.history("web-local", None, None)[-1]  # type: ignore[arg-type]
    assert (entry.id, entry.result) == ("r-0123456789ab", "rolled-back")
