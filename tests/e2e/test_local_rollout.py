"""Rolling local groups for real: QEMU VMs (TCG) behind Debian's HAProxy, moved by `bakery rollout`
and `bakery rollback` while a request loop runs against the group's front port.

The project, its images (web `one` and `two`, and `bad`, whose /healthz answers 500) and the
groups' ports come from the session fixture `rollout_images` (tests/e2e/conftest.py). The tests
of this module share the running groups: each first brings its group to the state it starts from
(`on(...)`, a no-op when the group is there already), so any one of them runs alone.
At most three VMs run at once: web-local (2 VMs, 3 during a wave) is taken down before web-blue.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from bakery.cli.app import app
from tests.e2e.conftest import BIN, RolloutImages, Traffic, group_processes, page_version


class Bakery:
    """`bakery ...` in the project, in-process (typer's CliRunner), as a user types it."""

    def __init__(self, images: RolloutImages) -> None:
        self.images = images
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BAKERY_")}
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env['PATH']}"

    def __call__(self, *args: str) -> Result:
        with contextlib.chdir(self.images.project), _environ(self.env):
            return CliRunner().invoke(app, list(args))

    def status(self, group: str) -> tuple[int, dict[str, Any]]:
        return self.status_of(group)

    def status_of(self, group: str, *args: str) -> tuple[int, dict[str, Any]]:
        shown = self("status", group, "--json", *args)
        (found,) = json.loads(shown.stdout)["groups"]
        return shown.exit_code, found

    def processes(self, group: str) -> list[str]:
        return group_processes(self.images.home, group)


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def bakery(rollout_images: RolloutImages) -> Iterator[Bakery]:
    cli = Bakery(rollout_images)
    yield cli
    for group in ("web-local", "web-blue"):
        cli("down", group)


def on(bakery: Bakery, group: str, image: str) -> None:
    """Bring `group` to `image`, in sync and serving, unless it is there already."""
    code, status = bakery.status(group)
    if code == 0 and status["intended"]["image"] == image:
        return
    moved = bakery("rollout", group, "--image", image, "--strategy", "rolling", "--yes")
    assert moved.exit_code == 0, moved.output[-3000:]


def served_by(bakery: Bakery, group: str) -> Counter[str]:
    return Counter(page_version(bakery.images.ports[group]) for _ in range(6))


def versions(image: str) -> str:
    return image.split("@")[1]


def roll_under_traffic(bakery: Bakery, start: str, to: str, strategy: str) -> Result:
    """Roll web-local from `start` to `to` while requests run: none fails, and the pages served
    come from both versions during the move and from `to` alone after it."""
    on(bakery, "web-local", start)
    with Traffic(bakery.images.ports["web-local"]) as traffic:
        moved = bakery("rollout", "web-local", "--image", to, "--strategy", strategy, "--yes")
    assert moved.exit_code == 0, moved.output[-3000:]
    assert f"now runs {to}" in moved.output
    assert traffic.failed == []
    assert set(traffic.served) == {versions(start), versions(to)}
    assert served_by(bakery, "web-local") == Counter({versions(to): 6})
    return moved


def test_rolling_under_traffic(bakery: Bakery, rollout_images: RolloutImages) -> None:
    images = rollout_images
    moved = roll_under_traffic(bakery, images.one, images.two, "rolling")
    assert "wave 2 (batch): 1 instance(s) -> 2/2 (100%)" in moved.output
    code, status = bakery.status("web-local")
    assert (code, status["counts"], status["healthy"]) == (0, {images.two: 2}, 2)
    assert len(bakery.processes("web-local")) == 3  # haproxy and two VMs: the old ones stopped


def test_canary_under_traffic_onto_the_head_of_the_channel_the_group_follows(
    bakery: Bakery, rollout_images: RolloutImages
) -> None:
    """web-local follows `testing` (a copy of the project's images.yaml says so): it rolls the
    channel's head, `one`, although `two` is the newest bake; with no head it refuses."""
    images = rollout_images
    config = yaml.safe_load((images.project / "images.yaml").read_text())
    config["groups"]["web-local"]["channel"] = "testing"
    following = images.project / "channel.images.yaml"  # beside images.yaml: playbooks/ resolve the same
    following.write_text(yaml.safe_dump(config))
    chan = ("--file", str(following))
    on(bakery, "web-local", images.two)

    refused = bakery("rollout", "web-local", "--yes", *chan)
    assert refused.exit_code == 2, refused.output
    assert "web-local follows channel testing, which has no head for web on local" in refused.output
    promoted = bakery("promote", images.one, "--to", "testing", "--target", "local", *chan)
    assert promoted.exit_code == 0, promoted.output
    code, status = bakery.status_of("web-local", *chan)
    assert code == 3 and status["intended"]["image"] == images.two, status

    with Traffic(images.ports["web-local"]) as traffic:
        moved = bakery("rollout", "web-local", "--strategy", "canary", "--yes", *chan)
    assert moved.exit_code == 0, moved.output[-3000:]
    assert f"now runs {images.one}" in moved.output
    assert "wave 1 (canary): 1 instance(s) -> 1/2 (50%), then hold 5s" in moved.output
    assert "==> hold:" in moved.output
    assert traffic.failed == []
    assert set(traffic.served) == {versions(images.two), versions(images.one)}
    assert served_by(bakery, "web-local") == Counter({versions(images.one): 6})
    assert bakery.status_of("web-local", *chan)[0] == 0


def test_a_bad_image_is_rolled_back_automatically(bakery: Bakery, rollout_images: RolloutImages) -> None:
    images = rollout_images
    on(bakery, "web-local", images.one)
    with Traffic(images.ports["web-local"]) as traffic:
        moved = bakery(
            "rollout",
            "web-local",
            "--image",
            images.bad,
            "--strategy",
            "rolling",
            "--yes",
            "--allow-unverified",
            "--reason",
            "e2e: a bad image's health gate",
        )  # its image tests failed it (tests/e2e/test_image_tests.py): only on the record
    assert moved.exit_code == 1, moved.output[-3000:]
    failed = re.search(r"(web-local-\d+) \((web@[0-9.]+)\) failed its health gate: GET /healthz (.*)", moved.output)
    assert failed, moved.output[-3000:]
    assert failed.group(2) == images.bad
    assert failed.group(3).startswith(f"answered 500: broken web {versions(images.bad)}")
    assert f"failed and was rolled back to {images.one}" in moved.output
    assert traffic.failed == []
    assert set(traffic.served) == {versions(images.one)}
    code, status = bakery.status("web-local")
    assert (code, status["counts"]) == (0, {images.one: 2})
    assert len(bakery.processes("web-local")) == 3  # the bad VM was stopped


def test_a_killed_rollout_is_resumed(bakery: Bakery, rollout_images: RolloutImages) -> None:
    images = rollout_images
    on(bakery, "web-local", images.one)
    args = ["rollout", "web-local", "--image", images.two, "--strategy", "rolling", "--yes"]
    child = subprocess.Popen(
        [str(BIN / "bakery"), *args],
        cwd=images.project,
        env=bakery.env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    seen = _kill_while_booting_in_wave_2(child)
    assert child.returncode == -signal.SIGKILL, seen

    code, status = bakery.status("web-local")
    assert code == 3  # drift: the group is half on each image, its rollout unfinished
    assert set(status["counts"]) == {images.one, images.two}
    assert any("unfinished" in reason for reason in status["reasons"])

    with Traffic(images.ports["web-local"]) as traffic:
        resumed = bakery("rollout", "web-local", "--yes")
    assert resumed.exit_code == 0, resumed.output[-3000:]
    assert "resuming rollout" in resumed.output
    assert "booting" not in resumed.output  # the VM the killed run booted was taken over
    assert traffic.failed == []
    code, status = bakery.status("web-local")
    assert (code, status["counts"]) == (0, {images.two: 2})
    assert len(bakery.processes("web-local")) == 3


def _kill_while_booting_in_wave_2(child: subprocess.Popen[str]) -> str:
    assert child.stderr is not None
    seen: list[str] = []
    in_wave_2 = False
    for line in child.stderr:
        seen.append(line)
        in_wave_2 = in_wave_2 or "==> wave-2" in line
        if in_wave_2 and "booting web-local-" in line:
            child.send_signal(signal.SIGKILL)
            break
    else:
        pytest.fail("the rollout ended before its second wave:\n" + "".join(seen[-30:]))
    child.wait(timeout=60)
    return "".join(seen)


def test_down_leaves_no_process(bakery: Bakery, rollout_images: RolloutImages) -> None:
    on(bakery, "web-local", rollout_images.two)
    assert bakery.processes("web-local")
    stopped = bakery("down", "web-local")
    assert stopped.exit_code == 0, stopped.output
    assert "stopped web-local:" in stopped.output
    assert re.findall(r"web-local-\d+ \(web@[0-9.]+\)", stopped.output)
    assert bakery.processes("web-local") == []
    left = subprocess.run(["pgrep", "-af", "haproxy|qemu-system"], capture_output=True, text=True).stdout
    assert str(rollout_images.home / "groups" / "web-local") not in left
    code, status = bakery.status("web-local")
    assert (code, status["running"]) == (3, False)


def test_blue_green_under_traffic_and_an_immediate_rollback(bakery: Bakery, rollout_images: RolloutImages) -> None:
    images = rollout_images
    bakery("down", "web-local")  # three VMs at most on this machine: web-blue needs two
    on(bakery, "web-blue", images.one)
    port = images.ports["web-blue"]
    with Traffic(port) as traffic:
        moved = bakery("rollout", "web-blue", "--image", images.two, "--yes")
        assert moved.exit_code == 0, moved.output[-3000:]
        assert "is out of rotation, kept for 3600s" in moved.output
        assert served_by(bakery, "web-blue") == Counter({versions(images.two): 6})
        assert len(bakery.processes("web-blue")) == 3  # haproxy, the new VM, the old one kept
        assert bakery.status("web-blue")[0] == 0  # the kept VM is out of the group: no drift

        back = bakery("rollback", "web-blue", "--yes")
    assert back.exit_code == 0, back.output[-3000:]
    assert "booting" not in back.output  # the kept VM went back into rotation
    assert traffic.failed == []
    assert served_by(bakery, "web-blue") == Counter({versions(images.one): 6})
    history = json.loads(bakery("history", "web-blue", "--json").stdout)["entries"]
    assert [(e["kind"], e["to"]["image"], e["result"]) for e in history[-2:]] == [
        ("rollout", images.two, "succeeded"),
        ("rollback", images.one, "succeeded"),
    ]
    assert history[-1]["from"]["image"] == images.two
    down = bakery("down", "web-blue")
    assert down.exit_code == 0
    assert bakery.processes("web-blue") == []
