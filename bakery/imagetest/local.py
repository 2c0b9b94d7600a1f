"""Test instances of local images: a QEMU VM on a throwaway overlay in the test run's directory,
reached on loopback ports forwarded to its SSH and HTTP ports.

The image keeps no key: the test's public key reaches the VM on the kernel command line
(`bakery.ssh_key=<base64>`), which bakery-build-access.service of every bakery base disk installs
for root at boot (templates/base-overlay/). The cleanup finds the VM by its overlay's directory,
whether or not launch() returned, and stops it.
"""

from __future__ import annotations

import base64
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bakery import runner
from bakery.config import kinds
from bakery.config.targets.local import LocalTarget
from bakery.groups.local import vm
from bakery.imagetest.base import Launched, LaunchRequest, Reach
from bakery.progress import Reporter
from bakery.providers.local.boot import free_port
from bakery.providers.local.provider import LocalProvider
from bakery.providers.local.qemu import boot_argv, overlay_argv
from bakery.workspace import Workspace

CONSOLE_LINES = 20
FIND_ATTEMPTS = 5
FIND_PAUSE_SECONDS = 0.2


def make(workspace: Workspace, reporter: Reporter, clients: object = None) -> LocalLauncher:
    return LocalLauncher(LocalProvider(workspace, reporter))


def vm_dir(request: LaunchRequest) -> Path:
    return request.workdir / "vm"


def kernel_cmdline(base: str, public_key: str) -> str:
    """The VM's kernel command line, carrying the test's public key for bakery-build-access."""
    token = base64.b64encode(public_key.strip().encode() + b"\n").decode()
    return f"{base} bakery.ssh_key={token}"


class LocalLauncher:
    def __init__(self, provider: LocalProvider) -> None:
        self.provider = provider
        self._started: dict[str, runner.Background] = {}  # run -> its VM, from the moment it started

    def launch(self, request: LaunchRequest) -> Launched:
        spec = kinds.typed(request.spec, LocalTarget, f"target '{request.target}'")
        disk, kernel, initrd = self.provider.boot_files(request.record)
        accelerator = self.provider.accelerator(spec.accelerator, kernel, initrd)
        directory = vm_dir(request)
        directory.mkdir(parents=True)
        overlay = directory / "disk.qcow2"
        runner.run(overlay_argv(disk, overlay), what="qemu-img create")
        ssh = free_port()
        ports = {guest: free_port() for guest in request.tests.guest_ports()}
        argv = boot_argv(
            disk=overlay,
            kernel=kernel,
            initrd=initrd,
            accelerator=accelerator,
            memory=spec.memory,
            cpus=spec.cpus,
            forwards={ssh: 22, **{host: guest for guest, host in ports.items()}},
            serial_log=directory / "serial.log",
        )
        argv[-1] = kernel_cmdline(argv[-1], request.key.public)
        process = runner.start(
            [*argv, "-name", request.name], what="qemu (test instance)", log_path=directory / "qemu.log"
        )
        self._started[request.run] = process  # cleanup stops it directly, not only by a process scan
        reach = Reach("127.0.0.1", ssh, "root", ports)
        where = f"on this machine ({accelerator}, SSH on 127.0.0.1:{ssh})"
        return Launched(request.name, where, reach, _Vm(process, directory / "serial.log"))

    def alive(self, launched: Launched) -> bool:
        found = launched.handle
        return isinstance(found, _Vm) and found.process.alive()

    def cleanup(self, request: LaunchRequest) -> list[str]:
        directory = vm_dir(request)
        removed = []
        held = self._started.pop(request.run, None)
        if held is not None and held.alive():
            held.stop()
            removed.append(f"the test VM {request.name} (qemu pid {held.pid})")
        # A VM nobody holds (a signal between its start and launch() keeping it): found by its
        # overlay's directory. Right after its start, its command line may still be empty for a
        # moment (the exec under way): look again before concluding there is none.
        match = vm.vm_under(directory)
        for attempt in range(FIND_ATTEMPTS):
            found = vm.find(match)
            for pid in found:
                if vm.terminate(pid, match):
                    removed.append(f"the test VM {request.name} (qemu pid {pid})")
            if found or not (directory / "qemu.log").exists() or attempt == FIND_ATTEMPTS - 1:
                break
            time.sleep(FIND_PAUSE_SECONDS)
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(f"its overlay disk in {directory}")
        return removed

    def sweep(self, request: LaunchRequest) -> list[str]:
        return []  # only cloud targets are swept: a VM here is bakery's child, in the run's directory

    def console(self, launched: Launched) -> str:
        found = launched.handle
        if not isinstance(found, _Vm) or not found.serial.is_file():
            return ""
        return "\n".join(found.serial.read_text(errors="replace").splitlines()[-CONSOLE_LINES:])


@dataclass(frozen=True)
class _Vm:
    process: runner.Background
    serial: Path
