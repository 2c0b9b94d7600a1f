"""One VM booted from a local image on a throwaway overlay (`bakery boot`, the e2e checks)."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

from bakery import runner
from bakery.core.catalog import ImageRecord
from bakery.progress import Reporter
from bakery.providers.local.provider import LocalProvider
from bakery.providers.local.qemu import boot_argv, overlay_argv
from bakery.workspace import Workspace


class Machine:
    """A VM booted from a local image on a throwaway overlay; the image itself is never written."""

    def __init__(
        self,
        workspace: Workspace,
        record: ImageRecord,
        *,
        forwards: dict[int, int],
        accelerator: str,
        memory: int = 1024,
        cpus: int = 1,
        ssh_public_key: str | None = None,
    ) -> None:
        self.ws = workspace
        self.record = record
        self.forwards = forwards
        self.accelerator = accelerator
        self.memory = memory
        self.cpus = cpus
        self.ssh_public_key = ssh_public_key
        self.directory = workspace.root / "instances" / f"{record.name}-{os.urandom(4).hex()}"
        self._vm: runner.Background | None = None

    @property
    def serial_log(self) -> Path:
        return self.directory / "serial.log"

    def start(self) -> Machine:
        disk, kernel, initrd = LocalProvider(self.ws, _quiet()).boot_files(self.record)
        self.directory.mkdir(parents=True)
        overlay = self.directory / "disk.qcow2"
        runner.run(overlay_argv(disk, overlay), what="qemu-img create")
        argv = boot_argv(
            disk=overlay,
            kernel=kernel,
            initrd=initrd,
            accelerator=self.accelerator,
            memory=self.memory,
            cpus=self.cpus,
            forwards=self.forwards,
            serial_log=self.serial_log,
        )
        if self.ssh_public_key:
            token = base64.b64encode(self.ssh_public_key.strip().encode() + b"\n").decode()
            argv[-1] = f"{argv[-1]} bakery.ssh_key={token}"
        self._vm = runner.start(argv, what="qemu", log_path=self.directory / "qemu.log")
        return self

    def alive(self) -> bool:
        return self._vm is not None and self._vm.alive()

    def stop(self) -> None:
        if self._vm is not None:
            self._vm.stop()
            self._vm = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Machine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _quiet() -> Reporter:
    from bakery.progress import Silent

    return Silent()
