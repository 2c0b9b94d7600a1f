"""`bakery rollout/rollback/status/history` on a managed instance group of the fake Compute server,
in-process, as a user runs them: exit codes, messages, and the group as GCE reports it after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from bakery import steps
from bakery.cli.app import app
from tests.integration.gcp_groups import CHECK, OWN_POLICY, PROJECT, TEMPLATES, ZONE, World, gcp_world, seed_mig

GROUP = "web-gcp"
runner = CliRunner()


def bakery(*args: str) -> Result:
    return runner.invoke(app, list(args))


def write_config(world: World, root: Path, **group: Any) -> None:
    settings = {"mig": "web-mig", "zone": ZONE, "health_check": CHECK, **group.pop("gcp", {})}
    config = {
        "targets": {"gcp": {"kind": "gcp", "project": PROJECT, "zone": ZONE, "endpoint": world.gce.endpoint}},
        "images": {
            "web": {
                "version": "1.0",
                "source": {"gcp": {"image": "debian-12", "project": "debian-cloud"}},
                "playbooks": ["playbooks/base.yml"],
            }
        },
        "groups": {
            GROUP: {
                "image": "web",
                "target": "gcp",
                "health": {"grace_seconds": 0, "timeout_seconds": 3},
                "strategy": {"type": "rolling", "bake_seconds": 0, "retention_seconds": 0},
                "gcp": settings,
                **group,
            }
        },
    }
    (root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    root = tmp_path / "project"
    (root / "playbooks").mkdir(parents=True)
    (root / "playbooks" / "base.yml").write_text("- hosts: all\n  tasks: []\n")
    monkeypatch.chdir(root)
    monkeypatch.setenv("BAKERY_HOME", str(root / ".bakery"))
    with gcp_world(tmp_path, monkeypatch) as made:
        seed_mig(made)
        write_config(made, root)
        yield made


def test_a_rolling_rollout_succeeds_and_status_and_history_say_so(world: World) -> None:
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 0, result.output
    assert world.images_of() == ["web-1-0-1"] * 3
    status = bakery("status", GROUP, "--json")
    assert status.exit_code == 0, status.output
    assert "web@1.0.1" in status.stdout
    history = bakery("history", GROUP, "--json")
    assert history.exit_code == 0, history.output
    assert '"result": "succeeded"' in history.stdout and "web@1.0.0" in history.stdout


def test_a_canary_that_fails_its_health_check_is_rolled_back_and_exits_1_with_the_reason(world: World) -> None:
    write_config(world, Path.cwd(), strategy={"type": "canary", "canary_size": 1, "bake_seconds": 0})
    world.gce.groups.fault("web-1-0-1")
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert "failed and was rolled back to web@1.0.0" in result.output
    assert "UNHEALTHY by health check web-hc" in result.output
    assert world.images_of() == ["web-1-0-0"] * 3
    assert world.mig()["instanceTemplate"] == f"https://www.googleapis.com/compute/v1/{TEMPLATES}/web-tmpl"
    history = bakery("history", GROUP, "--json")
    assert '"result": "rolled-back"' in history.stdout


def test_rollback_after_a_completed_rollout_restores_the_previous_template(world: World) -> None:
    assert bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes").exit_code == 0
    result = bakery("rollback", GROUP, "--yes")
    assert result.exit_code == 0, result.output
    assert world.images_of() == ["web-1-0-0"] * 3
    assert world.mig()["instanceTemplate"].endswith("/instanceTemplates/web-tmpl")
    again = bakery("rollback", GROUP, "--yes")
    assert again.exit_code == 2 and "was a rollback; the group runs web@1.0.0" in again.output


def test_a_second_rollout_is_refused_while_another_machine_moves_the_group(world: World) -> None:
    first = world.new_rollout(world.group("canary"), "1.0.1")  # another machine's canary, held
    steps.execute(world.driver().rollout_steps(first)[:3], world.journal(first), world.reporter)
    result = bakery("rollout", GROUP, "--image", "web@1.0.2", "--yes")
    assert result.exit_code == 1, result.output
    assert f"{GROUP} is moving now: rollout {first.id} to web@1.0.1" in result.output
    assert "alice@laptop" in result.output
    assert world.images_of() == ["web-1-0-0"] * 2 + ["web-1-0-1"]


def test_status_exits_3_on_an_image_bakery_did_not_bake_and_0_after_a_rollout(world: World) -> None:
    world.gce.add_image("debian-cloud", "debian-12")
    world.gce.groups.templates.add(PROJECT, "hand-made", image="debian-cloud/debian-12")
    drifting = world.gce.groups.add_mig(
        PROJECT, "hand-mig", template=f"{TEMPLATES}/hand-made", size=2, zone=ZONE, health_check=CHECK
    )
    write_config(world, Path.cwd(), gcp={"mig": drifting["name"]})
    status = bakery("status", GROUP, "--json")
    assert status.exit_code == 3, status.output
    assert json.loads(status.stdout)
    assert bakery("rollout", GROUP, "--image", "web@1.0.2", "--yes").exit_code == 0
    assert world.images_of("hand-mig") == ["web-1-0-2"] * 2
    assert bakery("status", GROUP).exit_code == 0


def test_a_failed_rollout_with_rollback_off_leaves_the_mig_stopped_and_a_new_rollout_may_go(world: World) -> None:
    write_config(world, Path.cwd(), rollback=False, strategy={"type": "canary", "canary_size": 1, "bake_seconds": 0})
    world.gce.groups.set_policy(PROJECT, "web-mig", OWN_POLICY, zone=ZONE)
    own = world.mig()["updatePolicy"]
    world.gce.groups.fault("web-1-0-1")
    failed = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert failed.exit_code == 1, failed.output
    assert "UNHEALTHY by health check web-hc" in failed.output
    assert world.mig()["updatePolicy"]["type"] == "OPPORTUNISTIC"  # nothing more replaced, unwatched
    assert "rollback is off, so it stays OPPORTUNISTIC" in failed.output
    assert bakery("status", GROUP).exit_code == 3  # one instance on the bad image
    result = bakery("rollout", GROUP, "--image", "web@1.0.2", "--yes")
    assert result.exit_code == 0, result.output
    assert world.images_of() == ["web-1-0-2"] * 3
    assert world.mig()["updatePolicy"] == own  # the owner's, from before the failed rollout


def backends(world: World) -> list[str]:
    return [b["group"].rpartition("/")[2] for b in world.gce.groups.backends.get(PROJECT, "web-bs")["backends"]]


def test_blue_green_twice_then_rollback_and_prune_of_the_retired_group(world: World) -> None:
    world.gce.groups.backends.add(PROJECT, "web-bs", groups=(world.mig()["instanceGroup"],))
    write_config(
        world, Path.cwd(), gcp={"backend_service": "web-bs"}, strategy={"type": "blue-green", "retention_seconds": 0}
    )
    first = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes", "--json")
    assert first.exit_code == 0, first.output
    first_id = json.loads(first.stdout)["id"]
    assert backends(world) == [f"web-mig-{first_id}"]
    assert world.mig()["targetSize"] == 0  # images.yaml's MIG, kept at 0
    second = bakery("rollout", GROUP, "--image", "web@1.0.2", "--yes", "--json")
    assert second.exit_code == 0, second.output
    second_id = json.loads(second.stdout)["id"]
    assert backends(world) == [f"web-mig-{second_id}"]
    assert world.images_of(f"web-mig-{second_id}") == ["web-1-0-2"] * 3
    assert f"pruned MIG web-mig-{first_id} ({ZONE})" in second.output  # retired, past its retention
    assert world.mig()["targetSize"] == 0  # never deleted: it is not bakery's
    back = bakery("rollback", GROUP, "--yes")
    assert back.exit_code == 0, back.output
    served = backends(world)
    assert len(served) == 1 and world.images_of(served[0]) == ["web-1-0-1"] * 3
    assert bakery("status", GROUP).exit_code == 0
