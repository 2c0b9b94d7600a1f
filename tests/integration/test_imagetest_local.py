"""The local launcher's VM, with a stand-in for QEMU (this Python, named as QEMU is, sleeping with
QEMU's drive argument): launched into the test run's directory, found and stopped by the cleanup
whether or not launch() returned, and never twice. The real boot is tests/e2e/test_image_tests.py's."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bakery import runner
from bakery.config.imagetests import HttpCheck, ImageTests
from bakery.config.targets.local import LocalTarget
from bakery.core.catalog import ImageRecord
from bakery.groups.local.vm import find, vm_under
from bakery.imagetest import local
from bakery.imagetest.base import LaunchRequest, TestKey
from bakery.progress import Recording
from bakery.workspace import Workspace

SLEEPER = "import time; time.sleep(600)"
SEEN: dict[str, Any] = {}  # what the launcher asked of QEMU's command line, in the test running now


@pytest.fixture()
def request_(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LaunchRequest]:
    qemu = tmp_path / "bin" / "qemu-system-x86_64"
    qemu.parent.mkdir()
    qemu.symlink_to(sys.executable)
    image = tmp_path / "images" / "web" / "1.0.0"
    image.mkdir(parents=True)
    for name in ("disk.qcow2", "vmlinuz", "initrd.img"):
        (image / name).write_text("stand-in")
    seen = SEEN

    def boot_argv(**kwargs: Any) -> list[str]:
        seen.update(kwargs)
        return [str(qemu), "-c", SLEEPER, f"file={kwargs['disk']},if=virtio,format=qcow2", "-append", "console=ttyS0"]

    def overlay_argv(disk: Path, overlay: Path) -> list[str]:
        return [sys.executable, "-c", f"open({str(overlay)!r}, 'w').close()"]

    monkeypatch.setattr(local, "boot_argv", boot_argv)
    monkeypatch.setattr(local, "overlay_argv", overlay_argv)
    workdir = tmp_path / "tests" / "web-local-run1"
    workdir.mkdir(parents=True)
    record = ImageRecord("web", "1.0.0", "local", "local", "sha256:0", "now", "base", locations=(str(image),))
    made = LaunchRequest(
        record,
        "local",
        LocalTarget(kind="local", accelerator="tcg"),
        ImageTests(http=(HttpCheck(path="/", port=80),)),
        "run1",
        TestKey.make(workdir, "bakery-test-run1"),
        workdir,
    )
    SEEN.clear()
    yield made
    for pid in find(vm_under(local.vm_dir(made))):  # never leave a stand-in behind, whatever failed
        os.kill(pid, signal.SIGKILL)


def launcher(tmp_path: Path) -> local.LocalLauncher:
    return local.make(Workspace(tmp_path / "home"), Recording())


def test_the_vm_boots_in_the_runs_directory_with_the_key_and_is_stopped(request_, tmp_path) -> None:
    found = launcher(tmp_path)
    launched = found.launch(request_)
    directory = local.vm_dir(request_)
    pid = launched.handle.process.pid  # (find() may not see it yet: its exec may still be under way)
    assert found.alive(launched)
    forwards = SEEN["forwards"]
    assert sorted(forwards.values()) == [22, 80]
    assert launched.reach.host == "127.0.0.1" and forwards[launched.reach.ssh_port] == 22
    assert forwards[launched.reach.port(80)] == 80
    removed = found.cleanup(request_)
    assert removed == [f"the test VM {request_.name} (qemu pid {pid})", f"its overlay disk in {directory}"]
    assert find(vm_under(directory)) == [] and not directory.exists()
    assert not found.alive(launched)
    assert found.cleanup(request_) == []  # once is enough: nothing is stopped twice


def test_a_vm_whose_launch_never_returned_is_found_and_stopped(request_, tmp_path) -> None:
    directory = local.vm_dir(request_)
    directory.mkdir()
    # What a signal between QEMU's start and launch()'s return leaves: a VM nobody holds.
    started = runner.start(
        [str(tmp_path / "bin" / "qemu-system-x86_64"), "-c", SLEEPER, f"file={directory}/disk.qcow2,if=virtio"],
        what="qemu",
        log_path=directory / "qemu.log",
    )
    assert launcher(tmp_path).cleanup(request_)[0] == f"the test VM {request_.name} (qemu pid {started.pid})"
    assert find(vm_under(directory)) == [] and not started.alive()
