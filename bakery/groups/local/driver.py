"""The local group driver: `size` QEMU VMs from the local catalog behind a real HAProxy on
127.0.0.1:`port`, with bakery as the engine that rolls them (plain QEMU has none).

The group lives in <home>/groups/<name>/ (see local_state); its processes keep running after
bakery exits, and every command finds them again by their recorded pids (see local_vm). The
steps of rollouts and rollbacks are in local_steps, the moves they are made of in local_engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bakery.config.kinds import TargetSpec
from bakery.config.models import Group
from bakery.core.catalog import ImageRecord
from bakery.errors import UsageError
from bakery.groups import health
from bakery.groups.base import GroupState, HistoryEntry, Instance, Release, Rollout
from bakery.groups.local.engine import Engine, group_files, settings
from bakery.groups.local.state import RETAINED, Member, Saved
from bakery.groups.local.steps import steps_of
from bakery.groups.local.vm import find, haproxy_of, runs, vm_of, vm_under
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory
from bakery.steps import Step
from bakery.workspace import Workspace

READ_PROBE_SECONDS = 2.0


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> LocalDriver:
    return LocalDriver(workspace, reporter)


class LocalDriver:
    kind = "local"

    def __init__(self, workspace: Workspace, reporter: Reporter) -> None:
        self.ws = workspace
        self.reporter = reporter
        self._engines: dict[str, Engine] = {}

    def _engine(self, name: str, group: Group, target_spec: TargetSpec) -> Engine:
        """One engine per group for the life of this driver: it keeps the VMs it started."""
        engine = self._engines.get(name)
        if engine is None or engine.group != group:
            engine = self._engines[name] = Engine(self.ws, self.reporter, name, group, target_spec)
        return engine

    def read(self, name: str, group: Group, target_spec: TargetSpec) -> GroupState:
        """The group from state.json, with each VM's liveness and one probe of its health check.
        VMs kept out of rotation for a blue-green rollback are `kept`, not among its instances."""
        local = settings(name, group)
        files = group_files(self.ws, name)
        saved = files.load()
        instances = tuple(self._instance(member, group) for member in saved.members if member.status != RETAINED)
        kept = tuple(self._instance(member, group) for member in saved.members if member.status == RETAINED)
        return GroupState(
            group=name,
            kind=self.kind,
            running=runs(saved.haproxy_pid, haproxy_of(files.config)),
            intended=saved.release,
            instances=instances,
            desired=local.size,
            kept=kept,
        )

    def _instance(self, member: Member, group: Group) -> Instance:
        if not runs(member.pid, vm_of(member.overlay)):
            return Instance(member.id, member.image, member.image_dir, "stopped", "unhealthy", "its VM is not running")
        answer = health.probe(member.port, group.health.path, timeout=READ_PROBE_SECONDS)
        detail = "" if answer.ok else f"GET {group.health.path} {answer.describe()}"
        return Instance(
            member.id, member.image, member.image_dir, member.status, "healthy" if answer.ok else "unhealthy", detail
        )

    def release_of(self, record: ImageRecord, target_spec: TargetSpec) -> Release:
        """The image's catalog directory is its id: VMs boot from the files in it."""
        if not record.locations or not Path(record.locations[0]).is_dir():
            raise UsageError(
                f"{record.ref} has no directory in the local catalog",
                hint=f"bake it again: bakery build {record.name} --target {record.target}",
            )
        return Release(record.ref, record.locations[0], None, record.inputs_digest)

    def rollout_steps(self, rollout: Rollout) -> Sequence[Step]:
        engine = self._engine(rollout.group, rollout.spec, rollout.target_spec)
        return steps_of(engine, rollout, backward=False)

    def rollback_steps(self, rollout: Rollout) -> Sequence[Step]:
        engine = self._engine(rollout.group, rollout.spec, rollout.target_spec)
        return steps_of(engine, rollout, backward=True)

    def refuse_takeover(self, name: str, group: Group, target_spec: TargetSpec, state: GroupState, stuck: str) -> None:
        """Nothing to refuse: only bakery moves a local group, and the group's lock keeps out a
        process still running `stuck`. A new rollout's first step stops the VMs `stuck` booted
        that never served (and kept ones of another release); its waves retire every VM in
        rotation that is not its own, whichever release it runs; its rollback retires `stuck`'s
        VMs too (see local_steps)."""

    def record(self, name: str, group: Group, target_spec: TargetSpec, entry: HistoryEntry) -> None:
        group_files(self.ws, name).record(entry)

    def history(self, name: str, group: Group, target_spec: TargetSpec) -> list[HistoryEntry]:
        return group_files(self.ws, name).history()

    def prune(self, name: str, group: Group, target_spec: TargetSpec, keep: int) -> list[str]:
        """Nothing to delete: a local rollout makes no template, and VMs kept for a blue-green
        rollback are stopped by the next command that moves the group, or by `down`."""
        return []

    def down(self, name: str, group: Group, target_spec: TargetSpec) -> list[str]:
        """Stop HAProxy and every VM of the group (kept ones too), delete their overlays, and
        stop any process still naming the group's directory. Returns what was stopped."""
        engine = self._engine(name, group, target_spec)
        saved = engine.load()
        stopped = [line for line in [engine.stop_haproxy()] if line]
        for member in saved.members:
            if engine.stop(member):
                stopped.append(f"{member.label()} (pid {member.pid})")

        def leftover(argv: Sequence[str]) -> bool:
            return vm_under(engine.files.vms)(argv) or haproxy_of(engine.files.config)(argv)

        for pid in find(leftover):
            if engine.stop_stray(pid, leftover):
                stopped.append(f"a leftover process of the group (pid {pid})")
        if engine.files.exists():
            engine.files.save(Saved(serial=engine.load().serial))
        return stopped
