"""Watching a managed instance group move, with bakery's gate on its new instances.

A look costs two calls (the group, then listManagedInstances); looks come every
`poll_seconds()` (12 s: two calls a look, 10 a minute; $BAKERY_POLL_SECONDS for tests), each one
once it fits in the rollout's call budget (bakery.groups.budget: at most 12 calls in any minute,
the live view's reads included). The gate is the cloud's own signal: an instance is ready when it
is RUNNING with no current action and, when the group names a `health_check`, its instanceHealth
was HEALTHY. bakery cannot reach cloud instances itself, so the group's `health` settings give the
time limits: an instance of the new template must be ready within grace_seconds + timeout_seconds
of bakery first seeing it, and the group must get one instance nearer its goal within that time too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakery import runner
from bakery.config.models import Group
from bakery.config.targets.gcp import GcpGroup
from bakery.errors import BakeryError, GateFailed, ProviderError
from bakery.groups.budget import CallBudget, poll_override
from bakery.groups.gcp.api import GroupApi
from bakery.groups.gcp.requests import name_of, resource_path
from bakery.progress import GroupView, Reporter

POLL_SECONDS = 12.0
LOOK_CALLS = 2  # the MIG, and listManagedInstances
_UNHEALTHY = ("UNHEALTHY", "TIMEOUT")


def poll_seconds() -> float:
    """Seconds between two looks at a moving group: $BAKERY_POLL_SECONDS, else POLL_SECONDS."""
    return poll_override() or POLL_SECONDS


@dataclass(frozen=True)
class Goal:
    """Where the watched group must get: `count` instances on `template` (None: all of them)."""

    template: str
    count: int | None = None
    gate: bool = True  # a failure is a GateFailed (a forward move) or a ProviderError (a rollback)


@dataclass(frozen=True)
class Look:
    """The group and its instances at one moment."""

    mig: dict[str, Any]
    instances: list[dict[str, Any]]

    @property
    def stable(self) -> bool:
        return bool(self.mig.get("status", {}).get("is_stable"))

    @property
    def reached(self) -> bool:
        return bool(self.mig.get("status", {}).get("version_target", {}).get("is_reached"))

    def on(self, template: str) -> list[dict[str, Any]]:
        path = resource_path(template)
        return [i for i in self.instances if resource_path(i.get("version", {}).get("instance_template", "")) == path]


def health_of(instance: dict[str, Any]) -> str | None:
    """The instance's detailedHealthState, None when no health check reports on it."""
    states = [h.get("detailed_health_state") for h in instance.get("instance_health", [])]
    return next((s for s in states if s in _UNHEALTHY), states[0] if states else None)


def ready(instance: dict[str, Any], *, checked: bool) -> bool:
    running = instance.get("instance_status") == "RUNNING" and instance.get("current_action") == "NONE"
    return running and (not checked or health_of(instance) == "HEALTHY")


def state_of(instance: dict[str, Any]) -> str:
    action = instance.get("current_action", "")
    return str(instance.get("instance_status", "")) if action in ("", "NONE") else str(action)


@dataclass
class Watcher:
    """Looks at one MIG until it reaches a goal, or fails the gate."""

    api: GroupApi
    mig: str
    group: Group
    reporter: Reporter
    view: Callable[[Look], GroupView] | None = None  # the live view's picture of a look
    interval: float = field(default_factory=poll_seconds)
    budget: CallBudget = field(default_factory=CallBudget.for_rollout)  # the rollout's, with its clock
    _seen: dict[str, float] = field(default_factory=dict)
    _said: tuple[Any, ...] = ()
    _shown: GroupView | None = None

    @property
    def checked(self) -> bool:
        gcp = self.group.block(GcpGroup)
        return bool(gcp and gcp.health_check)

    @property
    def limit(self) -> float:
        return float(self.group.health.grace_seconds + self.group.health.timeout_seconds)

    def clock(self) -> float:
        return self.budget.clock.now()

    def pause(self, seconds: float) -> None:
        self.budget.clock.wait(seconds, f"watching {self.api.where.mig(self.mig)}")

    def look(self) -> Look:
        """The MIG and its instances, once the look fits in the call budget."""
        self.budget.take(LOOK_CALLS, f"watching {self.api.where.mig(self.mig)}")
        mig = self.api.mig(self.mig)
        if mig is None:
            raise ProviderError(f"GCP: {self.api.where.mig(self.mig)} does not exist any more")
        look = Look(mig, self.api.managed(self.mig))
        if self.view is not None:
            view = self.view(look)
            if view != self._shown:  # the live view changes, the log gets a line, only when it moved
                self._shown = view
                self.reporter.progress(view)
        return look

    def until(self, goal: Goal) -> Look:
        """Look until the group is stable with `goal.count` (or all) instances on the template,
        all ready. Raises GateFailed (ProviderError when not `goal.gate`) naming the instance that
        is not ready in time, or saying that the group stopped getting nearer."""
        progress, moved = None, self.clock()
        while True:
            runner.check_interrupted(f"watching {self.api.where.mig(self.mig)}")
            look = self.look()
            now = self.clock()
            mine = look.on(goal.template)
            good = [i for i in mine if ready(i, checked=self.checked)]
            self._report(look, goal, len(good))
            want = goal.count if goal.count is not None else int(look.mig.get("target_size", 0))
            everyone = goal.count is not None or len(mine) == len(look.instances)
            if look.stable and look.reached and len(good) == len(mine) >= want and everyone:
                return look
            self._check(mine, now, goal)
            mark = (len(good), len(mine), len(look.instances), look.stable)
            if mark != progress:
                progress, moved = mark, now
            elif now - moved > self.limit:
                raise self._failure(
                    goal,
                    f"{self.api.where.mig(self.mig)} made no progress for {now - moved:.0f}s: "
                    f"{len(good)}/{want} instance(s) ready on {name_of(goal.template)}, "
                    f"stable={look.stable}, versionTarget reached={look.reached}",
                )
            self.pause(self.interval)

    def hold(self, goal: Goal, seconds: float) -> None:
        """Keep looking for `seconds` (from now): every instance on the template stays ready."""
        end = self.clock() + seconds
        while self.clock() < end:
            runner.check_interrupted(f"holding {self.api.where.mig(self.mig)}")
            look = self.look()
            for instance in look.on(goal.template):
                if not ready(instance, checked=self.checked):
                    raise self._failure(
                        goal,
                        f"{self.api.where.mig(self.mig)}: instance {name_of(instance.get('instance', ''))} "
                        f"turned {self._answer(instance)} during the hold",
                        instance,
                    )
            self.pause(min(self.interval, max(0.0, end - self.clock())))

    def _check(self, mine: list[dict[str, Any]], now: float, goal: Goal) -> None:
        for instance in mine:
            url = instance.get("instance", "")
            first = self._seen.setdefault(url, now)
            if ready(instance, checked=self.checked) or now - first <= self.limit:
                continue
            raise self._failure(
                goal,
                f"{self.api.where.mig(self.mig)}: instance {name_of(url)} is {self._answer(instance)} "
                f"{now - first:.0f}s after it appeared (the gate allows {self.limit:.0f}s: "
                f"health.grace_seconds + health.timeout_seconds)",
                instance,
            )

    def _answer(self, instance: dict[str, Any]) -> str:
        health = health_of(instance)
        if self.checked and health is not None and instance.get("instance_status") == "RUNNING":
            gcp = self.group.block(GcpGroup)
            check = name_of(gcp.health_check or "") if gcp else ""
            return f"{health} by health check {check}"
        return f"still {state_of(instance)}"

    def _failure(self, goal: Goal, message: str, instance: dict[str, Any] | None = None) -> BakeryError:
        if not goal.gate:
            return ProviderError(f"GCP: {message}")
        if instance is None:
            return GateFailed(message)
        return GateFailed(message, instance=name_of(instance.get("instance", "")), answer=self._answer(instance))

    def _report(self, look: Look, goal: Goal, good: int) -> None:
        actions: dict[str, int] = {}
        for instance in look.instances:
            state = state_of(instance).lower()
            if state != "running":
                actions[state] = actions.get(state, 0) + 1
        said = (good, tuple(sorted(actions.items())))
        if said == self._said:
            return
        self._said = said
        want = goal.count if goal.count is not None else look.mig.get("target_size", 0)
        busy = ", ".join(f"{n} {state}" for state, n in sorted(actions.items()))
        self.reporter.note(
            f"{self.mig}: {good}/{want} ready on {name_of(goal.template)}" + (f" ({busy})" if busy else "")
        )
