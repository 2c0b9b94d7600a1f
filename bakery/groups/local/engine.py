"""A local group on this machine, as the steps of its rollouts move it: its files, its HAProxy
and its VMs. Every change is saved in state.json at once (a VM is recorded before it boots), so
that a rerun after an interrupt, or after bakery was killed, finds everything it started.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bakery import runner
from bakery.config.kinds import TargetSpec
from bakery.config.models import Group
from bakery.config.targets.local import LocalGroup, LocalTarget
from bakery.errors import BakeryError, ConfigError, Interrupted
from bakery.groups import health
from bakery.groups.base import Release
from bakery.groups.local import haproxy
from bakery.groups.local.state import BOOTING, DRAINING, READY, RETAINED, SERVING, GroupFiles, Member, Saved
from bakery.groups.local.vm import (
    Match,
    VmSpec,
    find,
    haproxy_of,
    remove_dir,
    runs,
    start_vm,
    terminate,
    vm_argv,
    vm_of,
)
from bakery.progress import Reporter
from bakery.providers.local.boot import free_port
from bakery.providers.local.provider import LocalProvider
from bakery.providers.local.qemu import image_files as boot_files
from bakery.workspace import Workspace

HAPROXY = "haproxy"  # the key of the group's HAProxy among the processes an engine started


def group_files(workspace: Workspace, name: str) -> GroupFiles:
    return GroupFiles(workspace.root / "groups" / name, name)


def settings(name: str, group: Group) -> LocalGroup:
    local = group.block(LocalGroup)
    if local is None:
        raise ConfigError(f"group '{name}' has no local: block", hint="add local: {size: 2, port: 8080}")
    return local


def utc_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def is_past(moment: str | None) -> bool:
    return moment is not None and datetime.fromisoformat(moment) <= datetime.now(UTC)


class Engine:
    """The group `name` on this machine. One process moves it at a time (the rollout service
    holds the group's lock); readers only read."""

    def __init__(self, workspace: Workspace, reporter: Reporter, name: str, group: Group, target: TargetSpec) -> None:
        self.ws = workspace
        self.reporter = reporter
        self.name = name
        self.group = group
        self.local = settings(name, group)
        self.target = target
        self.files = group_files(workspace, name)
        # Children of this process, by member id (and HAPROXY): a pid is reused once reaped.
        self._started: dict[str, runner.Background] = {}
        self._spec: VmSpec | None = None

    # --- state ------------------------------------------------------------------------------

    def load(self) -> Saved:
        return self.files.load()

    def put(self, member: Member) -> Member:
        self.files.update(lambda s: s.put(member))
        return member

    def change(self, member: Member, **fields: Any) -> Member:
        """Change fields of `member` as state.json has it now (never an older copy of it)."""
        current = self.load().member(member.id) or member
        return self.put(dataclasses.replace(current, **fields))

    def alive(self, member: Member) -> bool:
        # A child of this process is asked directly: just after its start, /proc shows no command
        # line until its exec is done, and a VM just booted would look dead.
        started = self._started.get(member.id)
        if started is not None and member.pid in (None, started.pid):
            return started.alive()
        return runs(member.pid, vm_of(member.overlay))

    def forget_dead(self) -> None:
        """Members whose VM is gone leave HAProxy and the state; a VM recorded just before it
        started (its pid not yet saved) is found again by its overlay."""
        for member in self.load().members:
            if member.pid is None and (pids := find(vm_of(member.overlay))):
                member = self.change(member, pid=pids[0])
            if not self.alive(member):
                self.reporter.note(f"{member.label()} is not running any more: forgotten")
                self._leave_haproxy(member)
                self._forget(member)

    # --- HAProxy ----------------------------------------------------------------------------

    def haproxy_running(self, saved: Saved | None = None) -> bool:
        saved = saved or self.load()
        return runs(saved.haproxy_pid, self._haproxy())

    def _haproxy(self) -> Match:
        return haproxy_of(self.files.config)

    def runtime(self, saved: Saved | None = None) -> haproxy.Runtime:
        saved = saved or self.load()
        assert saved.stats_port is not None, "the runtime API is asked for only once HAProxy was started"
        return haproxy.Runtime(saved.stats_port, self.name)

    def ensure_haproxy(self) -> haproxy.Runtime:
        """HAProxy on the group's front port, started (with the serving VMs) unless it runs
        there already. A front port changed in images.yaml moves HAProxy to the new one."""
        saved = self.load()
        if self.haproxy_running(saved) and self.runtime(saved).answers():
            if saved.front_port == self.local.port:
                return self.runtime(saved)
            self.reporter.note(f"the front port changed: HAProxy moves from {saved.front_port} to {self.local.port}")
        self._stop_process(HAPROXY, saved.haproxy_pid, self._haproxy())
        for pid in find(self._haproxy()):  # one whose pid was never saved (bakery killed as it started)
            self.reporter.note(f"stopping a HAProxy of the group left behind (pid {pid})")
            terminate(pid, self._haproxy())
        saved = self.files.update(
            lambda s: dataclasses.replace(s, front_port=self.local.port, stats_port=free_port(), haproxy_pid=None)
        )
        self.write_config()
        runtime = self.runtime(saved)
        self.reporter.note(f"starting HAProxy on 127.0.0.1:{self.local.port}")
        haproxy.start(
            self.files.config,
            self.files.haproxy_log,
            runtime,
            front_port=self.local.port,
            on_start=self._haproxy_started,
        )
        return runtime

    def _haproxy_started(self, process: runner.Background) -> None:
        self._started[HAPROXY] = process
        self.files.update(lambda s: dataclasses.replace(s, haproxy_pid=process.pid))

    def write_config(self) -> None:
        """haproxy.cfg with the serving VMs, for the next start of HAProxy (the running one is
        changed through its runtime API)."""
        saved = self.load()
        text = haproxy.render_config(
            group=self.name,
            front_port=self.local.port,
            stats_port=saved.stats_port or 0,
            health=self.group.health,
            servers=[haproxy.Server(m.id, m.port) for m in saved.with_status(SERVING)],
        )
        self.files.directory.mkdir(parents=True, exist_ok=True)
        self.files.config.write_text(text)

    def stop_haproxy(self) -> str | None:
        saved = self.load()
        if saved.haproxy_pid is None:
            return None
        stopped = self._stop_process(HAPROXY, saved.haproxy_pid, self._haproxy())
        self.files.update(lambda s: dataclasses.replace(s, haproxy_pid=None))
        return f"haproxy on 127.0.0.1:{saved.front_port} (pid {saved.haproxy_pid})" if stopped else None

    def _leave_haproxy(self, member: Member, *, interruptible: bool = True) -> None:
        if self.haproxy_running():
            self.runtime().remove(member.id, interruptible=interruptible)

    # --- VMs --------------------------------------------------------------------------------

    def boot(self, release: Release, *, rollout: str, wave: int, tags: dict[str, str]) -> Member:
        """Record a new member, then boot it from `release`'s catalog directory."""
        spec = self._spec_for(release)
        saved = self.files.update(lambda s: dataclasses.replace(s, serial=s.serial + 1))
        member_id = f"{self.name}-{saved.serial}"
        overlay = self.files.vms / member_id / "disk.qcow2"
        member = self.put(
            Member(member_id, release.image, release.image_id, free_port(), str(overlay), BOOTING, rollout, wave, tags)
        )
        argv = vm_argv(member_id, overlay, Path(release.image_id), spec, member.port, tags)
        started = start_vm(argv, overlay, Path(release.image_id), what=f"qemu {member_id}")
        self._started[member_id] = started
        self.reporter.note(f"booting {member.label()} ({spec.accelerator}), its port 127.0.0.1:{member.port}")
        return self.change(member, pid=started.pid)

    def _spec_for(self, release: Release) -> VmSpec:
        """How VMs boot; the accelerator is probed (and cached per host) with the first image."""
        if self._spec is None:
            requested = self.target.accelerator if isinstance(self.target, LocalTarget) else "auto"
            _disk, kernel, initrd = boot_files(Path(release.image_id))
            accelerator = LocalProvider(self.ws, self.reporter).accelerator(requested, kernel, initrd)
            self._spec = VmSpec(accelerator, self.local.memory, self.local.cpus, self.group.health.port)
        return self._spec

    def targets(self, members: Sequence[Member]) -> list[health.Target]:
        return [health.Target(m.label(), m.port, functools.partial(self.alive, m)) for m in members]

    def gate(self, members: Sequence[Member]) -> None:
        """bakery's gate on `members` (GateFailed names the first that failed); passed: READY."""
        if not members:
            return
        h = self.group.health
        self.reporter.phase(
            "gate",
            f"{', '.join(m.id for m in members)}: {h.healthy_threshold} consecutive 200s from GET {h.path} "
            f"within {h.timeout_seconds}s",
        )
        health.gate(self.targets(members), h)
        for member in members:
            self.change(member, status=READY)

    def serve(self, members: Sequence[Member]) -> None:
        """Put gated members in HAProxy's rotation."""
        for member in members:
            self.ensure_haproxy().add(haproxy.Server(member.id, member.port), self.group.health)
            self.change(member, status=SERVING, retain_until=None)
            self.reporter.note(f"{member.label()} serves")
        self.write_config()

    def retire(self, member: Member, *, retain_seconds: int = 0) -> None:
        """Drain `member` out of HAProxy, then stop it, or keep it out of rotation for
        `retain_seconds` (a blue-green rollback puts it back at once)."""
        member = self.change(member, status=DRAINING)
        self._leave_haproxy(member)
        self.write_config()
        if retain_seconds and self.alive(member):
            self.change(member, status=RETAINED, retain_until=utc_in(retain_seconds))
            self.reporter.note(f"{member.label()} is out of rotation, kept for {retain_seconds}s")
            return
        self.stop(member)

    def stop(self, member: Member) -> bool:
        """Stop the member's VM (if it still is that VM), delete its overlay, forget it."""
        stopped = self._stop_process(member.id, member.pid, vm_of(member.overlay))
        for pid in find(vm_of(member.overlay)):  # recorded before its pid was saved
            stopped = terminate(pid, vm_of(member.overlay)) or stopped
        self._forget(member)
        if stopped:
            self.reporter.note(f"stopped {member.label()}")
        return stopped

    def discard(self, member: Member, *, interruptible: bool = True) -> None:
        """Take `member` out of HAProxy (a READY one may have entered it just before its state
        said so), then stop its VM, whatever HAProxy answered."""
        try:
            self._leave_haproxy(member, interruptible=interruptible)
        except Interrupted:
            raise
        except BakeryError as exc:
            self.reporter.note(f"{member.id}: {exc.message}")
        finally:
            self.stop(member)

    def stop_unserved(self, rollout: str) -> None:
        """What an interrupt or a failed gate leaves safe: VMs of `rollout` that do not serve
        are stopped. A cleanup: a signal does not cut it short, one VM's failure does not keep
        the others running."""
        for member in self.load().of(rollout):
            if member.status in (BOOTING, READY):
                try:
                    self.discard(member, interruptible=False)
                except BakeryError as exc:
                    self.reporter.note(f"{member.label()} could not be stopped: {exc.message}")

    def _forget(self, member: Member) -> None:
        remove_dir(member.directory)
        self.files.update(lambda s: s.drop(member.id))

    def _stop_process(self, key: str, pid: int | None, match: Match) -> bool:
        """Stop the process recorded as `pid`: a child of this process directly (and not at all
        once it ended: its pid may be another's by now), any other only if `match` finds it."""
        started = self._started.pop(key, None)
        if started is not None and pid in (None, started.pid):
            if not started.alive():
                return False
            started.stop()
            return True
        return terminate(pid, match)

    def stop_stray(self, pid: int, match: Match) -> bool:
        """A process of the group that state.json does not know (its record was lost):
        stopped all the same, so that `down` leaves nothing behind."""
        return terminate(pid, match)
