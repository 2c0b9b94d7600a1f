"""Boot a local image once and read what it serves over HTTP (the demo, and the e2e checks)."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from bakery import runner
from bakery.config.load import Project
from bakery.config.targets.local import LocalGroup, LocalTarget
from bakery.core import catalog
from bakery.errors import BakeryError, Interrupted, UsageError
from bakery.progress import Reporter
from bakery.providers.local.machine import Machine
from bakery.providers.local.provider import LocalProvider
from bakery.workspace import Workspace


@dataclass(frozen=True)
class Page:
    path: str
    status: int
    body: str


@dataclass(frozen=True)
class BootResult:
    image: str
    version: str
    target: str
    url: str
    pages: list[Page]
    seconds_to_first_answer: float


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 5.0) -> Page:
    """GET a loopback URL (bakery never sends traffic elsewhere from here)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"refusing to fetch {url}: only 127.0.0.1 is reachable from a boot check")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return Page(url.split("/", 3)[-1], response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return Page(url.split("/", 3)[-1], exc.code, exc.read().decode("utf-8", "replace"))


def boot_and_fetch(
    project: Project,
    workspace: Workspace,
    reporter: Reporter,
    *,
    ref: str,
    target: str,
    guest_port: int,
    paths: list[str],
    timeout: float,
    as_group: str | None = None,
) -> BootResult:
    """Boot `ref` on a throwaway overlay, GET each path once the guest answers, then stop it.
    With `as_group`, the VM is one of that local group's (its target, memory, cpus and health
    port): how long a member of the group takes to come up."""
    bad = [p for p in paths if not p.startswith("/") or any(c.isspace() for c in p)]
    if bad:
        raise UsageError(f"--get takes a path starting with '/', got {bad[0]!r}")
    size: tuple[int, int] | None = None
    if as_group is not None:
        target, guest_port, size = _as_group(project, as_group)
    spec = project.config.targets.get(target)
    if not isinstance(spec, LocalTarget):
        raise UsageError(f"'{target}' is not a local target; only local images boot here")
    memory, cpus = size or (spec.memory, spec.cpus)
    name, version = catalog.parse_ref(ref)
    provider = LocalProvider(workspace, reporter)
    record = catalog.select(provider.images(target, name), name=name, version=version, target=target)
    _disk, kernel, initrd = provider.boot_files(record)
    accel = provider.accelerator(spec.accelerator, kernel, initrd)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    reporter.phase("boot", f"{record.ref} with {accel}, port {port} -> {guest_port}")
    started = time.monotonic()
    with Machine(
        workspace, record, forwards={port: guest_port}, accelerator=accel, memory=memory, cpus=cpus
    ) as machine:
        first = _wait(machine, f"{base}{paths[0]}", started + timeout)
        waited = round(time.monotonic() - started, 1)
        pages = [first, *(get(f"{base}{p}") for p in paths[1:])]
    return BootResult(record.name, record.version, target, base, pages, waited)


def _as_group(project: Project, name: str) -> tuple[str, int, tuple[int, int]]:
    """The target, guest health port and (memory, cpus) of the local group `name`."""
    group = project.config.groups.get(name)
    local = group.block(LocalGroup) if group is not None else None
    if group is None or local is None:
        local_groups = sorted(n for n, g in project.config.groups.items() if g.block(LocalGroup) is not None)
        raise UsageError(f"--as-group takes a local group; local groups: {', '.join(local_groups) or 'none'}")
    return group.target, group.health.port, (local.memory, local.cpus)


def _wait(machine: Machine, url: str, deadline: float) -> Page:
    while time.monotonic() < deadline:
        if runner.interrupted():
            raise Interrupted("boot interrupted; the VM was stopped")
        if not machine.alive():
            raise BakeryError(f"the VM stopped before it answered; serial log: {machine.serial_log}")
        try:
            return get(url, timeout=5)
        except (OSError, urllib.error.URLError):
            time.sleep(0.5)  # the first answer is the measurement: seen within half a second
    tail = machine.serial_log.read_text(errors="replace").splitlines()[-15:] if machine.serial_log.exists() else []
    raise BakeryError(f"no answer from {url} in time", hint="serial console:\n  " + "\n  ".join(tail))
