"""No GCE test instance outlives `bakery test`, against the fake Compute server:

- an insert may be accepted after bakery gave up on it (a signal while it is in flight, a
  connection dropped after GCE took it): the cleanup's delete finds nothing, then the instance
  appears; the cleanup looks again for a while and deletes it;
- an insert whose operation is known is waited for before the delete (an instance that shows
  only once its insert is DONE is not missed);
- every test instance carries the bound on its life (scheduling.maxRunDuration, DELETE);
- before a launch, the labelled instances of killed runs whose time is up are deleted and named;
  nothing else is touched.

The fake answers the cleanup's first DELETE 404 before it lets the held insert through: the
order is made, not raced."""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bakery.cli.app import app
from bakery.config import load
from bakery.errors import Interrupted, ProviderError
from bakery.imagetest import gcp
from bakery.imagetest.base import Launched, Reach
from bakery.imagetest.service import Tester
from bakery.progress import Recording
from bakery.providers.gcp.api import default_clients
from bakery.workspace import Workspace
from tests.fakes.gce import FakeGce
from tests.integration.test_gcp_fake import PROJECT, StandIn, gce, gcp_project, packer_stand_in  # noqa: F401
from tests.integration.test_imagetest_gcp import seen, stand_in  # noqa: F401 - fixtures

ZONE = "europe-west1-b"
INSTANCES = f"/projects/{PROJECT}/zones/{ZONE}/instances"


@dataclass(frozen=True)
class Baked:
    """`base` baked without its tests on the fake, its project and the stand-in its tests reach."""

    ref: str
    root: Path
    gce: FakeGce
    stand_in: dict[str, Any]


@pytest.fixture()
def baked(
    seen: list[dict[str, Any]],  # noqa: F811 - the project's tests and network
    gcp_project: Path,  # noqa: F811
    gce: FakeGce,  # noqa: F811
    stand_in: dict[str, Any],  # noqa: F811
    packer_stand_in: StandIn,  # noqa: F811
) -> Baked:
    built = CliRunner().invoke(app, ["build", "base", "-t", "gcp", "--no-test", "--json"])
    assert built.exit_code == 0, built.output
    ref = f"base@{json.loads(built.stdout[built.stdout.index('{') :])['record']['version']}"
    return Baked(ref, gcp_project, gce, stand_in)


def make_tester(baked: Baked, reporter: Recording) -> Tester:
    def connect(launched: Launched) -> Reach:
        return Reach("127.0.0.1", ports={8080: baked.stand_in["port"]}, local=True)

    launcher = gcp.GcpLauncher(reporter, default_clients, grace_seconds=30, poll_seconds=0.05)
    root = baked.root
    return Tester(
        load.load(root / "images.yaml"), Workspace.for_project(root), reporter, launcher=launcher, connect=connect
    )


def release_on_first_delete_not_found(gce: FakeGce) -> threading.Event:  # noqa: F811
    """An event set once the fake has answered a DELETE of an instance 404."""
    released = threading.Event()

    def watch(method: str, target: str, status: int) -> None:
        if method == "DELETE" and INSTANCES in target and status == 404:
            released.set()

    gce.answered.append(watch)
    return released


@pytest.mark.parametrize("how", ["SIGTERM in flight", "dropped after accepted"])
def test_an_insert_accepted_after_bakery_gave_up_is_found_and_deleted(baked: Baked, how: str) -> None:
    released = release_on_first_delete_not_found(baked.gce)
    if how == "SIGTERM in flight":
        accepted = baked.gce.hang_next(
            method="POST",
            path_contains=INSTANCES,
            until=released,
            on_arrival=lambda: os.kill(os.getpid(), signal.SIGTERM),
        )
    else:
        accepted = baked.gce.drop_next(method="POST", path_contains=INSTANCES, accept_when=released)
    reporter = Recording()
    with pytest.raises(Interrupted if how == "SIGTERM in flight" else ProviderError) as failed:
        make_tester(baked, reporter).test(baked.ref, "gcp")
    if how == "SIGTERM in flight":
        assert failed.value.exit_code == 143
    else:
        assert "GCP: launch the test instance: " in failed.value.message
        assert "closed the connection without answering" in failed.value.message
    assert released.is_set() and accepted.wait(10)  # the insert was made, after the delete's 404
    (name,) = baked.gce.groups.instances.deleted
    assert baked.gce.groups.instances.all() == []
    assert f"the test instance's insert got no answer: looking for {name} for up to 30s" in reporter.notes
    assert f"removed test instance {name} in {PROJECT}/{ZONE} (deleted, with its key)" in reporter.notes


def test_an_insert_under_way_is_waited_for_before_the_delete(baked: Baked) -> None:
    """SIGTERM while bakery waits for the insert's operation; the instance shows only once the
    operation is DONE (4 s on, longer than a launch's poll): a delete sent at once finds nothing."""
    baked.gce.groups.instances.appear_when_done = True
    baked.gce.operation_delay = 4.0
    baked.gce.hang_next(
        seconds=0,
        method="GET",
        path_contains=f"/projects/{PROJECT}/zones/{ZONE}/operations/",
        on_arrival=lambda: os.kill(os.getpid(), signal.SIGTERM),
    )
    released = release_on_first_delete_not_found(baked.gce)
    with pytest.raises(Interrupted):
        make_tester(baked, Recording()).test(baked.ref, "gcp")
    baked.gce.finish_operations()
    assert not released.is_set()  # its delete found it
    assert baked.gce.groups.instances.all() == [] and len(baked.gce.groups.instances.deleted) == 1


def test_the_instance_carries_the_bound_on_its_life(baked: Baked) -> None:
    found: list[dict[str, Any]] = []
    baked.gce.answered.append(
        lambda method, target, status: (
            found.extend(baked.gce.groups.instances.stored.get((PROJECT, f"zones/{ZONE}"), {}).values())
            if method == "POST" and target.startswith(f"/compute/v1{INSTANCES}?") and status == 200
            else None
        )
    )
    assert make_tester(baked, Recording()).test(baked.ref, "gcp").ok
    (instance,) = found
    assert instance["scheduling"] == {"maxRunDuration": {"seconds": "4500"}, "instanceTerminationAction": "DELETE"}


def test_instances_of_killed_runs_whose_time_is_up_are_deleted_before_the_launch(baked: Baked) -> None:
    bound = {"maxRunDuration": {"seconds": "4500"}, "instanceTerminationAction": "DELETE"}
    old, now = "2026-01-01T00:00:00.000-08:00", "2999-01-01T00:00:00.000-00:00"
    add = baked.gce.groups.instances.add
    add(PROJECT, ZONE, "bakery-test-base-deadbeef01", created=old, labels={"bakery-test-run": "deadbeef01"})
    add(
        PROJECT,
        ZONE,
        "bakery-test-base-cafe000002",
        created=old,
        labels={"bakery-test-run": "cafe000002"},
        scheduling=bound,
    )
    add(
        PROJECT,
        ZONE,
        "bakery-test-base-0123456789",
        created=now,
        labels={"bakery-test-run": "0123456789"},
        scheduling=bound,
    )
    add(PROJECT, ZONE, "someone-elses", created=old, labels={"team": "web"})
    # labelled as a test run by mistake, but not named as bakery names its test instances
    add(PROJECT, ZONE, "prod-db-1", created=old, labels={"bakery-test-run": "deadbeef03"}, scheduling=bound)
    reporter = Recording()
    assert make_tester(baked, reporter).test(baked.ref, "gcp").ok
    left = sorted(i["name"] for i in baked.gce.groups.instances.all())
    assert left == ["bakery-test-base-0123456789", "prod-db-1", "someone-elses"]
    swept = [n for n in reporter.notes if "left by an earlier run" in n]
    assert swept == [
        "removed a test instance left by an earlier run: test instance bakery-test-base-cafe000002 in "
        f"{PROJECT}/{ZONE} (run cafe000002, its time was up at 2026-01-01T09:15:00Z): deleted",
        "removed a test instance left by an earlier run: test instance bakery-test-base-deadbeef01 in "
        f"{PROJECT}/{ZONE} (run deadbeef01, its time was up at 2026-01-01T11:10:00Z): deleted",
    ]
