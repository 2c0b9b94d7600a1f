"""The rollout service through the CLI, against an in-memory group driver (tests/fakes/driver.py):
which image, the plan, automatic rollback, resume, rollback after completion, status and drift."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.fakes.driver import FakeDriver


def test_a_rollout_moves_the_group_to_the_newest_version_and_says_so(world: FakeDriver, bakery_cli: Any) -> None:
    result = bakery_cli("rollout", "web-local", "--yes")
    assert result.exit_code == 0, result.output
    assert "now:      web@1.0.0" in result.stderr and "new:      web@1.0.2" in result.stderr
    assert "wave 1 (canary): 1 instance(s) -> 1/2 (50%)" in result.stderr
    assert "rollback: automatic on a failed gate, to web@1.0.0" in result.stderr
    assert "now runs web@1.0.2" in result.stdout
    # Off a terminal, progress is timestamped lines, with a look at the group after each step.
    assert re.search(r"^\d\d:\d\d:\d\d ==> wave-1", result.stderr, re.M)
    assert "web-local: wave 1/2; 1 web@1.0.0 serving, 1 web@1.0.2 serving; 2 healthy" in result.stderr
    assert "web-local: wave 2/2; 2 web@1.0.2 serving; 2 healthy" in result.stderr
    assert world.runs("web-local") == {"web@1.0.2": 2}
    assert [(e.kind, e.result, e.to.image) for e in world.history("web-local", None, None)] == [  # type: ignore[arg-type]
        ("rollout", "succeeded", "web@1.0.2")
    ]


def test_a_dry_run_prints_the_plan_and_changes_nothing(world: FakeDriver, bakery_cli: Any) -> None:
    result = bakery_cli("rollout", "web-local", "--image", "web@1.0.1", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kind"] == "rollout-plan" and doc["to"]["image"] == "web@1.0.1"
    assert [w["count"] for w in doc["plan"]["waves"]] == [1, 1]
    assert world.runs("web-local") == {"web@1.0.0": 2}


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("web@9.9.9", "web@9.9.9 is not a completely recorded image on local"),
        ("base@1.0.0", "base@1.0.0 is an image of base; this group runs web"),
        ("web", "--image takes NAME@VERSION"),
    ],
)
def test_an_image_the_group_cannot_run_is_refused(world: FakeDriver, bakery_cli: Any, image: str, message: str) -> None:
    result = bakery_cli("rollout", "web-local", "--image", image, "--yes")
    assert result.exit_code == 2
    assert message in result.stderr
    assert world.runs("web-local") == {"web@1.0.0": 2}


def test_without_a_terminal_or_yes_nothing_happens(world: FakeDriver, bakery_cli: Any) -> None:
    result = bakery_cli("rollout", "web-local")
    assert result.exit_code == 2
    assert "pass --yes" in result.stderr or "--yes was not given" in result.stderr
    assert world.runs("web-local") == {"web@1.0.0": 2}


def test_a_failed_gate_rolls_back_to_the_exact_previous_image(world: FakeDriver, bakery_cli: Any) -> None:
    world.bad.add("web@1.0.2")
    result = bakery_cli("rollout", "web-local", "--yes")
    assert result.exit_code == 1
    assert "failed and was rolled back to web@1.0.0" in result.stderr
    assert "answered GET /healthz -> 500" in result.stderr
    assert world.runs("web-local") == {"web@1.0.0": 2}
    entry = world.history("web-local", None, None)[-1]  # type: ignore[arg-type]
    assert (entry.result, entry.from_.image if entry.from_ else None) == ("rolled-back", "web@1.0.0")


def test_an_interrupted_rollout_resumes_where_it_stopped(world: FakeDriver, bakery_cli: Any) -> None:
    world.interrupt_at = "wave-2"
    first = bakery_cli("rollout", "web-local", "--yes")
    assert first.exit_code == 130
    assert world.runs("web-local") == {"web@1.0.0": 1, "web@1.0.2": 1}
    status = bakery_cli("status", "web-local")
    assert status.exit_code == 3
    assert "is unfinished (at wave-2 (interrupted))" in status.stdout
    refused = bakery_cli("rollout", "web-local", "--image", "web@1.0.1", "--yes")
    assert refused.exit_code == 2 and "is unfinished" in refused.stderr
    resumed = bakery_cli("rollout", "web-local", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming rollout" in resumed.stderr and "at wave-2" in resumed.stderr
    assert world.runs("web-local") == {"web@1.0.2": 2}
    assert bakery_cli("status", "web-local").exit_code == 0


def test_rollback_undoes_an_unfinished_rollout(world: FakeDriver, bakery_cli: Any) -> None:
    world.interrupt_at = "wave-2"
    assert bakery_cli("rollout", "web-local", "--yes").exit_code == 130
    result = bakery_cli("rollback", "web-local", "--yes")
    assert result.exit_code == 0, result.output
    assert "was rolled back to web@1.0.0" in result.stdout
    assert world.runs("web-local") == {"web@1.0.0": 2}


def test_rollback_after_a_completed_rollout_restores_the_previous_image(world: FakeDriver, bakery_cli: Any) -> None:
    assert bakery_cli("rollout", "web-local", "--yes").exit_code == 0
    back = bakery_cli("rollback", "web-local", "--yes", "--reason", "page typo")
    assert back.exit_code == 0, back.output
    assert world.runs("web-local") == {"web@1.0.0": 2}
    again = bakery_cli("rollback", "web-local", "--yes")
    assert again.exit_code == 2 and "was a rollback; the group runs web@1.0.0" in again.stderr
    assert "bakery rollout web-local --image web@1.0.2" in again.stderr
    history = bakery_cli("history", "web-local", "--json")
    entries = json.loads(history.stdout)["entries"]
    assert [(e["kind"], e["from"]["image"], e["to"]["image"], e["result"]) for e in entries] == [
        ("rollout", "web@1.0.0", "web@1.0.2", "succeeded"),
        ("rollback", "web@1.0.2", "web@1.0.0", "succeeded"),
    ]
    assert entries[1]["reason"] == "page typo"


def test_status_reports_drift_and_images_bakery_did_not_bake(world: FakeDriver, bakery_cli: Any) -> None:
    in_sync = bakery_cli("status", "--json")
    assert in_sync.exit_code == 0
    assert json.loads(in_sync.stdout)["groups"][0]["counts"] == {"web@1.0.0": 2}
    world.mark_foreign("web-local", 1)
    drift = bakery_cli("status")
    assert drift.exit_code == 3
    assert "1 instance(s) on ami-0handmade, an image bakery did not bake, not web@1.0.0" in drift.stdout


def test_a_second_rollout_of_a_group_is_refused_and_names_the_first(
    world: FakeDriver, bakery_cli: Any, project_dir: Any
) -> None:
    from bakery.rollout.locks import held

    with held(project_dir.home / "locks" / "group-web-local.lock", "web-local", "r-0123456789ab", "ops@build-1"):
        result = bakery_cli("rollout", "web-local", "--yes")
    assert result.exit_code == 1
    assert "another rollout of web-local is running: r-0123456789ab by ops@build-1" in result.stderr
    assert world.runs("web-local") == {"web@1.0.0": 2}


def test_an_unknown_group_is_named_with_the_known_ones(world: FakeDriver, bakery_cli: Any) -> None:
    result = bakery_cli("rollout", "web-lcoal", "--yes")
    assert result.exit_code == 2
    assert "no group 'web-lcoal'" in result.stderr and "groups: web-local" in result.stderr


def test_a_rollout_of_what_the_group_already_runs_changes_nothing(world: FakeDriver, bakery_cli: Any) -> None:
    result = bakery_cli("rollout", "web-local", "--image", "web@1.0.0", "--yes")
    assert result.exit_code == 0, result.output
    assert "up to date: every instance of web-local runs web@1.0.0; nothing to do" in result.stdout
    assert world.history("web-local", None, None) == []  # type: ignore[arg-type]
    assert world.calls == []


def test_a_cloud_that_cannot_be_asked_pauses_the_rollout_instead_of_rolling_back(
    world: FakeDriver, bakery_cli: Any
) -> None:
    from bakery.errors import ProviderError

    world.fail_at["wave-2"] = ProviderError("DescribeInstanceRefreshes: connection refused")
    paused = bakery_cli("rollout", "web-local", "--yes", "--json")
    assert paused.exit_code == 1
    assert "is paused at wave-2: DescribeInstanceRefreshes: connection refused" in paused.stderr
    doc = json.loads(paused.stdout)
    assert doc["details"]["result"] == "interrupted" and doc["details"]["to"]["image"] == "web@1.0.2"
    assert world.runs("web-local") == {"web@1.0.0": 1, "web@1.0.2": 1}  # not rolled back
    assert not any(c.startswith("rollback_steps") for c in world.calls)
    resumed = bakery_cli("rollout", "web-local", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert world.runs("web-local") == {"web@1.0.2": 2}


def test_a_gate_failure_in_json_names_the_rollout_and_what_it_restored(world: FakeDriver, bakery_cli: Any) -> None:
    world.bad.add("web@1.0.2")
    result = bakery_cli("rollout", "web-local", "--yes", "--json")
    assert result.exit_code == 1
    details = json.loads(result.stdout)["details"]
    assert (details["operation"], details["result"]) == ("rollout", "rolled-back")
    assert (details["from"]["image"], details["to"]["image"]) == ("web@1.0.0", "web@1.0.2")
    assert "answered GET /healthz -> 500" in details["reason"]


def test_a_resume_asks_first(world: FakeDriver, bakery_cli: Any) -> None:
    world.interrupt_at = "wave-2"
    assert bakery_cli("rollout", "web-local", "--yes").exit_code == 130
    asked = bakery_cli("rollout", "web-local")
    assert asked.exit_code == 2 and "--yes was not given" in asked.stderr
    assert "resume r-" in asked.stderr  # the plan says it is a resume
    assert world.runs("web-local") == {"web@1.0.0": 1, "web@1.0.2": 1}


def test_an_interrupted_rollback_after_completion_is_resumed(world: FakeDriver, bakery_cli: Any) -> None:
    assert bakery_cli("rollout", "web-local", "--yes").exit_code == 0
    world.interrupt_at = "wave-1"
    assert bakery_cli("rollback", "web-local", "--yes").exit_code == 130
    again = bakery_cli("rollback", "web-local", "--yes")
    assert again.exit_code == 0, again.output
    assert world.runs("web-local") == {"web@1.0.0": 2}


def test_a_refusal_by_the_first_step_leaves_no_trace(world: FakeDriver, bakery_cli: Any) -> None:
    """A driver's RolloutRefused is its word that nothing moved, whatever facts its journal holds:
    no history record, nothing unfinished, status in sync."""
    from bakery.errors import RolloutRefused

    world.fail_at["template"] = RolloutRefused("group web-local: the engine is busy with something else")
    refused = bakery_cli("rollout", "web-local", "--yes")
    assert refused.exit_code == 1
    assert "the engine is busy with something else" in refused.stderr
    assert world.group("web-local").history == []
    status = bakery_cli("status", "web-local")
    assert status.exit_code == 0, status.output
    assert bakery_cli("rollout", "web-local", "--yes").exit_code == 0  # nothing to resume: a new rollout
    assert world.runs("web-local") == {"web@1.0.2": 2}


def test_a_failure_after_facts_were_saved_is_paused_not_forgotten(world: FakeDriver, bakery_cli: Any) -> None:
    from bakery.errors import ProviderError

    world.fail_at["template"] = ProviderError("DescribeAutoScalingGroups: connection refused")
    paused = bakery_cli("rollout", "web-local", "--yes")
    assert paused.exit_code == 1 and "is paused at template" in paused.stderr
    assert bakery_cli("status", "web-local").exit_code == 3  # unfinished: it may have moved
