"""`bakery status` (bakery/rollout/status.py): why a group drifts from its intended image, which revoked
images it runs, and the exit code (0 in sync, 3 drift, 1 unreadable)."""

from __future__ import annotations

from typing import Any

import pytest

from bakery.groups.base import ActiveRollout, GroupState, Instance, Release
from bakery.progress import Recording
from bakery.rollout.service import Rollouts
from bakery.rollout.status import EXIT_DRIFT, EXIT_IN_SYNC, EXIT_UNREADABLE, drift_of, revoked_in, status
from bakery.trust.revocations import Revocation
from bakery.workspace import Workspace
from tests.fakes.driver import FakeDriver
from tests.unit.rollout.conftest import record

ONE = Release("web@1.0.0", "/catalog/web/1.0.0", None, "sha256:1.0.0")


def state(*images: str | None, intended: Release | None = ONE, running: bool = True, **more: Any) -> GroupState:
    instances = tuple(
        Instance(f"web-local-{n}", image, f"/catalog/{image or 'by-hand'}", "serving", "healthy")
        for n, image in enumerate(images, 1)
    )
    return GroupState("web-local", "local", running, intended, instances, **more)


def test_a_group_on_its_intended_image_is_in_sync() -> None:
    assert drift_of(state("web@1.0.0", "web@1.0.0"), None) == []


def test_a_group_that_is_not_running_says_how_to_bring_it_up() -> None:
    assert drift_of(state(running=False), None) == ["the group is not running (bakery rollout brings it up)"]


def test_instances_on_another_image_are_counted_and_named() -> None:
    assert drift_of(state("web@1.0.0", "web@0.9.0", None), None) == [
        "1 instance(s) on /catalog/by-hand, an image bakery did not bake, not web@1.0.0",
        "1 instance(s) on web@0.9.0, not web@1.0.0",
    ]


def test_a_template_on_an_image_bakery_did_not_bake_is_drift() -> None:
    by_hand = Release(None, "ami-0handmade")
    assert (
        drift_of(state(None, intended=by_hand), None)[0]
        == "its template runs ami-0handmade, an image bakery did not bake"
    )
    assert drift_of(state(intended=None), None) == ["its template runs nothing, an image bakery did not bake"]


def test_an_unfinished_rollout_is_drift_naming_where_it_stopped() -> None:
    active = ActiveRollout("r-0123456789ab", "web@1.0.1", "wave-2 (interrupted)", None, "t", "a@h", "h (pid 1)")
    assert drift_of(state("web@1.0.0"), active) == [
        "rollout r-0123456789ab to web@1.0.1 is unfinished (at wave-2 (interrupted))"
    ]


def test_revoked_images_the_group_runs_or_intends_are_named_with_their_count() -> None:
    base, web = record("1.0.0", name="base"), record("1.0.0")
    web = type(web)(**{**web.__dict__, "parent": "base@1.0.0"})
    records = {base.ref: base, web.ref: web}
    table = {("local", "base@1.0.0"): Revocation("local", "base@1.0.0", "2026-01-01T00:00:00Z", "CVE-1", "a@h", "t")}
    assert revoked_in(state("web@1.0.0", "web@1.0.0"), records, table) == [
        "runs revoked image web@1.0.0 (2 instance(s)): revoked since 2026-01-01T00:00:00Z "
        "(inherited from base@1.0.0): CVE-1 (by a@h)"
    ]
    assert revoked_in(state(), records, table)[0].startswith("runs revoked image web@1.0.0 (0 instance(s))")
    scheduled = {("local", "web@1.0.0"): Revocation("local", "web@1.0.0", "2999-01-01T00:00:00Z", "r", "a@h", "t")}
    assert revoked_in(state("web@1.0.0"), records, scheduled) == []


# --- the report --------------------------------------------------------------------------------


def rollouts(project_dir: Any) -> Rollouts:
    return Rollouts(project_dir.load(), Workspace(project_dir.home), Recording())


def test_the_exit_code_is_0_in_sync_and_3_on_drift(project_dir: Any, world: FakeDriver) -> None:
    report = status(rollouts(project_dir), [])
    assert report.exit_code == EXIT_IN_SYNC
    (group,) = report.groups
    assert (group.group, group.intended, group.counts, group.newest) == (
        "web-local",
        ONE,
        {"web@1.0.0": 2},
        "web@1.0.2",
    )
    assert (group.healthy, group.unhealthy, group.drift, group.reasons) == (2, 0, False, ())

    world.mark_foreign("web-local", 1)
    drifted = status(rollouts(project_dir), ["web-local"])
    assert drifted.exit_code == EXIT_DRIFT
    assert drifted.groups[0].drift is True
    assert drifted.groups[0].reasons == ("1 instance(s) on ami-0handmade, an image bakery did not bake, not web@1.0.0",)


def test_revocations_that_cannot_be_read_make_the_report_unreadable(
    project_dir: Any, world: FakeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = rollouts(project_dir)
    service.trust.store.create("revocations/local/web/1.0.0.json", b"{not json")
    report = status(service, [])
    assert report.exit_code == EXIT_UNREADABLE
    assert report.groups[0].reasons == ("revocations could not be read from the registry",)
    assert isinstance(service.reporter, Recording)
    assert service.reporter.notes[0].startswith("warning: cannot read revocations from the registry: ")
