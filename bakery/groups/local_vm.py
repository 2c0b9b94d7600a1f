"""The processes of a local group: its VMs (QEMU on a copy-on-write overlay of a catalog image)
and its HAProxy, started through bakery.runner in sessions of their own so that they outlive
bakery, and found again afterwards by pid.

A recorded pid is trusted only while /proc/PID/cmdline still names the group's file (the VM's
overlay, HAProxy's configuration): a pid reused by another program is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from bakery import runner
from bakery.errors import UsageError
from bakery.providers.local import boot_argv

STOP_GRACE_SECONDS = 10.0
BOOT_FILES = ("disk.qcow2", "vmlinuz", "initrd.img")


def cmdline(pid: int) -> str | None:
    """The command line of a live process, or None (gone, a zombie, or not ours to read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip() or None


def runs(pid: int | None, marker: str) -> bool:
    """Whether `pid` is alive and is the process whose command line names `marker`."""
    if not pid:
        return False
    line = cmdline(pid)
    return line is not None and marker in line


def find(marker: str) -> list[int]:
    """Every live process whose command line names `marker` (a path of the group's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()) and runs(int(entry.name), marker):
            found.append(int(entry.name))
    return sorted(found)


def terminate(pid: int | None, marker: str, *, grace: float = STOP_GRACE_SECONDS) -> bool:
    """Stop the process `pid` (and its process group) if it is still the one that names
    `marker`: SIGTERM, then SIGKILL after `grace` seconds. Returns whether it was running."""
    if pid is None or not runs(pid, marker):
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while runs(pid, marker):
        _reap(pid)
        if time.monotonic() > deadline:
            _signal(pid, signal.SIGKILL)
            deadline = time.monotonic() + grace
        time.sleep(0.1)
    _reap(pid)
    return True


def _signal(pid: int, sig: int) -> None:
    # The children runner.start makes lead their own process group: signal all of it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit of a child of this process (one bakery started in this run)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@dataclass(frozen=True)
class VmSpec:
    """How every VM of the group boots."""

    accelerator: str
    memory: int
    cpus: int
    guest_port: int


def boot_files(image_dir: Path) -> tuple[Path, Path, Path]:
    """disk, kernel, initrd of a catalog image. UsageError when the directory lost them."""
    files = tuple(image_dir / name for name in BOOT_FILES)
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise UsageError(
            f"the image directory {image_dir} lacks {', '.join(missing)}",
            hint="bake the image again (`bakery build`), or roll the group to another version",
        )
    disk, kernel, initrd = files
    return disk, kernel, initrd


def vm_argv(name: str, overlay: Path, image_dir: Path, spec: VmSpec, port: int, tags: dict[str, str]) -> list[str]:
    """QEMU for one member: its overlay, its loopback port to the guest's health port, its name,
    and the rollout's tags as SMBIOS OEM strings (readable in the guest with dmidecode -t 11)."""
    _disk, kernel, initrd = boot_files(image_dir)
    argv = boot_argv(
        disk=overlay,
        kernel=kernel,
        initrd=initrd,
        accelerator=spec.accelerator,
        memory=spec.memory,
        cpus=spec.cpus,
        forwards={port: spec.guest_port},
        serial_log=overlay.parent / "serial.log",
    )
    strings = [f"type=11,value={key}={value.replace(',', ',,')}" for key, value in sorted(tags.items()) if value]
    return [*argv, "-name", name, *(arg for s in strings for arg in ("-smbios", s))]


def overlay_argv(image_dir: Path, overlay: Path) -> list[str]:
    disk, _kernel, _initrd = boot_files(image_dir)
    return ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(disk), str(overlay)]


def start_vm(argv: list[str], overlay: Path, image_dir: Path, *, what: str) -> runner.Background:
    """Make a fresh overlay (any earlier one of this member is discarded) and boot it."""
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.unlink(missing_ok=True)
    runner.run(overlay_argv(image_dir, overlay), what="qemu-img create")
    return runner.start(argv, what=what, log_path=overlay.parent / "qemu.log")


def remove_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
