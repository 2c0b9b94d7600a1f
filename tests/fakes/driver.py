"""A group driver kept in memory: it teaches the GroupDriver contract to the rollout service's tests.

The group is a list of instances, each on an image ref. Rollout steps replace `wave.count`
instances per wave and run the gate on them; an image listed in `bad` fails its gate; `interrupt_at`
(a wave, or "restore": the rollback step) raises Interrupted inside that step once, as Ctrl-C would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bakery.config.models import Group
from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError, GateFailed, Interrupted, RolloutRefused, UsageError
from bakery.groups.base import ActiveRollout, GroupState, HistoryEntry, Instance, Release, Rollout
from bakery.steps import Journal, Step


@dataclass
class FakeGroup:
    intended: Release | None = None
    instances: list[Instance] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    size: int = 2


class FakeDriver:
    kind = "local"

    def __init__(self) -> None:
        self.groups: dict[str, FakeGroup] = {}
        self.bad: set[str] = set()
        self.interrupt_at: str | None = None
        self.fail_at: dict[str, BakeryError] = {}  # step name (template, wave-N) -> the error it raises once
        self.calls: list[str] = []
        self.serial = 0
        self.active: dict[str, ActiveRollout] = {}  # group -> a move its engine carries on with

    def group(self, name: str) -> FakeGroup:
        return self.groups.setdefault(name, FakeGroup())

    def read(self, name: str, group: Group, target_spec: Any) -> GroupState:
        g = self.group(name)
        active = self.active.get(name)
        return GroupState(name, self.kind, bool(g.instances), g.intended, tuple(g.instances), active, g.size)

    def refuse_takeover(self, name: str, group: Group, target_spec: Any, state: GroupState, stuck: str) -> None:
        """As a cloud whose engine goes on without bakery: refused while `stuck` still moves the group."""
        self.calls.append(f"refuse_takeover {stuck}")
        if state.active is not None:
            raise RolloutRefused(
                f"group {name}: rollback {stuck} still moves it ({state.active.describe()})",
                hint="stop it by hand: fake-cloud cancel; then run this command again",
            )

    def release_of(self, record: ImageRecord, target_spec: Any) -> Release:
        return Release(record.ref, f"/catalog/{record.name}/{record.version}", None, record.inputs_digest)

    def _launch(self, g: FakeGroup, release: Release, count: int) -> list[Instance]:
        made = []
        for _ in range(count):
            self.serial += 1
            made.append(Instance(f"vm-{self.serial}", release.image, release.image_id, "serving", "healthy"))
        return made

    def _move(self, name: str, release: Release, total: int, journal: Journal) -> None:
        g = self.group(name)
        on_new = [i for i in g.instances if i.image == release.image]
        wanted = total - len(on_new)
        if wanted <= 0:
            return
        failure = self.fail_at.pop(f"wave-{total}", None)
        if failure is not None:
            raise failure
        if self.interrupt_at == f"wave-{total}":
            self.interrupt_at = None
            raise Interrupted("interrupted by signal SIGINT", exit_code=130)
        new = self._launch(g, release, wanted)
        if release.image in self.bad:
            raise GateFailed(
                f"{new[0].id} answered GET /healthz -> 500 Internal Server Error", instance=new[0].id, answer="500"
            )
        old = [i for i in g.instances if i.image != release.image][:wanted]
        g.instances = [i for i in g.instances if i not in old] + new
        journal.put("moved", total)

    def rollout_steps(self, rollout: Rollout) -> Sequence[Step]:
        self.calls.append(f"rollout_steps {rollout.id}")
        name, to = rollout.group, rollout.to

        def template(journal: Journal) -> None:
            failure = self.fail_at.pop("template", None)
            if failure is not None:
                journal.put("looked-at", name)  # a fact saved before the check that refuses
                raise failure
            self.group(name).intended = to

        waves = [
            Step(f"wave-{w.index + 1}", lambda j, total=w.total: self._move(name, to, total, j))
            for w in rollout.plan.waves
        ]
        return [Step("template", template), *waves]

    def rollback_steps(self, rollout: Rollout) -> Sequence[Step]:
        self.calls.append(f"rollback_steps {rollout.id}")
        name, back = rollout.group, rollout.previous

        def restore(journal: Journal) -> None:
            if self.interrupt_at == "restore":
                self.interrupt_at = None
                raise Interrupted("interrupted by signal SIGINT", exit_code=130)
            g = self.group(name)
            g.intended = back
            if back is not None:
                g.instances = self._launch(g, back, g.size)

        return [Step("restore", restore)]

    def record(self, name: str, group: Group, target_spec: Any, entry: HistoryEntry) -> None:
        g = self.group(name)
        g.history = [e for e in g.history if e.id != entry.id] + [entry]

    def history(self, name: str, group: Group, target_spec: Any) -> list[HistoryEntry]:
        return list(self.group(name).history)

    def prune(self, name: str, group: Group, target_spec: Any, keep: int) -> list[str]:
        return []

    def down(self, name: str, group: Group, target_spec: Any) -> list[str]:
        raise UsageError("the fake group keeps running")

    def seed(self, name: str, release: Release, size: int = 2) -> None:
        g = self.group(name)
        g.size, g.intended = size, release
        g.instances = self._launch(g, release, size)

    def runs(self, name: str) -> dict[str, int]:
        g = self.group(name)
        return GroupState(name, self.kind, True, g.intended, tuple(g.instances)).counts()

    def mark_foreign(self, name: str, count: int) -> None:
        g = self.group(name)
        for i in range(count):
            g.instances[i] = replace(g.instances[i], image=None, image_id="ami-0handmade")
