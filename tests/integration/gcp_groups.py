"""A GCP world on the fake Compute server for the group driver's tests: bakery-stamped images,
an instance template, a zonal or regional MIG, a backend service; and a rollout driven through the
driver's steps on the step engine (as bakery.rollout runs them)."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bakery import steps
from bakery.config.models import GcpGroup, GcpTarget, Group, Health, Strategy
from bakery.core import provenance
from bakery.core.catalog import ImageRecord
from bakery.groups import strategy
from bakery.groups.base import Release, Rollout
from bakery.groups.budget import Clock
from bakery.groups.gcp import driver as gcp
from bakery.progress import Recording
from bakery.workspace import Workspace
from tests.fakes.gce import FakeGce

PROJECT = "bakery-test"
ZONE = "europe-west1-b"
REGION = "europe-west1"
CHECK = f"projects/{PROJECT}/global/healthChecks/web-hc"
TEMPLATES = f"projects/{PROJECT}/global/instanceTemplates"


def digest(version: str) -> str:
    return "sha256:" + version.replace(".", "")[-1] * 64


def stamp_labels(version: str) -> dict[str, str]:
    stamp = {
        "image": "web",
        "version": version,
        "target": "gcp",
        "state": "complete",
        "inputs-digest": digest(version),
        "created": "2026-01-01T00:00:00Z",
        "invocation": version.replace(".", "")[-1] * 12,
    }
    return provenance.gcp_stamp_labels(stamp)


def image_name(version: str) -> str:
    return "web-" + version.replace(".", "-")


def record(version: str) -> ImageRecord:
    return ImageRecord(
        name="web",
        version=version,
        target="gcp",
        kind="gcp",
        inputs_digest=digest(version),
        created="2026-01-01T00:00:00Z",
        base="",
        locations=(f"{PROJECT}/{image_name(version)}",),
    )


@dataclass
class World:
    gce: FakeGce
    tmp: Path
    reporter: Recording
    regional: bool = False
    clock: Clock | None = None  # where the driver's watches get the time and wait (None: the real one)

    @property
    def where(self) -> dict[str, str]:
        return {"region": REGION} if self.regional else {"zone": ZONE}

    @property
    def target(self) -> GcpTarget:
        return GcpTarget(kind="gcp", project=PROJECT, zone="europe-west1-b", endpoint=self.gce.endpoint)

    def group(self, strategy_type: str = "rolling", **gcp_settings: Any) -> Group:
        settings: dict[str, Any] = {"mig": "web-mig", **self.where, "health_check": CHECK, **gcp_settings}
        return Group(
            image="web",
            target="gcp",
            strategy=Strategy(type=strategy_type, canary_size=1, bake_seconds=0, retention_seconds=0),  # type: ignore[arg-type]
            health=Health(grace_seconds=0, timeout_seconds=3),
            gcp=GcpGroup(**settings),
        )

    def driver(self) -> gcp.GcpDriver:
        if self.clock is not None:
            return gcp.GcpDriver(self.reporter, gcp.default_clients, clock=self.clock)
        return gcp.make(Workspace(self.tmp / ".bakery"), self.reporter)

    def mig(self, name: str = "web-mig") -> dict[str, Any]:
        return self.gce.groups.mig(PROJECT, name, **self.where)

    def vms(self, name: str = "web-mig") -> list[dict[str, Any]]:
        return self.gce.groups.vms(PROJECT, name, **self.where)

    def images_of(self, name: str = "web-mig") -> list[str]:
        """The image each VM of the MIG boots, by name, sorted."""
        return sorted(vm["image"].rpartition("/")[2] for vm in self.vms(name))

    def new_rollout(
        self, group: Group, version: str | None, *, kind: str = "rollout", to: Release | None = None
    ) -> Rollout:
        driver = self.driver()
        state = driver.read("web", group, self.target)
        release = to or driver.release_of(record(str(version)), self.target)
        chosen = group.strategy
        return Rollout(
            id="r-" + secrets.token_hex(6),
            kind=kind,  # type: ignore[arg-type]
            group="web",
            spec=group,
            target="gcp",
            target_spec=self.target,
            to=release,
            to_record=record(version) if version else None,
            previous=state.intended,
            plan=strategy.plan(chosen, int(state.desired or 0)),
            who="alice@laptop",
            started=steps.now(),
        )

    def journal(self, rollout: Rollout) -> steps.Journal:
        path = self.tmp / f"journal-{rollout.id}.json"
        return steps.Journal.load(path) or steps.Journal.create(path, rollout={"id": rollout.id})

    def run(self, rollout: Rollout) -> steps.Journal:
        journal = self.journal(rollout)
        steps.execute(self.driver().rollout_steps(rollout), journal, self.reporter)
        return journal

    def roll_back(self, rollout: Rollout) -> None:
        steps.execute(self.driver().rollback_steps(rollout), self.journal(rollout), self.reporter, phase="rollback")

    def with_id(self, rollout: Rollout, rollout_id: str) -> Rollout:
        return dataclasses.replace(rollout, id=rollout_id)


@contextlib.contextmanager
def gcp_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Three baked versions of web (1.0.0 to 1.0.2) and a template `web-tmpl` on 1.0.0; operations
    are DONE 50 ms after they are accepted, groups move a tick every 10 ms, and bakery looks at
    them every 20 ms."""
    monkeypatch.setenv("BAKERY_POLL_SECONDS", "0.02")
    with FakeGce(operation_delay=0.05, mig_step=0.01) as fake:
        for version in ("1.0.0", "1.0.1", "1.0.2"):
            fake.add_image(PROJECT, image_name(version), labels=stamp_labels(version))
        fake.groups.templates.add(PROJECT, "web-tmpl", image=f"{PROJECT}/web-1-0-0", labels={"team": "web"})
        yield World(fake, tmp_path, Recording())


# An owner's update policy unlike bakery's (PROACTIVE REPLACE, maxSurge 1, maxUnavailable 0).
OWN_POLICY = {
    "type": "PROACTIVE",
    "minimalAction": "RESTART",
    "maxSurge": {"fixed": 2},
    "maxUnavailable": {"fixed": 1},
}


def seed_mig(
    world: World, size: int = 3, *, name: str = "web-mig", policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    return world.gce.groups.add_mig(
        PROJECT,
        name,
        template=f"{TEMPLATES}/web-tmpl",
        size=size,
        health_check=CHECK,
        update_policy=policy,
        **world.where,
    )


def bench_watch_calls(
    world: World, patch: pytest.MonkeyPatch, *, size: int = 100, scale: float = 0.005
) -> dict[str, Any]:
    """The API calls bakery makes while a rolling update (maxSurge 10%) moves a `size`-instance MIG
    on the fake, at production's poll interval in simulated time (tests/fakes/clock.py: each
    simulated second really lasts `scale` s). Watching is every request of the roll step from its
    first look on: the looks and the live view's reads (the PATCH and its operation come before).
    Reports the most calls in any 60 simulated seconds, of those and of every request of the roll step."""
    from tests.fakes.clock import SimulatedClock, busiest_window

    sim = SimulatedClock(scale)
    world.clock = sim.clock()
    world.gce.clock = sim.now
    # The group moves in simulated time too, a tick every 6 s: the count of looks does not depend
    # on how busy this machine is.
    world.gce.pace_groups(sim.now, 6.0)
    patch.delenv("BAKERY_POLL_SECONDS", raising=False)  # production's interval
    seed_mig(world, size=size)
    group = world.group("rolling", max_surge="10%", max_unavailable=0)
    # Production's gate time: a look every 12 s must not outlast the fake's 3 s.
    group = group.model_copy(update={"health": Health(grace_seconds=0, timeout_seconds=300)})
    rollout = world.new_rollout(group, "1.0.1")
    moves = world.driver().rollout_steps(rollout)
    journal = world.journal(rollout)
    roll = next(i for i, step in enumerate(moves) if step.name == "roll")
    steps.execute(moves[:roll], journal, world.reporter)  # check, template: not watching yet
    world.gce.reset_requests()
    steps.execute(moves[: roll + 1], journal, world.reporter)
    requests = list(zip(world.gce.request_times, world.gce.requests, strict=True))
    first_look = next(i for i, (_, (_, path)) in enumerate(requests) if "listManagedInstances" in path) - 1
    watching = requests[first_look:]
    looks = sum(1 for _, (_, path) in watching if "listManagedInstances" in path)
    span = watching[-1][0] - watching[0][0] if watching else 0.0
    return {
        "instances": size,
        "strategy": "rolling",
        "calls_roll_step": len(requests),
        "calls_watching": len(watching),
        "looks": looks,
        "calls_per_look": round(len(watching) / looks, 2) if looks else None,
        "minutes_watched_in_production": round(span / 60, 1),
        "busiest_minute_watching": busiest_window([t for t, _ in watching]),
        "busiest_minute_all_calls": busiest_window([t for t, _ in requests]),
        "images_after": sorted(set(world.images_of())),
    }
