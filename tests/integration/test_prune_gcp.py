"""`bakery prune` on the fake Compute Engine: images a MIG or an instance template boots, a
channel's head, an image shared with others and the parent of a kept image stay; the others climb
the deprecation ladder at the policy's ages (DEPRECATED with their replacement, OBSOLETE, then
deleted), one rung per prune that finds it due."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bakery.cli.app import app
from bakery.config.load import load
from bakery.core import provenance
from bakery.errors import Interrupted
from bakery.progress import Silent
from bakery.providers.gcp.api import Compute
from bakery.prune.service import Pruner
from bakery.trust.context import TrustContext
from bakery.workspace import Workspace
from tests.fakes.gce_migs import API_ROOT
from tests.integration.channel_moves import promote
from tests.integration.gcp_groups import CHECK, PROJECT, ZONE, World, gcp_world, image_name, seed_mig, stamp_labels

runner = CliRunner()


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """web@1.0.0 run by the MIG web-mig (template web-tmpl), 1.0.1 booted by template batch-tmpl,
    1.0.2 the head of channel stable, 1.0.3 shared with a partner, 1.0.4 the parent of app@1.0.0,
    1.0.5 and 1.0.6 used by nothing, 1.0.7 the newest."""
    with gcp_world(tmp_path, monkeypatch) as w:
        for version in ("1.0.3", "1.0.4", "1.0.5", "1.0.6", "1.0.7"):
            w.gce.add_image(PROJECT, image_name(version), labels=stamp_labels(version))
        w.gce.groups.templates.add(PROJECT, "batch-tmpl", image=f"{PROJECT}/web-1-0-1")
        w.gce.share_image(PROJECT, "web-1-0-3", "user:partner@example.com")
        app = {**dict.fromkeys(("base", "commit"), ""), "image": "app", "version": "1.0.0", "target": "gcp"}
        app |= {"state": "complete", "inputs-digest": "sha256:" + "e" * 64, "created": "2026-01-01T00:00:00Z"}
        app |= {"invocation": "e" * 12, "parent": "web@1.0.4"}
        w.gce.add_image(PROJECT, "app-1-0-0", labels=provenance.gcp_stamp_labels(app))
        seed_mig(w, size=2)
        root = tmp_path / "project"
        (root / "playbooks").mkdir(parents=True)
        (root / "playbooks" / "base.yml").write_text("- hosts: all\n  tasks: []\n")
        config = {
            "targets": {"gcp": {"kind": "gcp", "project": PROJECT, "zone": ZONE, "endpoint": w.gce.endpoint}},
            "images": {
                "web": {
                    "version": "1.0",
                    "source": {"gcp": {"family": "debian-12", "project": "debian-cloud"}},
                    "playbooks": ["playbooks/base.yml"],
                    "prune": {"keep": 1, "older_than_days": 30, "obsolete_after_days": 7, "delete_after_days": 7},
                },
                "app": {"version": "1.0", "from": "web", "playbooks": ["playbooks/base.yml"]},
            },
            "groups": {
                "web-gcp": {
                    "image": "web",
                    "target": "gcp",
                    "gcp": {"mig": "web-mig", "zone": ZONE, "health_check": CHECK},
                }
            },
            "channels": {"stable": {}},
        }
        (root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        monkeypatch.chdir(root)
        monkeypatch.setenv("BAKERY_HOME", str(root / ".bakery"))
        project = load(root / "images.yaml")
        promote(TrustContext(project, Workspace.for_project(root), Silent()), "stable", "gcp", "web", "1.0.2")
        yield w


def deprecation(world: World, version: str) -> dict[str, str]:
    found: dict[str, str] = world.gce.image(PROJECT, image_name(version)).get("deprecated", {})
    return found


def test_the_dry_run_names_what_uses_each_image(world: World) -> None:
    result = bakery("prune", "--json")
    assert result.exit_code == 0, result.output
    got = {v["image"]: (v["action"], v["reasons"]) for v in json.loads(result.stdout)["verdicts"]}
    assert "in use: instance template web-tmpl" in got["web@1.0.0"][1], got
    assert any(r.startswith("in use: group web-gcp's template") for r in got["web@1.0.0"][1])
    assert any(r.startswith("in use: group web-gcp's instances ") for r in got["web@1.0.0"][1])
    assert not any(r.startswith("in use: instance web-mig-") for r in got["web@1.0.0"][1])  # named once, by its group
    assert got["web@1.0.1"] == ("keep", ["in use: instance template batch-tmpl"])
    assert got["web@1.0.2"] == ("keep", ["head of channel stable"])
    assert got["web@1.0.3"] == ("keep", ["shared with user:partner@example.com (roles/compute.imageUser)"])
    assert got["web@1.0.4"] == ("keep", ["parent of app@1.0.0, which stays"])
    assert got["web@1.0.5"] == ("remove", ["older than 30 days, not among the newest 1, unused"])
    assert got["web@1.0.6"][0] == "remove"
    assert got["web@1.0.7"] == ("keep", ["among the newest 1"])
    assert all(not deprecation(world, f"1.0.{n}") for n in range(8))
    text = bakery("prune", "web").stdout
    assert "web@1.0.5  gcp     deprecate (DEPRECATED, replacement web-1-0-7)  older than 30 days" in text, text


def test_unused_images_climb_the_deprecation_ladder_at_the_policy_ages(world: World) -> None:
    result = bakery("prune", "--yes", "--json")
    assert result.exit_code == 0, result.output
    rungs = {r["image"]: r["rung"] for r in json.loads(result.stdout)["removed"]}
    assert set(rungs) == {"web@1.0.5", "web@1.0.6"}
    status = deprecation(world, "1.0.5")
    assert status["state"] == "DEPRECATED"
    assert status["replacement"].endswith(f"projects/{PROJECT}/global/images/web-1-0-7")
    deprecated = datetime.fromisoformat(status["deprecated"].replace("Z", "+00:00"))
    assert status["obsolete"] == (deprecated + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    assert status["deleted"] == (deprecated + timedelta(days=14)).isoformat().replace("+00:00", "Z")
    assert rungs["web@1.0.5"] == f"deprecated (to be obsolete from {status['obsolete']})"
    for version in ("1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.7"):
        assert not deprecation(world, version), version

    project = load(Path("images.yaml"))
    ws = Workspace.for_project(project.root)

    def prune_at(days: float) -> Any:
        return Pruner(project, ws, Silent(), clock=lambda: deprecated + timedelta(days=days)).run(act=True)

    same = prune_at(1)
    assert [r.rung for r in same.removals] == [
        f"deprecated (to be obsolete from {status['obsolete']})",
        f"deprecated (to be obsolete from {deprecation(world, '1.0.6')['obsolete']})",
    ]
    assert deprecation(world, "1.0.5")["state"] == "DEPRECATED"
    later = prune_at(8)
    assert {r.rung for r in later.removals} == {f"obsolete (to be deleted from {status['deleted']})"}
    assert deprecation(world, "1.0.5")["state"] == "OBSOLETE"
    gone = prune_at(15)
    assert [r.removed for r in gone.removals] == [(f"image {PROJECT}/web-1-0-5",), (f"image {PROJECT}/web-1-0-6",)]
    with pytest.raises(KeyError):
        world.gce.image(PROJECT, "web-1-0-5")
    for version in ("1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.7"):
        assert world.gce.image(PROJECT, image_name(version))["status"] == "READY"
        assert not deprecation(world, version), version
    events = json.loads(bakery("audit", "--json").stdout)["events"]
    assert [(e["subject"], e["result"]) for e in events if e["action"] == "prune"] == [
        ("web@1.0.5 on gcp", "deprecated"),
        ("web@1.0.6 on gcp", "deprecated"),
        ("web@1.0.5 on gcp", "obsolete"),
        ("web@1.0.6 on gcp", "obsolete"),
        ("web@1.0.5 on gcp", "pruned"),
        ("web@1.0.6 on gcp", "pruned"),
    ]  # a prune that moved nothing (day 1) wrote no event


def test_a_deprecated_image_kept_again_is_restored_to_active(world: World) -> None:
    assert bakery("prune", "--yes").exit_code == 0
    assert deprecation(world, "1.0.5")["state"] == "DEPRECATED"
    obsolete = deprecation(world, "1.0.6")["obsolete"]
    world.gce.groups.templates.add(PROJECT, "hotfix-tmpl", image=f"{PROJECT}/web-1-0-5")  # a rollback to it

    dry = bakery("prune", "web")
    assert dry.exit_code == 0, dry.output
    assert (
        f"web@1.0.5 on gcp would be restored to ACTIVE (now deprecated image {PROJECT}/web-1-0-5): "
        "in use: instance template hotfix-tmpl"
    ) in dry.stdout, dry.stdout
    assert f"web@1.0.6  gcp     wait (obsolete from {obsolete})" in dry.stdout
    assert deprecation(world, "1.0.5")["state"] == "DEPRECATED"

    done = bakery("prune", "web", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["notes"] == [
        f"restored web@1.0.5 on gcp to ACTIVE (was deprecated image {PROJECT}/web-1-0-5): "
        "in use: instance template hotfix-tmpl"
    ]
    assert not deprecation(world, "1.0.5")
    assert deprecation(world, "1.0.6")["state"] == "DEPRECATED"
    events = json.loads(bakery("audit", "--json").stdout)["events"]
    assert [e["subject"] for e in events if e["action"] == "prune" and e["result"] == "restored"] == [
        "web@1.0.5 on gcp"
    ]
    again = bakery("prune", "web", "--yes", "--json")
    assert json.loads(again.stdout)["notes"] == []


def test_an_interrupted_first_rung_is_finished_with_its_replacement(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Compute.deprecate
    calls: list[str] = []

    def once(self: Compute, project: str, name: str, status: dict[str, str]) -> Any:
        calls.append(name)
        if len(calls) == 1:
            raise Interrupted("prune: interrupted", exit_code=130)
        return real(self, project, name, status)

    monkeypatch.setattr(Compute, "deprecate", once)
    project = load(Path("images.yaml"))
    with pytest.raises(Interrupted):
        Pruner(project, Workspace.for_project(project.root), Silent()).run(act=True)
    assert not deprecation(world, "1.0.5")
    done = bakery("prune", "--yes")
    assert done.exit_code == 0, done.output
    assert "web@1.0.5 on gcp: deprecated" in done.stdout
    assert deprecation(world, "1.0.5")["replacement"].endswith(f"projects/{PROJECT}/global/images/web-1-0-7")


def test_an_instance_booted_from_an_image_keeps_it_and_what_cannot_be_read_keeps_every_image(world: World) -> None:
    other_zone = "us-central1-a"
    world.gce.groups.instances.add(
        PROJECT, ZONE, "adhoc-vm", created="2026-01-02T00:00:00Z", image=f"projects/{PROJECT}/global/images/web-1-0-5"
    )
    world.gce.groups.instances.add(  # stopped, in a zone of another region: it starts again from its disk
        PROJECT,
        other_zone,
        "old-vm",
        created="2026-01-02T00:00:00Z",
        image=f"{API_ROOT}/projects/{PROJECT}/global/images/web-1-0-6",
        status="TERMINATED",
    )
    dry = bakery("prune", "--json")
    assert dry.exit_code == 0, dry.output
    got = {v["image"]: (v["action"], v["reasons"]) for v in json.loads(dry.stdout)["verdicts"]}
    assert got["web@1.0.5"] == ("keep", [f"in use: instance adhoc-vm (RUNNING) in {ZONE}"])
    assert got["web@1.0.6"] == ("keep", [f"in use: instance old-vm (TERMINATED) in {other_zone}"])

    done = bakery("prune", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["removed"] == []
    assert not deprecation(world, "1.0.5") and not deprecation(world, "1.0.6")

    world.gce.groups.instances.stored.clear()  # nothing uses 1.0.5 or 1.0.6 now, but the look is refused
    world.gce.fail_next(403, path_contains="/aggregated/disks", message="Required 'compute.disks.list' permission")
    refused = bakery("prune", "--yes", "--json")
    assert refused.exit_code == 0, refused.output
    payload = json.loads(refused.stdout)
    reasons = {v["image"]: v["reasons"] for v in payload["verdicts"]}
    assert reasons["web@1.0.5"] == [
        "in use: could not tell: reading the instances and their disks was refused "
        "(403 Required 'compute.disks.list' permission)"
    ], reasons["web@1.0.5"]
    assert payload["removed"] == [] and not deprecation(world, "1.0.5")


@pytest.mark.parametrize("listed", ["warning", "unreachables"])
def test_a_zone_the_aggregated_lists_could_not_read_keeps_every_image_and_is_named(world: World, listed: str) -> None:
    world.gce.groups.instances.add(
        PROJECT, ZONE, "adhoc-vm", created="2026-01-02T00:00:00Z", image=f"projects/{PROJECT}/global/images/web-1-0-5"
    )
    world.gce.groups.instances.unreachable(PROJECT, "us-central1-b", listed=listed)  # 1.0.6 may run there
    said = "Scope 'zones/us-central1-b' is unreachable." if listed == "warning" else ""
    why = f"(UNREACHABLE: {said})" if listed == "warning" else "(unreachable)"
    blind = [f"in use: could not tell: the {what} in zones/us-central1-b could not be read {why}" for what in
             ("disks", "instances")]  # fmt: skip
    dry = bakery("prune", "--json")
    assert dry.exit_code == 0, dry.output
    got = {v["image"]: (v["action"], v["reasons"]) for v in json.loads(dry.stdout)["verdicts"]}
    assert got["web@1.0.6"] == ("keep", blind)
    assert got["web@1.0.5"] == ("keep", [*blind, f"in use: instance adhoc-vm (RUNNING) in {ZONE}"])
    text = bakery("prune")
    assert f"could not tell: the instances in zones/us-central1-b could not be read {why}" in text.stdout

    done = bakery("prune", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["removed"] == []
    assert not deprecation(world, "1.0.5") and not deprecation(world, "1.0.6")


def test_zones_with_nothing_in_them_are_read_as_empty_and_an_unused_image_climbs_the_ladder(world: World) -> None:
    listed = world.gce.groups.instances.aggregated(PROJECT, "instances", {})
    assert listed["items"]["zones/us-central1-b"] == {
        "warning": {
            "code": "NO_RESULTS_ON_PAGE",
            "message": "There are no results for scope 'zones/us-central1-b' on this page.",
            "data": [{"key": "scope", "value": "zones/us-central1-b"}],
        }
    }
    done = bakery("prune", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert deprecation(world, "1.0.6")
