"""build --stale scheduling: parents first, failures stop only their descendants."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from bakery.bake.plan import NEW, STALE, UP_TO_DATE, Plan, PlanItem
from bakery.bake.rebuild import BUILT, FAILED, NOT_BUILT, SKIPPED, rebuild
from bakery.bake.service import Baker, BuildResult
from bakery.core.catalog import ImageRecord
from bakery.errors import BuildError
from bakery.progress import Recording
from bakery.workspace import Workspace


def item(image: str, status: str, parent: str | None = None) -> PlanItem:
    return PlanItem(image, "aws", status, ["why"], "sha256:x", None, parent, [f"{parent}@aws"] if parent else [])


PLAN = Plan(
    [
        item("base", STALE),
        item("web", STALE, "base"),
        item("api", NEW, "web"),
        item("other", NEW),
        item("quiet", UP_TO_DATE),
    ]
)


@pytest.fixture()
def baked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    order: list[str] = []
    lock = threading.Lock()

    def fake_bake(self: Baker, name: str, target: str, *, force: bool = False) -> BuildResult:
        with lock:
            order.append(name)
        if name in FAILING:
            raise BuildError(f"packer build failed for {name}")
        record = ImageRecord(name, "1.0.0", target, "aws", "sha256:x", "2026-01-01T00:00:00Z", "ami-1")
        return BuildResult(record, "sha256:x", None, 1.0)

    monkeypatch.setattr(Baker, "bake", fake_bake)
    FAILING.clear()
    return order


FAILING: set[str] = set()


def run(jobs: int = 1) -> dict[str, Any]:
    result = rebuild(None, Workspace(Path("/nonexistent")), Recording(), PLAN, jobs=jobs)  # type: ignore[arg-type]
    return {o.image: o for o in result.outcomes} | {"_ok": result.ok}


def test_parents_before_children(baked: list[str]) -> None:
    outcome = run(jobs=3)
    assert baked.index("base") < baked.index("web") < baked.index("api")
    assert "quiet" not in baked
    assert outcome["quiet"].status == SKIPPED
    assert all(outcome[n].status == BUILT for n in ("base", "web", "api", "other"))
    assert outcome["_ok"] is True


def test_failure_marks_descendants_and_spares_unrelated(baked: list[str]) -> None:
    FAILING.add("web")
    outcome = run(jobs=2)
    assert outcome["base"].status == BUILT
    assert outcome["web"].status == FAILED and "packer build failed for web" in outcome["web"].detail
    assert outcome["api"].status == NOT_BUILT and outcome["api"].detail == "not built: web@aws failed"
    assert outcome["other"].status == BUILT
    assert "api" not in baked
    assert outcome["_ok"] is False


def test_waves_group_by_dependency_depth() -> None:
    waves = [[i.image for i in wave] for wave in PLAN.waves()]
    assert waves == [["base", "other"], ["web"], ["api"]]


def test_a_failure_stops_every_generation_below_it(baked: list[str]) -> None:
    FAILING.add("base")
    outcome = run(jobs=1)
    assert outcome["web"].status == NOT_BUILT and outcome["web"].detail == "not built: base@aws failed"
    assert outcome["api"].status == NOT_BUILT and outcome["api"].detail == "not built: web@aws failed"
    assert outcome["other"].status == BUILT
    assert baked == ["base", "other"]
