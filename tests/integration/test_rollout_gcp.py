"""The GCP group driver against the fake Compute server, through the real google-cloud-compute
clients: managed instance groups moved by the MIG updater, gated on their instances' health.

Each test drives the driver's steps on the step engine, as bakery.rollout does; the CLI-level
acceptance tests are in test_rollout_gcp_cli.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bakery import steps
from bakery.core import provenance
from bakery.errors import GateFailed, ProviderError, RolloutRefused, UsageError
from bakery.groups.base import HistoryEntry, Release, Rollout
from bakery.groups.budget import Clock
from bakery.groups.gcp import api as gcp_api
from tests.fakes.gce import GceError
from tests.integration.gcp_groups import (
    CHECK,
    OWN_POLICY,
    PROJECT,
    REGION,
    TEMPLATES,
    World,
    gcp_world,
    seed_mig,
)


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with gcp_world(tmp_path, monkeypatch) as made:
        yield made


def marks(vm: dict[str, object]) -> dict[str, str]:
    """The bakery labels on a VM, decoded."""
    labels = dict(vm["labels"])  # type: ignore[call-overload]
    stamp, problems = provenance.gcp_stamp(labels)
    assert problems == {}
    return {**stamp, "rollout": provenance.decode_label(labels["bakery-rollout"]), "team": labels.get("team", "")}


def test_rolling_moves_a_zonal_mig_and_marks_every_new_instance(world: World) -> None:
    own = seed_mig(world)["updatePolicy"]
    rollout = world.new_rollout(world.group(), "1.0.1")
    world.run(rollout)
    assert world.images_of() == ["web-1-0-1"] * 3
    template = f"web-mig-{rollout.id}"
    mig = world.mig()
    assert [v["instanceTemplate"].rpartition("/")[2] for v in mig["versions"]] == [template]
    assert own["type"] == "OPPORTUNISTIC"
    assert mig["updatePolicy"] == own  # bakery's PROACTIVE policy lasted only while it watched
    assert "web-mig: its own update policy back (OPPORTUNISTIC)" in world.reporter.notes
    for vm in world.vms():
        assert marks(vm) == {
            "image": "web",
            "version": "1.0.1",
            "inputs-digest": "sha256:" + "1" * 64,
            "rollout": rollout.id,
            "team": "web",  # the template's own labels are kept
        }
    made = world.gce.groups.templates.get(PROJECT, template)
    assert made["description"].startswith(f"bakery: web@1.0.1 for group web, rollout {rollout.id}")
    assert f"web-mig: 3/3 ready on {template}" in world.reporter.notes
    state = world.driver().read("web", world.group(), world.target)
    assert state.counts() == {"web@1.0.1": 3}
    assert state.active is None
    assert state.intended == Release(
        "web@1.0.1", f"projects/{PROJECT}/global/images/web-1-0-1", f"{TEMPLATES}/{template}", "sha256:" + "1" * 64
    )


def test_rolling_moves_a_regional_mig_made_from_a_regional_template(world: World) -> None:
    world.regional = True
    world.gce.groups.templates.add(PROJECT, "web-rtmpl", image=f"{PROJECT}/web-1-0-0", region=REGION)
    template = f"projects/{PROJECT}/regions/{REGION}/instanceTemplates/web-rtmpl"
    world.gce.groups.add_mig(PROJECT, "web-mig", template=template, size=4, region=REGION, health_check=CHECK)
    rollout = world.new_rollout(world.group(), "1.0.1")  # max_surge 1, which GCE refuses for 3 zones
    world.run(rollout)
    assert world.images_of() == ["web-1-0-1"] * 4
    assert (
        "gcp group web-mig: max_surge 1 is sent as 3: GCE takes for a regional MIG a fixed max_surge "
        "of 0 or at least its number of zones (3)"
    ) in world.reporter.notes
    assert {vm["zone"] for vm in world.vms()} == {"europe-west1-b", "europe-west1-c", "europe-west1-d"}
    assert f"web-mig-{rollout.id}" in world.gce.groups.templates.names(PROJECT, region=REGION)
    world.driver().record("web", world.group(), world.target, entry(rollout.id, rollout, "succeeded"))
    [kept] = world.driver().history("web", world.group(), world.target)
    assert kept.to.template == f"projects/{PROJECT}/regions/{REGION}/instanceTemplates/web-mig-{rollout.id}"


def test_instances_that_never_boot_fail_the_gate(world: World) -> None:
    seed_mig(world)
    world.gce.groups.fault("web-1-0-1", stuck=True)
    with pytest.raises(GateFailed, match=r"instance web-mig-\w+ is still CREATING \d+s after it appeared"):
        world.run(world.new_rollout(world.group(), "1.0.1"))
    assert world.images_of().count("web-1-0-0") == 3  # maxUnavailable 0: none of the old ones went


def test_throttling_during_the_watch_is_retried(world: World) -> None:
    seed_mig(world)
    world.gce.fail_next(429, times=2, path_contains="listManagedInstances")
    world.run(world.new_rollout(world.group(), "1.0.1"))
    assert world.images_of() == ["web-1-0-1"] * 3


def test_canary_puts_target_size_instances_on_the_new_template_then_all(world: World) -> None:
    seed_mig(world, 4)
    rollout = world.new_rollout(world.group("canary"), "1.0.1")
    steps_ = world.driver().rollout_steps(rollout)
    assert [s.name for s in steps_] == ["check", "template", "canary", "hold", "roll", "policy"]
    journal = world.journal(rollout)
    steps.execute(steps_[:3], journal, world.reporter)
    assert world.images_of() == ["web-1-0-0"] * 3 + ["web-1-0-1"]
    versions = world.mig()["versions"]
    assert [(v["name"], v.get("targetSize", {}).get("fixed")) for v in versions] == [("stable", None), (rollout.id, 1)]
    state = world.driver().read("web", world.group("canary"), world.target)
    assert state.active is not None
    assert (state.active.id, state.active.step, state.active.percent, state.active.who) == (
        rollout.id,
        "canary",
        25,
        "alice@laptop",
    )
    assert state.counts() == {"web@1.0.0": 3, "web@1.0.1": 1}
    steps.execute(steps_, journal, world.reporter)
    assert world.images_of() == ["web-1-0-1"] * 4
    assert [s for s, _ in world.reporter.phases] == ["check", "template", "canary", "hold", "roll", "policy"]


def test_an_unhealthy_canary_fails_the_gate_and_the_rollback_repatches_the_versions(world: World) -> None:
    own = seed_mig(world, 3, policy=OWN_POLICY)["updatePolicy"]
    world.gce.groups.fault("web-1-0-1")  # instances booting this image fail their health check
    rollout = world.new_rollout(world.group("canary"), "1.0.1")
    with pytest.raises(GateFailed) as failed:
        world.run(rollout)
    assert failed.value.answer == "UNHEALTHY by health check web-hc"
    assert f"instance {failed.value.instance} is UNHEALTHY by health check web-hc" in failed.value.message
    assert world.mig()["updatePolicy"]["type"] == "OPPORTUNISTIC"  # frozen: no more replacements
    world.roll_back(rollout)
    mig = world.mig()
    assert mig["updatePolicy"] == own  # the owner's policy, not bakery's
    assert [v["instanceTemplate"] for v in mig["versions"]] == [
        mig["selfLink"].split("/zones/")[0] + "/global/instanceTemplates/web-tmpl"
    ]
    assert mig["status"]["isStable"] and mig["status"]["versionTarget"]["isReached"]
    assert world.images_of() == ["web-1-0-0"] * 3


def test_rollback_after_a_completed_rollout_reuses_the_previous_template(world: World) -> None:
    seed_mig(world)
    first = world.new_rollout(world.group(), "1.0.1")
    world.run(first)
    before = world.gce.groups.templates.names(PROJECT)
    assert first.previous is not None
    back = world.new_rollout(world.group(), None, kind="rollback", to=first.previous)
    world.run(back)
    assert world.images_of() == ["web-1-0-0"] * 3
    assert world.gce.groups.templates.names(PROJECT) == before  # no template was made for it
    assert world.mig()["instanceTemplate"].endswith("/instanceTemplates/web-tmpl")


def test_a_second_rollout_is_refused_while_one_is_active_and_names_it(world: World) -> None:
    seed_mig(world)
    first = world.new_rollout(world.group("canary"), "1.0.1")
    steps.execute(world.driver().rollout_steps(first)[:3], world.journal(first), world.reporter)
    second = world.with_id(world.new_rollout(world.group(), "1.0.2"), "r-00000000beef")
    with pytest.raises(RolloutRefused) as refused:
        world.run(second)
    message = refused.value.message
    assert f"is moving now: rollout {first.id} to web@1.0.1 [{TEMPLATES}/web-mig-{first.id}]" in message
    assert f"started {first.started} by alice@laptop" in message
    assert world.images_of() == ["web-1-0-0"] * 2 + ["web-1-0-1"]  # the first one's canary, untouched
    world.roll_back(second)  # what the service does after a refusal: it must not touch the group
    assert world.images_of() == ["web-1-0-0"] * 2 + ["web-1-0-1"]


def test_an_interrupted_rollout_freezes_the_mig_and_a_rerun_carries_on(world: World) -> None:
    seed_mig(world)
    rollout = world.new_rollout(world.group(), "1.0.1")

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    world.gce.mig_step = 60.0  # the group moves no further while the watch runs
    world.clock = Clock(sleep=interrupt)  # the watch's first wait
    with pytest.raises(KeyboardInterrupt):  # the signal guard's stop (bakery.runner)
        world.run(rollout)
    journal = world.journal(rollout)
    assert journal.status == steps.INTERRUPTED and journal.data["error"] == "interrupted during roll"
    assert journal.get("gcp.stopped")
    assert world.mig()["updatePolicy"]["type"] == "OPPORTUNISTIC"
    world.clock = None
    world.gce.mig_step = 0.01
    world.run(rollout)
    assert world.mig()["updatePolicy"]["type"] == "OPPORTUNISTIC"  # the seeded MIG's own, back
    assert world.images_of() == ["web-1-0-1"] * 3
    assert any("PROACTIVE again" in note for note in world.reporter.notes)


def test_a_canary_planned_before_the_group_changed_is_refused_before_it_moves(world: World) -> None:
    seed_mig(world)
    stale = world.new_rollout(world.group("canary"), "1.0.1")  # planned while the group runs web-tmpl
    meanwhile = world.new_rollout(world.group(), "1.0.2")
    world.run(meanwhile)
    with pytest.raises(RolloutRefused) as refused:
        world.run(stale)
    assert (
        f"runs instance template web-mig-{meanwhile.id} now, not web-tmpl as when this rollout was planned"
        in refused.value.message
    )
    assert world.images_of() == ["web-1-0-2"] * 3
    assert f"web-mig-{stale.id}" not in world.gce.groups.templates.names(PROJECT)
    # Refused before its journal recorded anything: the service leaves no trace of it (no history).
    assert world.journal(stale).values == {} and world.journal(stale).done == []
    world.roll_back(stale)  # what the service does after a refusal: nothing moves
    assert world.images_of() == ["web-1-0-2"] * 3
    assert world.mig()["instanceTemplate"].endswith(f"/web-mig-{meanwhile.id}")


def blue_green(world: World) -> tuple[str, Rollout]:
    seed_mig(world)
    group_url = world.mig()["instanceGroup"]
    world.gce.groups.backends.add(PROJECT, "web-bs", health_checks=(CHECK,), groups=(group_url,))
    return group_url, world.new_rollout(world.group("blue-green", backend_service="web-bs"), "1.0.1")


def test_a_blue_green_rollout_killed_while_its_new_mig_is_made_is_rolled_back_without_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    group_url, rollout = blue_green(world)
    real_insert = gcp_api.GroupApi.insert_mig

    def insert_then_die(api: gcp_api.GroupApi, body: dict[str, object], key: str) -> None:
        real_insert(api, body, key)
        raise KeyboardInterrupt  # killed before the step returned

    monkeypatch.setattr(gcp_api.GroupApi, "insert_mig", insert_then_die)
    with pytest.raises(KeyboardInterrupt):
        world.run(rollout)
    monkeypatch.setattr(gcp_api.GroupApi, "insert_mig", real_insert)
    green = f"web-mig-{rollout.id}"
    assert world.mig(green)["targetSize"] == 3
    world.roll_back(rollout)
    with pytest.raises(GceError, match="was not found"):
        world.mig(green)
    assert [b["group"] for b in world.gce.groups.backends.get(PROJECT, "web-bs")["backends"]] == [group_url]
    assert world.images_of() == ["web-1-0-0"] * 3


def test_a_blue_green_rollback_names_the_versions_of_a_mig_it_cannot_read(world: World) -> None:
    _, rollout = blue_green(world)
    steps.execute(world.driver().rollout_steps(rollout)[:3], world.journal(rollout), world.reporter)
    blue = world.gce.groups.migs[(PROJECT, "zones/europe-west1-b")]["web-mig"]
    with world.gce._lock:  # someone gave every version a target size
        blue.body["versions"] = [{**v, "targetSize": {"fixed": 3}} for v in blue.body["versions"]]
    with pytest.raises(
        ProviderError,
        match=r"MIG web-mig \(europe-west1-b\) has no version without a target size "
        r"\(its versions: web-tmpl x3\)",
    ):
        world.roll_back(rollout)


def test_blue_green_swaps_mig_in_the_backend_service_and_keeps_the_old_one_at_zero(world: World) -> None:
    seed_mig(world)
    group_url = world.mig()["instanceGroup"]
    world.gce.groups.backends.add(PROJECT, "web-bs", health_checks=(CHECK,), groups=(group_url,))
    group = world.group("blue-green", backend_service="web-bs")
    rollout = world.new_rollout(group, "1.0.1")
    world.run(rollout)
    green = f"web-mig-{rollout.id}"
    backends = [b["group"].rpartition("/")[2] for b in world.gce.groups.backends.get(PROJECT, "web-bs")["backends"]]
    assert backends == [green]
    assert world.images_of(green) == ["web-1-0-1"] * 3
    assert world.mig()["targetSize"] == 0 and world.vms() == []
    state = world.driver().read("web", group, world.target)  # images.yaml still names web-mig
    assert (state.intended.image if state.intended else None, state.counts(), state.active) == (
        "web@1.0.1",
        {"web@1.0.1": 3},
        None,
    )
    # rollback after completion: the retained MIG comes back, the new one goes to 0
    assert rollout.previous is not None
    back = world.new_rollout(group, None, kind="rollback", to=rollout.previous)
    world.run(back)
    backends = [b["group"].rpartition("/")[2] for b in world.gce.groups.backends.get(PROJECT, "web-bs")["backends"]]
    assert backends == ["web-mig"]
    assert world.images_of() == ["web-1-0-0"] * 3
    assert world.mig(green)["targetSize"] == 0


def test_a_blue_green_rollout_whose_new_group_is_unhealthy_is_reverted(world: World) -> None:
    seed_mig(world)
    group_url = world.mig()["instanceGroup"]
    world.gce.groups.backends.add(PROJECT, "web-bs", health_checks=(CHECK,), groups=(group_url,))
    world.gce.groups.fault("web-1-0-1")
    group = world.group("blue-green", backend_service="web-bs")
    rollout = world.new_rollout(group, "1.0.1")
    with pytest.raises(GateFailed, match=r"UNHEALTHY by health check web-hc"):
        world.run(rollout)
    backends = [b["group"] for b in world.gce.groups.backends.get(PROJECT, "web-bs")["backends"]]
    assert backends == [group_url]  # the old group never left the backend service
    world.roll_back(rollout)
    assert [b["group"] for b in world.gce.groups.backends.get(PROJECT, "web-bs")["backends"]] == [group_url]
    assert world.images_of() == ["web-1-0-0"] * 3
    with pytest.raises(GceError, match="was not found"):  # the new MIG is gone
        world.mig(f"web-mig-{rollout.id}")


def entry(rollout_id: str, rollout: Rollout, result: str) -> HistoryEntry:
    return HistoryEntry(
        rollout_id, "rollout", rollout.started, "alice@laptop", rollout.previous, rollout.to, "rolling", result
    )


def test_history_is_kept_in_the_project_and_prune_keeps_what_rollback_needs(world: World) -> None:
    seed_mig(world)
    group = world.group()
    done = []
    for version in ("1.0.1", "1.0.2", "1.0.1"):
        rollout = world.new_rollout(group, version)
        world.run(rollout)
        for result in ("running", "succeeded"):  # as the service records it: at the start, at the end
            world.driver().record("web", group, world.target, entry(rollout.id, rollout, result))
        done.append(rollout.id)
    other_machine = world.driver()  # a fresh driver: nothing cached, only what the project holds
    history = other_machine.history("web", group, world.target)
    assert [(e.id, e.to.image, e.to.template, e.result) for e in history] == [
        (done[0], "web@1.0.1", f"{TEMPLATES}/web-mig-{done[0]}", "succeeded"),
        (done[1], "web@1.0.2", f"{TEMPLATES}/web-mig-{done[1]}", "succeeded"),
        (done[2], "web@1.0.1", f"{TEMPLATES}/web-mig-{done[2]}", "succeeded"),
    ]
    assert history[0].from_ is not None and history[0].from_.template == f"{TEMPLATES}/web-tmpl"
    assert history[2].from_ == history[1].to
    records = [n for n in world.gce.groups.templates.names(PROJECT) if n.endswith(("-h1", "-h2"))]
    assert sorted(records) == sorted(f"web-mig-{rid}-h2" for rid in done)  # h1 replaced by h2
    removed = other_machine.prune("web", group, world.target, 1)
    assert removed == [f"instance template web-mig-{done[0]}"]
    left = world.gce.groups.templates.names(PROJECT)
    assert f"web-mig-{done[1]}" in left  # the last rollout's from_: what a rollback restores
    assert f"web-mig-{done[2]}" in left  # the group runs it
    assert "web-tmpl" in left  # not bakery's
    assert len(other_machine.history("web", group, world.target)) == 3  # records stay


def test_a_rollout_without_a_record_shows_in_the_history_as_interrupted(world: World) -> None:
    seed_mig(world)
    rollout = world.new_rollout(world.group(), "1.0.1")
    world.run(rollout)
    [shown] = world.driver().history("web", world.group(), world.target)
    assert (shown.id, shown.to.image, shown.who, shown.result) == (
        rollout.id,
        "web@1.0.1",
        "alice@laptop",
        "interrupted",
    )


def test_down_is_refused_for_a_cloud_group(world: World) -> None:
    with pytest.raises(UsageError, match="does not stop it"):
        world.driver().down("web", world.group(), world.target)


def test_an_image_that_is_not_in_the_project_is_refused(world: World) -> None:
    from tests.integration.gcp_groups import record

    with pytest.raises(UsageError, match=rf"image projects/{PROJECT}/global/images/web-9-9-9 does not exist"):
        world.driver().release_of(record("9.9.9"), world.target)


# --- a failed template insert is retried with a new request; a concurrent MIG change is named ------


def test_a_template_insert_whose_operation_failed_is_resumed_with_a_new_request(world: World) -> None:
    seed_mig(world)
    rollout = world.new_rollout(world.group(), "1.0.1")
    world.gce.fail_operation_next(503, "backend error (simulated)", operation_type="insert")
    with pytest.raises(ProviderError, match="backend error"):
        world.run(rollout)
    assert f"web-mig-{rollout.id}" not in world.gce.groups.templates.names(PROJECT)
    world.run(rollout)  # what `bakery rollout web` does after the failure: resume it
    assert world.images_of() == ["web-1-0-1"] * 3
    assert world.mig()["instanceTemplate"].endswith(f"/web-mig-{rollout.id}")


def _someone_else_patches(world: World, versions: list[dict[str, object]]) -> None:
    """A change to the MIG made outside bakery (the console, gcloud, another tool)."""
    scope = f"zones/{world.where['zone']}" if "zone" in world.where else f"regions/{world.where['region']}"
    mig = world.gce.groups._mig(PROJECT, scope, "web-mig")
    mig.body["versions"] = versions
    mig.body["fingerprint"] = world.gce.groups.backends.fingerprint()


def test_a_mig_changed_by_someone_else_after_the_plan_is_named_not_overwritten(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bakery.groups.gcp.steps import Mover

    seed_mig(world)
    world.gce.groups.templates.add(PROJECT, "hand-made", image=f"{PROJECT}/web-1-0-2", labels={})
    theirs = [{"instanceTemplate": f"{TEMPLATES}/hand-made", "name": "theirs"}]
    rollout = world.new_rollout(world.group(), "1.0.1")
    make_template = Mover.template

    def template_then_a_change(self: Mover, journal: steps.Journal) -> None:
        make_template(self, journal)
        _someone_else_patches(world, theirs)

    monkeypatch.setattr(Mover, "template", template_then_a_change)
    with pytest.raises(ProviderError) as stopped:
        world.run(rollout)
    message = stopped.value.message
    assert "the versions of" in message
    assert "changed outside this rollout: [web-tmpl] when bakery last looked" in message
    assert "[hand-made] now; bakery stops rather than overwrite that change" in message
    assert [v["instanceTemplate"].rpartition("/")[2] for v in world.mig()["versions"]] == ["hand-made"]


def test_a_patch_that_loses_the_fingerprint_race_to_another_field_is_retried(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_mig(world)
    rollout = world.new_rollout(world.group(), "1.0.1")
    patch = gcp_api.GroupApi.patch_mig
    raced: list[str] = []

    def racing(self: gcp_api.GroupApi, name: str, body: dict[str, object], what: str, **kwargs: object) -> None:
        if not raced:  # another client changes some other field just before bakery's first PATCH lands
            raced.append(name)
            _someone_else_patches(world, world.mig()["versions"])
        patch(self, name, body, what, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gcp_api.GroupApi, "patch_mig", racing)
    world.run(rollout)
    assert raced == ["web-mig"]
    assert world.images_of() == ["web-1-0-1"] * 3
    assert any("changed between bakery's read and its PATCH; reading it again" in n for n in world.reporter.notes)


def test_watching_a_mig_update_makes_at_most_12_calls_in_any_minute_at_productions_interval(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.gcp_groups import bench_watch_calls

    measured = bench_watch_calls(world, monkeypatch, size=60)
    assert measured["images_after"] == ["web-1-0-1"], measured  # the watch followed it to the end
    assert measured["looks"] >= 5, measured  # ... look after look, over minutes of simulated time
    assert measured["minutes_watched_in_production"] >= 1, measured
    assert measured["calls_per_look"] == 2.0, measured  # the live view read what it shows before the watch
    assert measured["busiest_minute_watching"] <= 12, measured
