"""`bakery build --stale`: bake exactly what the plan says is stale or new, parents first.

Independent bakes run in parallel (--jobs), in the order graphlib's TopologicalSorter hands them
out. A failure does not stop unrelated bakes; it marks the failed image's descendants as not built,
with the reason, and the run's exit code non-zero.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from graphlib import TopologicalSorter

from bakery import runner
from bakery.bake.plan import Plan, PlanItem
from bakery.bake.service import Baker, BuildResult
from bakery.config.load import Project
from bakery.errors import BakeryError
from bakery.progress import GroupView, Reporter
from bakery.providers.base import ClientFactory
from bakery.workspace import Workspace

BUILT, SKIPPED, FAILED, NOT_BUILT = "built", "up-to-date", "failed", "not-built"


@dataclass(frozen=True)
class Outcome:
    image: str
    target: str
    status: str
    detail: str
    version: str | None = None


@dataclass(frozen=True)
class RebuildResult:
    outcomes: list[Outcome]
    interrupted: int | None = None  # the exit code (128 + signal) when a signal stopped the run

    @property
    def ok(self) -> bool:
        return all(o.status in (BUILT, SKIPPED) for o in self.outcomes)


class Prefixed:
    """A reporter that names the bake each line belongs to (bakes run side by side)."""

    _lock = threading.Lock()

    def __init__(self, inner: Reporter, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def phase(self, name: str, detail: str = "") -> None:
        with self._lock:
            self.inner.phase(name, f"[{self.prefix}] {detail}")

    def line(self, source: str, text: str) -> None:
        with self._lock:
            self.inner.line(source, f"[{self.prefix}] {text}")

    def note(self, text: str) -> None:
        with self._lock:
            self.inner.note(f"[{self.prefix}] {text}")

    def progress(self, view: GroupView) -> None:
        with self._lock:
            self.inner.progress(view)


def rebuild(
    project: Project,
    workspace: Workspace,
    reporter: Reporter,
    plan: Plan,
    *,
    jobs: int = 1,
    clients: ClientFactory | None = None,
    after: Callable[[BuildResult, Reporter], None] | None = None,
) -> RebuildResult:
    """Bake every stale item of `plan`, parents first, at most `jobs` at once, each followed by
    `after(result, reporter)` (the image's tests), whose BakeryError fails that item. A failed bake
    marks its descendants not built (and so theirs); a signal lets running bakes stop and starts no more."""
    todo = {item.key: item for item in plan.stale}
    outcomes: dict[str, Outcome] = {
        i.key: Outcome(i.image, i.target, SKIPPED, f"up to date ({i.current})") for i in plan.items if not i.needs_bake
    }
    if not todo:
        return RebuildResult(list(outcomes.values()))
    order = [i.key for i in plan.items]
    # Only what this run bakes orders it: a parent that is up to date (or not in the plan) is there.
    sorter = TopologicalSorter({key: [d for d in item.depends_on if d in todo] for key, item in todo.items()})
    sorter.prepare()  # the plan has no cycles: the configuration refuses a `from:` cycle
    ready: list[str] = []
    slots = max(1, jobs)

    def bake(item: PlanItem) -> BuildResult:
        prefixed = Prefixed(reporter, item.key)
        result = Baker(project, workspace, prefixed, clients=clients).bake(item.image, item.target)
        if after is not None:
            after(result, prefixed)
        return result

    def failed_parent(item: PlanItem) -> str | None:
        return next((d for d in item.depends_on if d in outcomes and outcomes[d].status in (FAILED, NOT_BUILT)), None)

    def settle(key: str, outcome: Outcome) -> None:
        outcomes[key] = outcome
        sorter.done(key)

    running: dict[Future[BuildResult], PlanItem] = {}
    # Bakes run in worker threads: a signal stops their tools and is checked between phases.
    with runner.signal_guard(raise_in_main=False), ThreadPoolExecutor(max_workers=slots) as pool:
        while sorter.is_active() and not runner.interrupted():
            ready.extend(sorter.get_ready())
            ready.sort(key=order.index)
            for key in list(ready):
                item = todo[key]
                parent = failed_parent(item)
                if parent is not None:  # its descendants learn of it when they are ready in turn
                    ready.remove(key)
                    settle(key, Outcome(item.image, item.target, NOT_BUILT, f"not built: {parent} failed"))
                elif len(running) < slots and not runner.interrupted():
                    ready.remove(key)
                    running[pool.submit(bake, item)] = item
            if not running:
                continue  # what was marked not built may have made more items ready
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                item = running.pop(future)
                settle(item.key, _outcome(item, future))
        for future in list(running):  # interrupted: the running bakes stop on their own
            item = running.pop(future)
            outcomes[item.key] = _outcome(item, future)
        for key, item in todo.items():
            if key not in outcomes:
                outcomes[key] = Outcome(item.image, item.target, NOT_BUILT, "not built: interrupted")
        stopped = runner.interrupt_exit_code()
    return RebuildResult(sorted(outcomes.values(), key=lambda o: order.index(f"{o.image}@{o.target}")), stopped)


def _outcome(item: PlanItem, future: Future[BuildResult]) -> Outcome:
    """The outcome of one finished bake (waits for it)."""
    try:
        result = future.result()
    except BakeryError as exc:
        return Outcome(item.image, item.target, FAILED, exc.message)
    status = SKIPPED if result.skipped else BUILT
    detail = f"{result.record.ref} ({'; '.join(item.reasons)})"
    return Outcome(item.image, item.target, status, detail, result.record.version)
