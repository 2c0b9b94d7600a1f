"""The bake (bakery/bake/service.py) against the fake provider and a stand-in `packer` on PATH.

What a user sees of a bake: the version it takes, the image recorded with its provenance, the
notes about what it removed and why, the error that stopped it, and that nothing it created
stays behind on the target or in its work directory when it fails or is stopped.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bakery.core.debris import Owner, boot_id, iso
from bakery.errors import BakeryError, BuildError, Interrupted, ProviderError
from bakery.progress import Recording
from tests.fakes.provider import FakeProvider
from tests.unit.bake.conftest import World

SECRET = "s3cret-value-of-the-db-9f2c"


def ago(**delta: float) -> str:
    return iso(datetime.now(UTC) - timedelta(**delta))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])  # the unit tier starts no program but Python
    child.wait()
    return child.pid


# --- a bake that succeeds ------------------------------------------------------------------------


def test_a_bake_records_the_image_it_built_with_its_provenance(world: World) -> None:
    world.packer.scenario(create=("region-a", "region-b"), sleep=1.0)  # time for a heartbeat
    result = world.bake()

    assert result.record.ref == "web@1.0.0" and not result.skipped
    (listed,) = world.fake.images("aws", "web")
    assert listed.inputs_digest == result.inputs_digest
    (invocation,) = world.fake.marks  # the one bake's mark
    assert {image.invocation for image in world.fake.all_images()} == {invocation}
    assert listed.locations == (f"region-a:img-{invocation[:6]}-0", f"region-b:img-{invocation[:6]}-1")
    statement = world.fake.provenance(listed)
    assert statement["subject"][0]["name"] == f"fake:region-a:img-{invocation[:6]}-0"
    assert statement["predicate"]["buildDefinition"]["externalParameters"] == {
        "image": "web",
        "target": "aws",
        "version": "1.0.0",
    }
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == invocation
    # While Packer ran, the bake wrote its owner on what it had created.
    owners = {image.owner for image in world.fake.all_images()}
    assert [(o.host, o.pid, o.invocation) for o in owners if o] == [(socket.gethostname(), os.getpid(), invocation)]

    assert [name for name, _ in world.reporter.phases] == ["resolve", "render", "build", "verify", "record"]
    assert ("packer", f"==> fake: Creating image img-{invocation[:6]}-1 in region-b...") in world.reporter.lines
    workdir = world.ws.builds / f"web-aws-{invocation}"
    assert world.packer.builds() == [
        ["build", "-machine-readable", "-color=false", "-on-error=cleanup", str(workdir / "packer")]
    ]
    assert result.log_path == str(world.ws.builds / f"web-aws-{invocation}.log")
    assert "Creating image" in Path(result.log_path).read_text()
    assert world.work_directories() == []  # it held the build's key: gone once the image is recorded


def test_an_image_with_the_same_inputs_digest_is_not_baked_again(world: World) -> None:
    first = world.bake()
    again = world.bake()

    assert again.skipped and again.record == first.record and again.inputs_digest == first.inputs_digest
    assert world.reporter.notes[-1] == (
        "web on aws is up to date: web@1.0.0 has the same inputs digest (use --force to bake anyway)"
    )
    assert len(world.packer.builds()) == 1
    assert [r.version for r in world.fake.images("aws", "web")] == ["1.0.0"]
    assert world.work_directories() == []


def test_force_bakes_the_same_inputs_again_as_the_next_version(world: World) -> None:
    first = world.bake()
    forced = world.bake(force=True)

    assert not forced.skipped and forced.record.ref == "web@1.0.1"
    assert forced.inputs_digest == first.inputs_digest
    assert sorted(r.version for r in world.fake.images("aws", "web")) == ["1.0.0", "1.0.1"]
    assert len(world.packer.builds()) == 2


def test_a_changed_input_is_baked_as_the_next_version(world: World) -> None:
    first = world.bake()
    world.fake.base = "fake-base:2"
    second = world.bake()
    assert (second.record.version, second.skipped) == ("1.0.1", False)
    assert second.inputs_digest != first.inputs_digest


# --- what dead bakes left --------------------------------------------------------------------------


def _elsewhere_heartbeat_stopped(world: World) -> tuple[Owner, str, str]:
    beat = ago(minutes=10)
    owner = Owner("deadbake0001", "builder-7", 4242, "0ther0b00t00", ago(minutes=12))
    return owner, beat, f"its heartbeat stopped at {beat}"


def _here_process_exited(world: World) -> tuple[Owner, str, str]:
    owner = Owner("deadbake0001", socket.gethostname(), dead_pid(), boot_id(), ago(minutes=1))
    return owner, ago(seconds=5), "that process has exited"


@pytest.mark.parametrize("death", [_elsewhere_heartbeat_stopped, _here_process_exited], ids=["elsewhere", "here"])
def test_debris_of_a_dead_bake_is_removed_and_its_version_not_reused(
    world: World, death: Callable[[World], tuple[Owner, str, str]]
) -> None:
    world.bake()  # web@1.0.0
    owner, beat, why = death(world)
    for region in ("region-a", "region-b"):
        world.fake.create(
            "aws", "web", "1.0.1", "deadbake0001", region=region, owner=owner, heartbeat=beat, created=owner.started
        )
    debris = [i.id for i in world.fake.all_images() if i.invocation == "deadbake0001"]

    result = world.bake(force=True)

    assert result.record.ref == "web@1.0.2"  # past the version the dead bake had taken
    assert (
        f"removing web@1.0.1 on aws (region-a:{debris[0]}, region-b:{debris[1]}), left by the bake deadbake0001 "
        f"started {owner.started} on {owner.host} (pid {owner.pid}); {why}"
    ) in world.reporter.notes
    assert f"removed {debris[0]} in region-a; {debris[1]} in region-b" in world.reporter.notes
    assert [i for i in world.fake.all_images() if i.invocation == "deadbake0001"] == []


def test_a_bake_still_running_elsewhere_is_left_alone_and_this_bake_refuses(world: World) -> None:
    owner = Owner("livebake0001", "builder-7", 4242, "0ther0b00t00", "2026-01-02T03:04:05Z")
    live = world.fake.create("aws", "web", "1.0.0", "livebake0001", owner=owner, heartbeat=ago(seconds=30))

    with pytest.raises(ProviderError) as caught:
        world.bake()

    assert re.fullmatch(
        r"another bake of web@1\.0\.0 on aws is under way: the bake livebake0001 started 2026-01-02T03:04:05Z "
        rf"on builder-7 \(pid 4242\) is still running \(heartbeat 3\ds ago\) \(region-a:{live.id}\)",
        caught.value.message,
    )
    assert caught.value.exit_code == 1
    assert [i.id for i in world.fake.all_images()] == [live.id]
    assert world.packer.builds() == [] and world.work_directories() == []
    assert world.fake.called("remove") == []


# --- a bake that fails or is stopped -------------------------------------------------------------


class SignalOnLine(Recording):
    """A reporter that sends this process `signum` when Packer prints `marker` (a user's Ctrl-C)."""

    def __init__(self, marker: str, signum: int) -> None:
        super().__init__()
        self.marker = marker
        self.signum = signum

    def line(self, source: str, text: str) -> None:
        super().line(source, text)
        if self.marker in text and self.signum:
            signum, self.signum = self.signum, 0
            os.kill(os.getpid(), signum)


def _packer_fails(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[BakeryError], None]:
    world.packer.scenario(create=("region-a", "region-b"), exit_code=1)

    def check(error: BakeryError) -> None:
        assert isinstance(error, BuildError) and not isinstance(error, Interrupted)
        assert error.message == "packer build failed (exit 1)"
        assert any("Build 'fake' errored: ansible-playbook exited 2" in line for line in error.tail)

    return check


def _image_holds_a_secret(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[BakeryError], None]:
    config = world.project_dir.config
    config.write_text(
        config.read_text().replace("    tags:\n", "    secrets: {db_password: WEB_DB_PASSWORD}\n    tags:\n")
    )
    monkeypatch.setenv("WEB_DB_PASSWORD", SECRET)
    world.packer.scenario(create=("region-a", "region-b"), content=f"/etc/app.conf: password={SECRET}")

    def check(error: BakeryError) -> None:
        assert error.message == (
            "secret 'db_password' (from $WEB_DB_PASSWORD) was found in the built image; refusing to record it"
        )
        assert SECRET not in str(error) + (error.hint or "")

    return check


def _publish_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[BakeryError], None]:
    world.packer.scenario(create=("region-a", "region-b"))
    world.fake.fail("publish")

    def check(error: BakeryError) -> None:
        assert isinstance(error, ProviderError) and error.message == "fake cloud: publish refused (injected fault)"

    return check


def _ctrl_c_while_recording(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[BakeryError], None]:
    world.packer.scenario(create=("region-a", "region-b"))
    world.fake.interrupt("publish", signal.SIGINT)

    def check(error: BakeryError) -> None:
        assert isinstance(error, Interrupted)
        assert (error.message, error.exit_code) == ("interrupted by signal SIGINT", 130)

    return check


def _sigterm_while_packer_runs(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[BakeryError], None]:
    world.packer.scenario(create=("region-a", "region-b"), sleep=60)
    world.reporter = SignalOnLine("in region-b", signal.SIGTERM)

    def check(error: BakeryError) -> None:
        assert isinstance(error, Interrupted)
        assert (error.message, error.exit_code) == ("packer build interrupted; cleanup ran", 143)

    return check


FAILURES_AFTER_PACKER_STARTED = [
    _packer_fails,
    _image_holds_a_secret,
    _publish_refused,
    _ctrl_c_while_recording,
    _sigterm_while_packer_runs,
]


@pytest.mark.parametrize("failure", FAILURES_AFTER_PACKER_STARTED, ids=lambda f: f.__name__.strip("_"))
def test_a_failure_after_packer_started_removes_every_image_the_bake_created(
    world: World, monkeypatch: pytest.MonkeyPatch, failure: Callable[..., Callable[[BakeryError], None]]
) -> None:
    world.fake.create("aws", "api", "1.0.0", "someoneelse1")  # another image's bake: never touched
    check = failure(world, monkeypatch)

    with pytest.raises(BakeryError) as caught:
        world.bake()

    check(caught.value)
    (invocation,) = world.fake.marks
    mine = [f"img-{invocation[:6]}-0 in region-a", f"img-{invocation[:6]}-1 in region-b"]
    assert f"removed what this bake created on aws: {'; '.join(mine)}" in world.reporter.notes
    assert [i.invocation for i in world.fake.all_images()] == ["someoneelse1"]
    assert world.fake.images("aws") == []  # nothing recorded
    assert world.work_directories() == []
    assert [p.name for p in world.logs()] == [f"web-aws-{invocation}.log"]  # only the log stays


@pytest.mark.parametrize(
    "fault",
    [
        lambda fake: fake.fail("images"),
        lambda fake: fake.fail("prepare"),
        lambda fake: fake.fail("before_build"),
        lambda fake: fake.interrupt("prepare", signal.SIGHUP),
    ],
    ids=["listing", "prepare", "before_build", "signal-in-prepare"],
)
def test_a_failure_before_packer_started_makes_no_cloud_cleanup_call(
    world: World, fault: Callable[[FakeProvider], None]
) -> None:
    fault(world.fake)
    with pytest.raises(BakeryError) as caught:
        world.bake()

    assert caught.value.exit_code in (1, 129)
    assert world.packer.builds() == []
    assert world.fake.called("remove") == []
    assert [c for c in world.fake.called("marked") if c.args["invocation"] is not None] == []
    assert not any("removed what this bake created" in note for note in world.reporter.notes)
    assert world.work_directories() == []


# --- one version, one image --------------------------------------------------------------------


def test_an_image_another_bake_created_first_for_the_same_version_wins(world: World) -> None:
    """Two bakes that took the same version: the image created first keeps it, the other bake
    fails and removes its own image."""
    rival_owner = Owner("rival0000001", "builder-9", 77, "0ther0b00t00", "2026-01-02T03:04:05Z")
    created = ago(minutes=1)
    world.fake.on(
        "subject",  # while this bake verifies, the rival's image (created a minute earlier) shows up
        lambda: world.fake.create(
            "aws", "web", "1.0.0", "rival0000001", image_id="img-rival", created=created, owner=rival_owner
        ),
    )
    with pytest.raises(ProviderError) as caught:
        world.bake()

    assert caught.value.message == (
        "web@1.0.0 on aws was taken first by the bake rival0000001 started 2026-01-02T03:04:05Z on builder-9 "
        f"(pid 77) (region-a:img-rival, created {created}); this bake's image is removed"
    )
    assert caught.value.hint == "bake again: the next bake takes the next version"
    assert [i.id for i in world.fake.all_images()] == ["img-rival"]
    assert world.fake.images("aws") == [] and world.work_directories() == []


def test_an_image_another_bake_created_later_does_not_take_the_version(world: World) -> None:
    world.fake.on(
        "subject",
        lambda: world.fake.create("aws", "web", "1.0.0", "rival0000001", image_id="img-rival", created=ago(minutes=-1)),
    )
    result = world.bake()
    assert result.record.ref == "web@1.0.0"
    assert [r.extra["invocation"] for r in world.fake.images("aws", "web")] == [result.record.extra["invocation"]]
