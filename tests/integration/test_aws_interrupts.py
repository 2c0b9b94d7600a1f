"""A bake stopped in any phase leaves nothing behind, as a user at a terminal would see it.

The installed `bakery` script bakes against the moto server (tests/fakes/moto_ebs.py), which
makes the slow parts of AWS slow on demand (an AMI pending for a minute, a regional copy pending,
a delayed API action); the test sends the signal when the bake's output shows it is in that
phase, then checks, through boto3, that no AMI or snapshot of the image exists in any region,
and that the next plain bake succeeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.fakes import moto_ebs
from tests.integration.aws_world import ec2

BAKERY = str(Path(sys.executable).parent / "bakery")
REGIONS = ("eu-west-1", "eu-central-1")


class Bake:
    """`bakery build app -t aws` in its own process, its output in a file."""

    started: ClassVar[list[Bake]] = []

    def __init__(self, project: Path, *args: str) -> None:
        Bake.started.append(self)
        self.output = project / f"bake-{time.monotonic_ns()}.out"
        self.sink = self.output.open("w")
        env = {**os.environ, "BAKERY_HOME": str(project / ".bakery")}
        self.process = subprocess.Popen(
            [BAKERY, "build", "app", "-t", "aws", *args],
            cwd=project,
            env=env,
            stdout=self.sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def text(self) -> str:
        return self.output.read_text()

    def wait_for(self, marker: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.text():
            if self.process.poll() is not None:
                raise AssertionError(f"bake ended before {marker!r}:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {marker!r} after {timeout}s:\n{self.text()}")
            time.sleep(0.1)

    def stop(self, signum: int = signal.SIGINT) -> None:
        self.process.send_signal(signum)

    def finish(self, timeout: float = 120) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the bake did not end within {timeout}s:\n{self.text()}") from None
        finally:
            self.sink.close()
        return code


def images_of_app(moto: str) -> dict[str, list[str]]:
    found = {}
    for region in REGIONS:
        images = ec2(moto, region).describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["app-*"]}])
        found[region] = [i["ImageId"] for i in images["Images"]]
    return found


def snapshots(moto: str) -> dict[str, set[str]]:
    return {
        r: {s["SnapshotId"] for s in ec2(moto, r).describe_snapshots(OwnerIds=["self"])["Snapshots"]} for r in REGIONS
    }


@pytest.fixture()
def world(aws_project: Path, moto: str) -> Iterator[dict[str, set[str]]]:
    before = snapshots(moto)
    yield before
    moto_ebs.set_faults(moto)
    for bake in Bake.started:  # a failed test must not leave its bake running
        if bake.process.poll() is None:
            bake.process.kill()
            bake.process.wait()
    Bake.started.clear()
    subprocess.run(["pkill", "-KILL", "-f", f"packer build .*{aws_project}"], check=False)


def assert_nothing_left(moto: str, before: dict[str, set[str]], output: str) -> None:
    assert images_of_app(moto) == {r: [] for r in REGIONS}, output
    assert snapshots(moto) == before, output


def assert_next_bake_succeeds(project: Path, moto: str) -> None:
    moto_ebs.set_faults(moto)
    again = Bake(project)
    code = again.finish()
    assert code == 0, again.text()
    assert "baked app@0.3.0 on aws" in again.text()
    assert all(len(amis) == 1 for amis in images_of_app(moto).values())


PHASES = [
    # (phase, faults, marker in the bake's output, signal)
    ("resolving", {"delays": [{"action": "DescribeImages", "agent": "Boto3", "seconds": 60}]}, "==> resolve", "INT"),
    ("the AMI wait", {"pending_seconds": {"create": 120}}, "Waiting for AMI to become ready", "INT"),
    ("the regional copy", {"pending_seconds": {"copy": 120}}, "Waiting for all copies to complete", "TERM"),
    (
        "Packer's tagging",
        # Each of Packer's CreateTags calls (an AMI and its snapshot, per region) held long enough
        # that the signal lands inside the step, which Packer finishes before it cleans up.
        {"delays": [{"action": "CreateTags", "agent": "aws-sdk-go", "seconds": 6}]},
        "Adding tags to AMI",
        "INT",
    ),
    (
        "recording",
        {"delays": [{"action": "ModifyImageAttribute", "agent": "Boto3", "seconds": 60}]},
        "==> record",
        "HUP",
    ),
]


@pytest.mark.parametrize(("phase", "faults", "marker", "signame"), PHASES, ids=[p[0] for p in PHASES])
def test_a_signal_in_any_phase_leaves_no_image_or_snapshot(
    aws_project: Path, moto: str, world: Any, phase: str, faults: dict[str, Any], marker: str, signame: str
) -> None:
    moto_ebs.set_faults(moto, **faults)
    bake = Bake(aws_project)
    bake.wait_for(marker)
    time.sleep(1)  # inside the phase, not at its first line
    signum = getattr(signal, f"SIG{signame}")
    stopped_at = time.monotonic()
    bake.stop(signum)
    code = bake.finish(timeout=240)
    took = time.monotonic() - stopped_at
    moto_ebs.set_faults(moto)  # the checks below read through boto3, which the faults may delay
    output = bake.text()
    assert code == 128 + signum, output
    assert "Traceback" not in output
    # bakery waits for Packer's own cleanup (up to runner.CLEANUP_GRACE_SECONDS). Packer 1.6.6
    # interrupted while it tags finishes the step first (every delayed call of it); every other
    # phase stops within seconds.
    bound = {"Packer's tagging": 45, "resolving": 10}.get(phase, 30)
    assert took < bound, f"{phase}: stopping took {took:.0f}s"
    assert_nothing_left(moto, world, output)
    if phase not in ("resolving",):
        assert "removed what this bake created on aws" in output, output
    assert_next_bake_succeeds(aws_project, moto)


def test_a_second_signal_during_cleanup_warns_and_a_third_abandons(aws_project: Path, moto: str, world: Any) -> None:
    moto_ebs.set_faults(
        moto,
        pending_seconds={"create": 120},
        delays=[{"action": "DeregisterImage", "agent": "Boto3", "seconds": 8}],
    )
    bake = Bake(aws_project)
    bake.wait_for("Waiting for AMI to become ready")
    bake.stop()
    bake.wait_for("removing what this bake created on aws")
    bake.stop()
    bake.wait_for("stopping it now would leave behind: eu-west-1:ami-")
    assert bake.finish() == 130  # the cleanup went on after the warning
    assert "removed what this bake created on aws" in bake.text()
    assert_nothing_left(moto, world, bake.text())

    moto_ebs.set_faults(
        moto,
        pending_seconds={"create": 120},
        delays=[{"action": "DeregisterImage", "agent": "Boto3", "seconds": 30}],
    )
    abandoned = Bake(aws_project)
    abandoned.wait_for("Waiting for AMI to become ready")
    abandoned.stop()
    abandoned.wait_for("removing what this bake created on aws")
    abandoned.stop()
    abandoned.wait_for("Press Ctrl-C (or send the signal) again to abandon the cleanup")
    abandoned.stop()
    assert abandoned.finish(timeout=20) == 130
    assert "cleanup abandoned; left behind: eu-west-1:ami-" in abandoned.text()
    left = images_of_app(moto)["eu-west-1"]
    assert len(left) == 1

    # The next bake finds the abandoned AMI: its bake's process on this host is gone.
    moto_ebs.set_faults(moto)
    again = Bake(aws_project)
    assert again.finish() == 0, again.text()
    assert f"removing app@0.3.0 on aws (eu-west-1:{left[0]}), left by the bake" in again.text()
    assert "that process has exited" in again.text()
    assert "baked app@0.3.1 on aws" in again.text()


def test_a_bake_killed_outright_is_cleared_once_provably_dead(aws_project: Path, moto: str, world: Any) -> None:
    moto_ebs.set_faults(moto, pending_seconds={"create": 300})
    bake = Bake(aws_project)
    bake.wait_for("Waiting for AMI to become ready")
    time.sleep(7)  # the heartbeat has written its owner
    bake.process.kill()  # kill -9: no cleanup at all
    bake.finish()
    (primary,) = images_of_app(moto)["eu-west-1"]

    # Its Packer still runs (it does not know bakery died): not dead yet, so nothing is touched.
    moto_ebs.set_faults(moto)
    waiting = Bake(aws_project)
    assert waiting.finish() == 1
    assert "another bake of app@0.3.0 on aws is under way" in waiting.text()
    assert "was stopped, but its tools still run (pid" in waiting.text()
    assert images_of_app(moto)["eu-west-1"] == [primary]

    subprocess.run(["pkill", "-KILL", "-f", f"packer build .*{aws_project}"], check=False)
    deadline = time.monotonic() + 30
    while subprocess.run(["pgrep", "-f", f"packer build .*{aws_project}"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    again = Bake(aws_project)
    assert again.finish() == 0, again.text()
    assert f"removing app@0.3.0 on aws (eu-west-1:{primary}), left by the bake" in again.text()
    assert "that process has exited" in again.text()
    assert "baked app@0.3.1 on aws" in again.text()
    assert primary not in images_of_app(moto)["eu-west-1"]
