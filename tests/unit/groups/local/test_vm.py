"""The local group's VMs (bakery/groups/local/vm.py): the QEMU command line, and how a process is
known as the group's (by its whole command line, against stand-in "QEMU" Pythons)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from bakery import runner
from bakery.groups.base import Release
from bakery.groups.local.vm import VmSpec, find, haproxy_of, runs, terminate, vm_argv, vm_of


@pytest.fixture(scope="session")
def qemu(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A program named as QEMU is (it is this Python)."""
    link = tmp_path_factory.mktemp("bin") / "qemu-system-x86_64"
    link.symlink_to(sys.executable)
    return str(link)


def drive(overlay: Path | str) -> str:
    return f"file={overlay},if=virtio,format=qcow2"


def image(root: Path, version: str, *, health: int = 200) -> Release:
    directory = root / "images" / "local" / "web" / version
    directory.mkdir(parents=True)
    for name in ("disk.qcow2", "vmlinuz", "initrd.img"):
        (directory / name).write_text("stand-in")
    (directory / "answer.json").write_text(json.dumps({"version": version, "health": health}))
    return Release(f"web@{version}", str(directory), None, f"sha256:{version}")


def test_vm_argv_names_the_vm_and_carries_the_tags(tmp_path: Path) -> None:
    release = image(tmp_path, "1.0.0")
    overlay = tmp_path / "vms" / "g-1" / "disk.qcow2"
    tags = {"bakery:image": "web", "bakery:rollout": "r-0123456789ab", "bakery:version": "1.0.0"}
    argv = vm_argv("g-1", overlay, Path(release.image_id), VmSpec("tcg", 512, 1, 80), 40001, tags)
    assert argv[argv.index("-drive") + 1] == f"file={overlay},if=virtio,format=qcow2"
    assert argv[argv.index("-netdev") + 1] == "user,id=net0,hostfwd=tcp:127.0.0.1:40001-:80"
    assert argv[argv.index("-serial") + 1] == f"file:{overlay.parent / 'serial.log'}"
    assert argv[-8:] == [
        "-name",
        "g-1",
        "-smbios",
        "type=11,value=bakery:image=web",
        "-smbios",
        "type=11,value=bakery:rollout=r-0123456789ab",
        "-smbios",
        "type=11,value=bakery:version=1.0.0",
    ]


def test_haproxy_is_known_by_its_whole_command_line(tmp_path: Path) -> None:
    config = str(tmp_path / "haproxy.cfg")
    match = haproxy_of(config)
    assert match(["haproxy", "-f", config, "-db"])
    assert match(["/usr/sbin/haproxy", "-f", config, "-db"])
    assert not match(["haproxy", "-c", "-q", "-f", config])  # a check of the config, not the group's HAProxy
    assert not match(["haproxy", "-f", f"{config}.old", "-db"])
    assert not match(["vi", "-f", config, "-db"])


SLEEPER = "import time; print('started', flush=True); time.sleep(600)"


def started(process: runner.Background) -> None:
    """Wait until the child runs its own program: just after its start, /proc shows no command
    line yet (the new program's arguments are not mapped until its exec is done)."""
    while process.alive() and b"started" not in Path(f"/proc/{process.pid}/cmdline").read_bytes():
        time.sleep(0.01)


def test_a_pid_is_trusted_only_while_it_is_qemu_on_the_overlay(tmp_path: Path, qemu: str) -> None:
    overlay = tmp_path / "vms" / "g-1" / "disk.qcow2"
    sleeper = runner.start([qemu, "-c", SLEEPER, drive(overlay)], what="sleeper", log_path=tmp_path / "log")
    # Not QEMU, or QEMU on another overlay whose path starts with this one's: never the VM.
    other = runner.start([sys.executable, "-c", SLEEPER, drive(overlay)], what="other", log_path=tmp_path / "log")
    longer = runner.start([qemu, "-c", SLEEPER, drive(f"{overlay}.old")], what="longer", log_path=tmp_path / "log")
    try:
        for process in (sleeper, other, longer):
            started(process)
        assert runs(sleeper.pid, vm_of(overlay))
        assert not runs(sleeper.pid, vm_of(tmp_path / "vms" / "g-2" / "disk.qcow2"))
        assert find(vm_of(overlay)) == [sleeper.pid]
        assert terminate(sleeper.pid, vm_of(tmp_path / "else")) is False
        assert terminate(other.pid, vm_of(overlay)) is False
        assert sleeper.alive() and other.alive() and longer.alive()
        assert terminate(sleeper.pid, vm_of(overlay)) is True
        assert not runs(sleeper.pid, vm_of(overlay))
        assert find(vm_of(overlay)) == []
        assert other.alive() and longer.alive()
    finally:
        for process in (sleeper, other, longer):
            process.stop()
