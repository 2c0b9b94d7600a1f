"""The steps that move a local group, on the step engine (bakery.steps).

Forward: prepare (HAProxy up, leftovers of earlier runs stopped), bring-up (only when nothing
served: `size` VMs at once), one step per wave of the plan (boot `count` new VMs, gate them, add
them to HAProxy next to the old ones, hold them green, then drain and stop as many old ones),
finish. A failed gate stops the VMs that failed it; the old ones keep serving. Blue-green is
the plan with one wave of `size` whose old VMs are kept out of rotation instead of stopped.

Backward: the VMs of the rollout that do not serve stop, `size` VMs of the previous release
serve again (kept ones put back, else booted and gated), then the rollout's own VMs are drained
and stopped.

Every step reads state.json (and the journal's values) before acting, so a rerun after an
interrupt, or after the process was killed, carries on where the first attempt got.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from bakery.errors import GateFailed
from bakery.groups import health
from bakery.groups.base import REPLACES, Release, Rollout, instance_tags
from bakery.groups.local.engine import Engine, is_past
from bakery.groups.local.state import BOOTING, DRAINING, READY, RETAINED, SERVING, Member
from bakery.groups.strategy import Wave
from bakery.steps import Journal, Step

UP, MOVE = "up", "move"  # what the rollout does, decided once by its first step
BRING_UP_WAVE = -1


class LocalMoves:
    """The forward and backward steps of one rollout of one local group."""

    def __init__(self, engine: Engine, rollout: Rollout) -> None:
        self.engine = engine
        self.rollout = rollout
        self.size = rollout.plan.size
        self.restoring = f"{rollout.id}:rollback"  # the members a rollback boots belong to this

    # --- declared steps ---------------------------------------------------------------------

    def forward(self) -> list[Step]:
        to, port = self.rollout.to.describe(), self.engine.local.port
        stop = self._stop_unserved
        return [
            Step("prepare", self._prepare, f"HAProxy on 127.0.0.1:{port}; leftovers of earlier runs stopped"),
            Step("bring-up", self._bring_up, f"if nothing serves: {self.size} VM(s) of {to} at once", stop),
            *(
                Step(f"wave-{w.index + 1}", functools.partial(self._wave, w), self._describe(w), stop)
                for w in self.rollout.plan.waves
            ),
            Step("finish", self._finish, f"old VMs out of rotation; the group runs {to}"),
        ]

    def backward(self) -> list[Step]:
        previous = self.rollout.previous.describe() if self.rollout.previous else "nothing"
        stop = self._stop_unserved
        return [
            Step("stop-unserved", stop, f"VMs of {self.rollout.id} that do not serve are stopped"),
            Step("restore", self._restore, f"{self.size} VM(s) of {previous} serve", stop),
            Step("remove-new", self._remove_new, f"VMs of {self.rollout.id} drained and stopped"),
            Step("restored", self._finish_back, f"the group runs {previous}"),
        ]

    def _describe(self, w: Wave) -> str:
        hold = f", held {w.hold_seconds}s" if w.hold_seconds else ""
        return f"{w.count} new VM(s), as many old ones out ({w.total}/{self.size}){hold}"

    # --- forward ----------------------------------------------------------------------------

    def _prepare(self, journal: Journal) -> None:
        engine = self.engine
        engine.forget_dead()
        for member in engine.load().members:
            if member.rollout in (self.rollout.id, self.restoring):
                continue
            if member.status in (BOOTING, READY):  # an earlier run's VM that never served
                engine.discard(member)  # READY may be in HAProxy already: out of it first
            elif member.status == RETAINED and (
                is_past(member.retain_until) or member.image_dir != self.rollout.to.image_id
            ):
                engine.stop(member)  # its rollback time is over, or it cannot serve this rollout
        if journal.get("mode") is None:
            serving = [m for m in engine.load().with_status(SERVING, DRAINING) if m.rollout != self.rollout.id]
            journal.put("mode", MOVE if serving else UP)
        engine.ensure_haproxy()

    def _bring_up(self, journal: Journal) -> None:
        if journal.get("mode") == UP:
            self._fill_new(BRING_UP_WAVE, self.size)

    def _wave(self, wave: Wave, journal: Journal) -> None:
        """Boot the wave's new VMs and put them in rotation next to the old ones; hold them
        green (the old ones still serve, so a failed hold drains the new ones only); then
        retire as many old ones. The group has at most size + surge VMs meanwhile."""
        if journal.get("mode") != MOVE:
            return
        self._fill_new(wave.index, wave.count)
        held = f"held-{wave.index + 1}"
        if wave.hold_seconds and not journal.get(held):
            serving = [m for m in self.engine.load().of(self.rollout.id) if m.status == SERVING]
            self.engine.reporter.phase("hold", f"{', '.join(m.id for m in serving)} for {wave.hold_seconds}s")
            health.hold(self.engine.targets(serving), self.rollout.spec.health, wave.hold_seconds)
            journal.put(held, True)
        key = f"retire-{wave.index + 1}"
        chosen = journal.get(key)
        if chosen is None:
            old = sorted(self._old(), key=lambda m: (m.status != DRAINING, m.id))
            chosen = [m.id for m in old[: wave.count]]
            journal.put(key, chosen)
        for member_id in chosen:
            member = self.engine.load().member(member_id)
            if member is not None and member.status in (SERVING, DRAINING):
                self.engine.retire(member, retain_seconds=self._retention())

    def _fill_new(self, wave: int, count: int) -> None:
        """`_fill` with this rollout's release; a failed gate stops the VMs that failed it (the
        old ones keep serving), whether or not a rollback follows."""
        try:
            self._fill(self.rollout.id, wave, count, self.rollout.to, instance_tags(self.rollout))
        except GateFailed:
            self.engine.stop_unserved(self.rollout.id)
            raise

    def _finish(self, journal: Journal) -> None:
        for member in self._old():
            self.engine.retire(member, retain_seconds=self._retention())
        self._record(self.rollout.to)

    def _old(self) -> list[Member]:
        """Members in rotation that this rollout is replacing."""
        return [m for m in self.engine.load().with_status(SERVING, DRAINING) if m.rollout != self.rollout.id]

    def _retention(self) -> int:
        bluegreen = self.rollout.plan.strategy == "blue-green"
        return self.rollout.spec.strategy.retention_seconds if bluegreen else 0

    # --- backward ---------------------------------------------------------------------------

    def _restore(self, journal: Journal) -> None:
        previous = self.rollout.previous
        if previous is None:
            return  # the group ran nothing before: the rollback takes it down
        engine = self.engine
        engine.forget_dead()
        for member in engine.load().members:
            if (
                member.rollout != self.rollout.id
                and member.status == DRAINING
                and member.image_dir == previous.image_id
            ):
                engine.serve([member])  # taken half out by the rollout: back in at once
        kept = [
            m
            for m in engine.load().with_status(SERVING)
            if m.rollout not in (self.rollout.id, self.restoring) and m.image_dir == previous.image_id
        ]
        tags = instance_tags(dataclasses.replace(self.rollout, to=previous))
        self._fill(self.restoring, BRING_UP_WAVE, self.size - len(kept), previous, tags)

    def _remove_new(self, journal: Journal) -> None:
        """The rollout's VMs out, and those of the rollback it replaced (rollout.replace): the group
        runs only the previous release again."""
        for owner in {self.rollout.id, str(self.rollout.options.get(REPLACES) or self.rollout.id)}:
            for member in self.engine.load().of(owner):
                self.engine.retire(member)

    def _finish_back(self, journal: Journal) -> None:
        if self.rollout.previous is None:
            for member in self.engine.load().members:
                self.engine.stop(member)
            self.engine.stop_haproxy()
        self._record(self.rollout.previous)

    # --- shared -----------------------------------------------------------------------------

    def _fill(self, owner: str, wave: int, count: int, release: Release, tags: dict[str, str]) -> None:
        """Make `count` members of `owner`'s `wave` serve `release`: kept (retained) VMs of that
        release first, then new VMs; each passes the gate before it enters HAProxy."""
        engine = self.engine
        engine.forget_dead()
        saved = engine.load()
        mine = saved.of(owner, wave=wave)
        spare = [m for m in saved.with_status(RETAINED) if m.image_dir == release.image_id and m.rollout != owner]
        for member in spare[: max(0, count - len(mine))]:
            mine.append(engine.change(member, rollout=owner, wave=wave))
        for _ in range(count - len(mine)):
            mine.append(engine.boot(release, rollout=owner, wave=wave, tags=tags))
        waiting = [m for m in mine if m.status in (BOOTING, RETAINED)]
        engine.gate(waiting)
        ready = [m for m in engine.load().of(owner, wave=wave) if m.status == READY]
        engine.serve(ready)

    def _stop_unserved(self, journal: Journal) -> None:
        self.engine.stop_unserved(self.rollout.id)
        self.engine.stop_unserved(self.restoring)

    def _record(self, release: Release | None) -> None:
        engine = self.engine
        engine.files.update(lambda s: dataclasses.replace(s, release=release))
        if release is not None:
            engine.write_config()


def steps_of(engine: Engine, rollout: Rollout, *, backward: bool) -> list[Step]:
    moves = LocalMoves(engine, rollout)
    chosen: Callable[[], list[Step]] = moves.backward if backward else moves.forward
    return chosen()
