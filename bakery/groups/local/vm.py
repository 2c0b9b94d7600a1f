"""The processes of a local group: its VMs (QEMU on a copy-on-write overlay of a catalog image)
and its HAProxy, started through bakery.runner in sessions of their own so that they outlive
bakery, and found again afterwards by pid.

A process counts as the group's only when it is this user's, its program is QEMU (or HAProxy)
and its arguments name the group's file exactly (the VM's `-drive file=<overlay>,...`,
HAProxy's whole command line): a pid reused by another program, or another program that merely
mentions the path, is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bakery import runner
from bakery.errors import ProviderError
from bakery.groups.local.haproxy import haproxy_argv
from bakery.providers.local.qemu import boot_argv, overlay_argv
from bakery.providers.local.qemu import image_files as boot_files

STOP_GRACE_SECONDS = 10.0
KILL_WAIT_SECONDS = 5.0  # after SIGKILL: a process still there then is reported, not waited for

Match = Callable[[Sequence[str]], bool]  # whether a command line is the one sought


def _program(argv: Sequence[str]) -> str:
    return os.path.basename(argv[0]) if argv else ""


def vm_of(overlay: str | Path) -> Match:
    """QEMU booting `overlay`."""
    drive = f"file={overlay},"
    return lambda argv: _program(argv).startswith("qemu-system-") and any(a.startswith(drive) for a in argv)


def vm_under(directory: str | Path) -> Match:
    """QEMU booting any overlay in `directory` (a VM whose record was lost)."""
    drive = f"file={directory}/"
    return lambda argv: (
        _program(argv).startswith("qemu-system-") and any(a.startswith(drive) and "," in a for a in argv)
    )


def haproxy_of(config: str | Path) -> Match:
    """HAProxy serving on `config`: its whole command line is the one bakery starts it with."""
    wanted = haproxy_argv(Path(config))[1:]
    return lambda argv: _program(argv) == "haproxy" and list(argv[1:]) == wanted


def command_line(pid: int) -> list[str] | None:
    """The arguments of a live process of this user, or None (gone, a zombie, or another
    user's)."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.getuid():
            return None
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0")[:-1]] or None


def runs(pid: int | None, match: Match) -> bool:
    """Whether `pid` is alive, this user's, and the process `match` seeks."""
    if not pid:
        return False
    argv = command_line(pid)
    return argv is not None and match(argv)


def find(match: Match) -> list[int]:
    """Every live process of this user that `match` seeks."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()) and runs(int(entry.name), match):
            found.append(int(entry.name))
    return sorted(found)


def terminate(pid: int | None, match: Match, *, grace: float = STOP_GRACE_SECONDS) -> bool:
    """Stop the process `pid` if it still is the one `match` seeks: SIGTERM, then SIGKILL after
    `grace` seconds. Returns whether it was running. Raises ProviderError when it is still there
    `KILL_WAIT_SECONDS` after SIGKILL."""
    if pid is None or not runs(pid, match):
        return False
    _signal(pid, signal.SIGTERM)
    killed = False
    deadline = time.monotonic() + grace
    while runs(pid, match):
        _reap(pid)
        if time.monotonic() > deadline:
            if killed:
                raise ProviderError(
                    f"process {pid} is still running {KILL_WAIT_SECONDS:g}s after SIGKILL (stuck in the kernel?)",
                    hint=f"look at it with `ps -o pid,stat,wchan,args -p {pid}`; "
                    "the command that stops the group can be run again once it is gone",
                )
            _signal(pid, signal.SIGKILL)
            killed = True
            deadline = time.monotonic() + KILL_WAIT_SECONDS
        time.sleep(0.1)
    _reap(pid)
    return True


def _signal(pid: int, sig: int) -> None:
    # A process runner.start made leads its own session: signal that whole session's group
    # (what QEMU may have forked). Any other process is signalled alone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getsid(pid) == pid and os.getpgid(pid) == pid:
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


def start_vm(argv: list[str], overlay: Path, image_dir: Path, *, what: str) -> runner.Background:
    """Make a fresh overlay (any earlier one of this member is discarded) and boot it."""
    overlay.parent.mkdir(parents=True, exist_ok=True)
    overlay.unlink(missing_ok=True)
    runner.run(overlay_argv(boot_files(image_dir)[0], overlay), what="qemu-img create")
    return runner.start(argv, what=what, log_path=overlay.parent / "qemu.log")


def remove_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
