"""The local group driver's rollouts and rollbacks end to end on the real HAProxy, with a stand-in
for QEMU (a small Python web server per "VM" that answers what its image's directory says), so that
each rollout takes seconds. Its pure parts are in tests/unit/groups/local/.

The QEMU side itself (overlays, boots, the real nginx) is proven by tests/e2e/test_local_rollout.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bakery import runner, steps
from bakery.config.models import Group, Health, LocalGroup, LocalTarget, Strategy
from bakery.errors import GateFailed, Interrupted
from bakery.groups import health, strategy
from bakery.groups.base import REPLACES, Release, Rollout
from bakery.groups.local import engine as local_engine
from bakery.groups.local import haproxy
from bakery.groups.local.driver import LocalDriver
from bakery.groups.local.state import RETAINED, SERVING, GroupFiles
from bakery.groups.local.vm import VmSpec, find, haproxy_of, runs, vm_of, vm_under
from bakery.progress import Recording
from bakery.providers.local.boot import free_port
from bakery.workspace import Workspace
from tests.e2e.conftest import Traffic, page_version

# The stand-in VM: serves a page naming its version, as the web image's does, and /healthz as its
# image's answer.json says, on 127.0.0.1:PORT.
# It runs as qemu-system-x86_64 (a link to this Python) with qemu's drive argument last: what the
# driver finds a VM by.
FAKE_VM = """
import http.server, json, sys
port, image_dir = int(sys.argv[1]), sys.argv[2]
answer = json.load(open(image_dir + "/answer.json"))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            status = answer["health"]
            body = ("ok " if status == 200 else "broken ") + answer["version"]
        else:
            status, body = 200, '<p>version: <b id="version">' + answer["version"] + "</b></p>"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture(scope="session")
def qemu(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A program named as QEMU is (it is this Python)."""
    link = tmp_path_factory.mktemp("bin") / "qemu-system-x86_64"
    link.symlink_to(sys.executable)
    return str(link)


def drive(overlay: Path | str) -> str:
    return f"file={overlay},if=virtio,format=qcow2"


@pytest.fixture
def fake_qemu(monkeypatch: pytest.MonkeyPatch, qemu: str) -> None:
    def argv(name: str, overlay: Path, image_dir: Path, spec: VmSpec, port: int, tags: dict[str, str]) -> list[str]:
        return [qemu, "-c", FAKE_VM, str(port), str(image_dir), drive(overlay)]

    def start(argv: list[str], overlay: Path, image_dir: Path, *, what: str) -> runner.Background:
        overlay.parent.mkdir(parents=True, exist_ok=True)
        return runner.start(argv, what=what, log_path=overlay.parent / "qemu.log")

    monkeypatch.setattr(local_engine, "vm_argv", argv)
    monkeypatch.setattr(local_engine, "start_vm", start)


def image(root: Path, version: str, *, health: int = 200) -> Release:
    directory = root / "images" / "local" / "web" / version
    directory.mkdir(parents=True)
    for name in ("disk.qcow2", "vmlinuz", "initrd.img"):
        (directory / name).write_text("stand-in")
    (directory / "answer.json").write_text(json.dumps({"version": version, "health": health}))
    return Release(f"web@{version}", str(directory), None, f"sha256:{version}")


def group(kind: str = "rolling", size: int = 2, **strategy_fields: Any) -> Group:
    return Group(
        image="web",
        target="local",
        local=LocalGroup(size=size, port=free_port(), memory=256, cpus=1),
        strategy=Strategy(type=kind, bake_seconds=1, **strategy_fields),  # type: ignore[arg-type]
        health=Health(grace_seconds=0, timeout_seconds=5, healthy_threshold=1, interval_seconds=1),
    )


TARGET = LocalTarget(kind="local", accelerator="tcg")


@dataclass
class World:
    ws: Workspace
    spec: Group
    reporter: Recording = field(default_factory=Recording)
    count: int = 0

    def driver(self) -> LocalDriver:
        """A driver as a new bakery process has it (it knows no child of its own)."""
        return LocalDriver(self.ws, self.reporter)

    def rollout(self, to: Release, previous: Release | None, kind: str = "rollout") -> Rollout:
        self.count += 1
        return Rollout(
            id=f"r-{self.count:012x}",
            kind=kind,  # type: ignore[arg-type]
            group="web-local",
            spec=self.spec,
            target="local",
            target_spec=TARGET,
            to=to,
            to_record=None,
            previous=previous,
            plan=strategy.plan(self.spec.strategy, self.spec.local.size if self.spec.local else 0),
            who="tester@host",
            started=steps.now(),
        )

    def journal(self, rollout: Rollout) -> steps.Journal:
        path = self.ws.root / "rollouts" / "web-local.json"
        found = steps.Journal.load(path)
        if found is not None and found.data["rollout"] == rollout.id:
            return found
        return steps.Journal.create(path, rollout=rollout.id)

    def forward(self, rollout: Rollout, driver: LocalDriver | None = None) -> None:
        driver = driver or self.driver()
        steps.execute(driver.rollout_steps(rollout), self.journal(rollout), self.reporter)

    def backward(self, rollout: Rollout, driver: LocalDriver | None = None) -> None:
        driver = driver or self.driver()
        steps.execute(driver.rollback_steps(rollout), self.journal(rollout), self.reporter, phase="rollback")

    def up(self, release: Release) -> None:
        self.forward(self.rollout(release, None))

    @property
    def files(self) -> GroupFiles:
        return GroupFiles(self.ws.root / "groups" / "web-local", "web-local")

    def served(self, count: int = 6) -> Counter[str]:
        assert self.spec.local is not None
        return Counter(page_version(self.spec.local.port) for _ in range(count))

    def processes(self) -> list[int]:
        return find(lambda argv: vm_under(self.files.vms)(argv) or haproxy_of(self.files.config)(argv))


@pytest.fixture
def world(tmp_path: Path, fake_qemu: None) -> Iterator[World]:
    made = World(Workspace(tmp_path / "home"), group())
    yield made
    made.driver().down("web-local", made.spec, TARGET)
    assert made.processes() == []


SLEEPER = "import time; print('started', flush=True); time.sleep(600)"


def started(process: runner.Background) -> None:
    """Wait until the child runs its own program: just after its start, /proc shows no command
    line yet (the new program's arguments are not mapped until its exec is done)."""
    while process.alive() and b"started" not in Path(f"/proc/{process.pid}/cmdline").read_bytes():
        time.sleep(0.01)


def test_a_group_that_is_not_running_is_brought_up(world: World, tmp_path: Path) -> None:
    assert world.driver().read("web-local", world.spec, TARGET).running is False
    one = image(tmp_path, "1.0.0")
    world.up(one)
    state = world.driver().read("web-local", world.spec, TARGET)
    assert state.running is True
    assert state.intended == one
    assert state.counts() == {"web@1.0.0": 2}
    assert {(i.state, i.health) for i in state.instances} == {("serving", "healthy")}
    assert world.served() == Counter({"1.0.0": 6})
    saved = world.files.load()
    assert [m.tags["bakery:rollout"] for m in saved.members] == ["r-000000000001"] * 2
    assert len(world.processes()) == 3  # haproxy and two VMs


def test_rolling_replaces_every_vm_without_a_failed_request(world: World, tmp_path: Path) -> None:
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)
    before = {m.id for m in world.files.load().members}
    assert world.spec.local is not None
    with Traffic(world.spec.local.port) as traffic:
        world.forward(world.rollout(two, one))
    assert traffic.failed == []
    assert set(traffic.served) == {"1.0.0", "1.0.1"}
    assert world.served() == Counter({"1.0.1": 6})
    saved = world.files.load()
    assert {m.id for m in saved.members}.isdisjoint(before)
    assert saved.release == two
    assert len(world.processes()) == 3  # the old VMs were stopped


def test_a_failed_gate_names_the_instance_and_the_rollback_restores_the_previous_release(
    world: World, tmp_path: Path
) -> None:
    one, bad = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.2", health=500)
    world.up(one)
    rollout = world.rollout(bad, one)
    assert world.spec.local is not None
    with Traffic(world.spec.local.port) as traffic:
        with pytest.raises(GateFailed) as failed:
            world.forward(rollout)
        world.backward(rollout)
    assert failed.value.instance == "web-local-3 (web@1.0.2)"
    assert "answered 500: broken 1.0.2" in failed.value.message
    assert traffic.failed == []
    assert set(traffic.served) == {"1.0.0"}
    assert world.driver().read("web-local", world.spec, TARGET).counts() == {"web@1.0.0": 2}
    assert world.files.load().release == one
    assert len(world.processes()) == 3


class Killed(BaseException):
    """What SIGKILL leaves: no handler ran, the journal still says running."""


@contextlib.contextmanager
def gate_of_wave_raises(wave: int, exc: BaseException) -> Iterator[None]:
    """While the block runs, the gate of the VMs of `wave` (0: the first) raises `exc`, as a
    signal arriving then would."""
    real_gate = local_engine.Engine.gate

    def gate(self: local_engine.Engine, members: Any) -> None:
        if any(m.wave == wave for m in members):
            raise exc
        real_gate(self, members)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_engine.Engine, "gate", gate)
        yield


def test_a_rollout_killed_half_way_resumes_with_what_it_booted(world: World, tmp_path: Path) -> None:
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)
    rollout = world.rollout(two, one)

    with gate_of_wave_raises(1, Killed()), pytest.raises(Killed):
        world.forward(rollout)
    assert world.journal(rollout).status == steps.RUNNING
    half = world.files.load()
    assert sorted((m.image, m.status) for m in half.members) == [
        ("web@1.0.0", "serving"),
        ("web@1.0.1", "booting"),
        ("web@1.0.1", "serving"),
    ]
    world.forward(rollout)  # a new process: the same rollout again
    saved = world.files.load()
    assert sorted(m.id for m in saved.members) == sorted(m.id for m in half.members if m.image == "web@1.0.1")
    assert world.served() == Counter({"1.0.1": 6})
    assert len(world.processes()) == 3


def test_the_rollback_of_a_rollout_replacing_an_abandoned_rollback_removes_that_rollback_s_vms_too(
    world: World, tmp_path: Path
) -> None:
    one, two, bad = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1"), image(tmp_path, "1.0.2", health=500)
    world.up(one)
    world.forward(world.rollout(two, one))
    stuck = world.rollout(one, two, kind="rollback")  # its image revoked meanwhile: abandoned (rollout.replace)
    with gate_of_wave_raises(1, Killed()), pytest.raises(Killed):
        world.forward(stuck)
    half = world.files.load()
    assert sorted((m.image, m.status) for m in half.members) == [
        ("web@1.0.0", "booting"),
        ("web@1.0.0", "serving"),
        ("web@1.0.1", "serving"),
    ]
    replacing = dataclasses.replace(world.rollout(bad, two), options={REPLACES: stuck.id})
    with pytest.raises(GateFailed):
        world.forward(replacing)
    world.backward(replacing)
    assert world.driver().read("web-local", world.spec, TARGET).counts() == {"web@1.0.1": 2}
    assert world.served() == Counter({"1.0.1": 6})
    assert world.files.load().release == two
    assert len(world.processes()) == 3


def test_blue_green_keeps_the_old_vms_out_of_rotation_for_an_immediate_rollback(tmp_path: Path, world: World) -> None:
    world.spec = group("blue-green", size=1, retention_seconds=600)
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)
    (old,) = world.files.load().members
    assert world.spec.local is not None
    with Traffic(world.spec.local.port) as traffic:
        world.forward(world.rollout(two, one))
        state = world.driver().read("web-local", world.spec, TARGET)
        assert state.counts() == {"web@1.0.1": 1}  # the kept VM is not one of the group's instances
        kept = world.files.load().member(old.id)
        assert kept is not None and kept.status == RETAINED and runs(kept.pid, vm_of(kept.overlay))
        world.forward(world.rollout(one, two, kind="rollback"))  # `bakery rollback` after completion
    assert traffic.failed == []
    (back,) = world.files.load().members[:1]
    assert world.served() == Counter({"1.0.0": 6})
    assert back.id == old.id  # put back, not booted again
    assert [m.status for m in world.files.load().members] == [SERVING, RETAINED]


def test_down_stops_everything_and_says_what(world: World, tmp_path: Path, qemu: str) -> None:
    world.up(image(tmp_path, "1.0.0"))
    lost = world.files.vms / "lost" / "disk.qcow2"
    stray = runner.start([qemu, "-c", SLEEPER, drive(lost)], what="stray", log_path=tmp_path / "stray.log")
    # A program that merely names a file of the group is not the group's.
    editor = runner.start([sys.executable, "-c", SLEEPER, str(lost)], what="editor", log_path=tmp_path / "e.log")
    started(stray)
    started(editor)
    stopped = world.driver().down("web-local", world.spec, TARGET)
    assert editor.alive()
    editor.stop()
    assert stopped[0].startswith("haproxy on 127.0.0.1:")
    assert [s.split(" (pid")[0] for s in stopped[1:3]] == ["web-local-1 (web@1.0.0)", "web-local-2 (web@1.0.0)"]
    assert stopped[3] == f"a leftover process of the group (pid {stray.pid})"
    assert world.processes() == []
    assert not list(world.files.vms.iterdir())
    state = world.driver().read("web-local", world.spec, TARGET)
    assert (state.running, state.instances, state.intended) == (False, (), None)
    assert world.driver().down("web-local", world.spec, TARGET) == []


def test_an_interrupt_stops_the_half_booted_vm_and_leaves_the_group_serving(world: World, tmp_path: Path) -> None:
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)
    rollout = world.rollout(two, one)
    with gate_of_wave_raises(0, Interrupted("interrupted by signal SIGINT")), pytest.raises(Interrupted):
        world.forward(rollout)
    assert world.journal(rollout).status == steps.INTERRUPTED
    saved = world.files.load()
    assert [(m.image, m.status) for m in saved.members] == [("web@1.0.0", SERVING)] * 2
    assert world.served() == Counter({"1.0.0": 6})
    assert len(world.processes()) == 3  # the VM booting when the signal came was stopped

    world.forward(rollout)  # `bakery rollout` again resumes it
    assert world.served() == Counter({"1.0.1": 6})


def test_a_kept_vm_past_its_retention_is_stopped_by_the_next_rollout(world: World, tmp_path: Path) -> None:
    world.spec = group("blue-green", size=1, retention_seconds=600)
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)
    (old,) = world.files.load().members
    world.forward(world.rollout(two, one))
    world.files.update(lambda s: s.put(dataclasses.replace(s.member(old.id), retain_until="2000-01-01T00:00:00+00:00")))
    world.forward(world.rollout(one, two))
    saved = world.files.load()
    assert sorted((m.image, m.status) for m in saved.members) == [("web@1.0.0", SERVING), ("web@1.0.1", RETAINED)]
    assert old.id not in {m.id for m in saved.members}  # booted afresh: the kept one was stopped first
    assert not runs(old.pid, vm_of(old.overlay))


def test_a_changed_front_port_moves_haproxy(world: World, tmp_path: Path) -> None:
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)
    assert world.spec.local is not None
    before = world.spec.local.port
    world.spec = world.spec.model_copy(update={"local": world.spec.local.model_copy(update={"port": free_port()})})
    world.forward(world.rollout(two, one))
    assert world.served() == Counter({"1.0.1": 6})
    with pytest.raises(OSError):
        page_version(before)
    assert len(world.processes()) == 3


def test_a_haproxy_whose_pid_was_lost_is_stopped_before_another_starts(world: World, tmp_path: Path) -> None:
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)
    orphan = world.files.load().haproxy_pid
    world.files.update(lambda s: dataclasses.replace(s, haproxy_pid=None))  # killed before it saved the pid
    world.forward(world.rollout(two, one))
    saved = world.files.load()
    assert find(haproxy_of(world.files.config)) == [saved.haproxy_pid]
    assert saved.haproxy_pid != orphan
    assert world.served() == Counter({"1.0.1": 6})


def test_a_failed_gate_stops_the_new_vm_and_the_old_ones_keep_serving(world: World, tmp_path: Path) -> None:
    one, bad = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.2", health=500)
    world.up(one)
    before = sorted(m.id for m in world.files.load().members)
    with pytest.raises(GateFailed):
        world.forward(world.rollout(bad, one))  # no rollback follows
    assert sorted(m.id for m in world.files.load().members) == before
    assert world.served() == Counter({"1.0.0": 6})
    assert len(world.processes()) == 3


def test_a_canary_is_held_next_to_the_old_vms_and_a_failed_hold_drains_only_it(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.spec = group("canary", size=2, canary_size=1)
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)
    old = sorted(m.id for m in world.files.load().members)
    during: list[Counter[tuple[str | None, str]]] = []

    def hold(*args: Any, **kwargs: Any) -> None:
        during.append(Counter((m.image, m.status) for m in world.files.load().members))
        raise GateFailed("web-local-3 (web@1.0.1) went unhealthy while held", instance="web-local-3", answer="500")

    monkeypatch.setattr(health, "hold", hold)
    rollout = world.rollout(two, one)
    with pytest.raises(GateFailed):
        world.forward(rollout)
    assert during == [Counter({("web@1.0.0", SERVING): 2, ("web@1.0.1", SERVING): 1})]
    world.backward(rollout)
    assert sorted(m.id for m in world.files.load().members) == old
    assert world.served() == Counter({"1.0.0": 6})
    assert len(world.processes()) == 3


def test_a_vm_of_an_earlier_run_that_entered_haproxy_leaves_it_before_it_stops(world: World, tmp_path: Path) -> None:
    one, two = image(tmp_path, "1.0.0"), image(tmp_path, "1.0.1")
    world.up(one)

    def serve(self: local_engine.Engine, members: Any) -> None:
        self.ensure_haproxy().add(haproxy.Server(members[0].id, members[0].port), self.group.health)
        raise Killed()  # killed before state.json said it serves

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
        patch.setattr(local_engine.Engine, "serve", serve)
        world.forward(world.rollout(two, one))
    world.forward(world.rollout(two, one))  # another rollout: the READY VM of the first is stopped
    saved = world.files.load()
    assert saved.stats_port is not None
    in_haproxy = set(haproxy.Runtime(saved.stats_port, "web-local").servers())
    assert in_haproxy == {m.id for m in saved.members}
    assert world.served() == Counter({"1.0.1": 6})


def test_an_interrupt_while_its_cleanup_drains_still_stops_every_unserved_vm(world: World, tmp_path: Path) -> None:
    def remove(self: haproxy.Runtime, name: str, *, interruptible: bool = True) -> None:
        raise Interrupted(f"draining {name}: interrupted by signal SIGINT")

    rollout = world.rollout(image(tmp_path, "1.0.0"), None)
    with gate_of_wave_raises(-1, Interrupted("interrupted by signal SIGINT")), pytest.MonkeyPatch.context() as patch:
        patch.setattr(haproxy.Runtime, "remove", remove)
        with pytest.raises(Interrupted):
            world.forward(rollout)
    assert world.files.load().members == ()
    assert find(haproxy_of(world.files.config)) == world.processes()  # HAProxy alone: no VM left


def test_a_child_that_ended_is_not_signalled_again(world: World, tmp_path: Path) -> None:
    world.up(image(tmp_path, "1.0.0"))
    driver = world.driver()
    engine = driver._engine("web-local", world.spec, TARGET)
    (first, _second) = world.files.load().members
    booted = engine.boot(image(tmp_path, "1.0.1"), rollout="r-x", wave=0, tags={})
    child = engine._started[booted.id]
    child.child.kill()
    child.child.wait()  # reaped: its pid may be given to another process now
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "killpg", lambda *_: pytest.fail("a reaped child was signalled"))
        assert engine.stop(booted) is False
    assert runs(first.pid, vm_of(first.overlay))
