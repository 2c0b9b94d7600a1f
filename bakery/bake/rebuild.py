"""`bakery build --stale`: bake exactly what the plan says is stale or new, parents first.

Independent bakes run in parallel (--jobs). A failure does not stop unrelated bakes; it marks
the failed image's descendants as not built, with the reason, and the run's exit code non-zero.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

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
) -> RebuildResult:
    todo = {item.key: item for item in plan.stale}
    outcomes: dict[str, Outcome] = {
        i.key: Outcome(i.image, i.target, SKIPPED, f"up to date ({i.current})") for i in plan.items if not i.needs_bake
    }
    if not todo:
        return RebuildResult(list(outcomes.values()))

    def bake(item: PlanItem) -> BuildResult:
        baker = Baker(project, workspace, Prefixed(reporter, item.key), clients=clients)
        return baker.bake(item.image, item.target)

    running: dict[Future[BuildResult], PlanItem] = {}
    # Bakes run in worker threads: a signal stops their tools and is checked between phases.
    with runner.signal_guard(raise_in_main=False), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while todo or running:
            for key, item in list(todo.items()):
                blockers = [d for d in item.depends_on if d in todo or any(r.key == d for r in running.values())]
                failed = [d for d in item.depends_on if outcomes.get(d) and outcomes[d].status in (FAILED, NOT_BUILT)]
                if failed:
                    outcomes[key] = Outcome(item.image, item.target, NOT_BUILT, f"not built: {failed[0]} failed")
                    del todo[key]
                elif not blockers and len(running) < max(1, jobs) and not runner.interrupted():
                    running[pool.submit(bake, item)] = item
                    del todo[key]
            if runner.interrupted():
                for key, item in todo.items():
                    outcomes[key] = Outcome(item.image, item.target, NOT_BUILT, "not built: interrupted")
                todo.clear()
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                item = running.pop(future)
                try:
                    result = future.result()
                except BakeryError as exc:
                    outcomes[item.key] = Outcome(item.image, item.target, FAILED, exc.message)
                    continue
                status = SKIPPED if result.skipped else BUILT
                outcomes[item.key] = Outcome(
                    item.image,
                    item.target,
                    status,
                    f"{result.record.ref} ({'; '.join(item.reasons)})",
                    result.record.version,
                )
        stopped = runner.interrupt_exit_code()
    order = [i.key for i in plan.items]
    return RebuildResult(sorted(outcomes.values(), key=lambda o: order.index(f"{o.image}@{o.target}")), stopped)
