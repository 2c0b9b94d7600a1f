"""What a rollout leaves behind: its result, its saved form in the journal, its entry in the
group's history, its copy in the registry and its event in the audit log."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Literal

from bakery import steps
from bakery.errors import BakeryError
from bakery.groups.base import REPLACES, GroupDriver, HistoryEntry, Release, Rollout
from bakery.groups.strategy import RolloutPlan
from bakery.progress import Reporter
from bakery.trust.context import TrustContext
from bakery.trust.gate import TrustGate


@dataclass(frozen=True)
class RolloutResult:
    group: str
    id: str
    operation: Literal["rollout", "rollback"]
    strategy: str
    from_: Release | None
    to: Release
    result: str  # planned, succeeded, rolled-back, up-to-date
    plan: RolloutPlan
    resumed_at: str | None = None  # the step a resumed rollout started from
    reason: str | None = None
    seconds: float = 0.0


def release_dict(release: Release | None) -> dict[str, Any] | None:
    return dataclasses.asdict(release) if release is not None else None


def release_of(data: dict[str, Any] | None) -> Release | None:
    return Release(**data) if data else None


def shown(release: Release | None) -> str:
    return release.describe() if release is not None else "nothing (the group was empty)"


def saved(rollout: Rollout) -> dict[str, Any]:
    """`rollout` as its journal keeps it (read back by plan.from_saved)."""
    return {
        "id": rollout.id,
        "kind": rollout.kind,
        "to": release_dict(rollout.to),
        "previous": release_dict(rollout.previous),
        "strategy": rollout.plan.strategy,
        "size": rollout.plan.size,
        "who": rollout.who,
        "started": rollout.started,
        "reason": rollout.reason,
        **({REPLACES: rollout.options[REPLACES]} if rollout.options.get(REPLACES) else {}),  # see rollout.replace
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def details(rollout: Rollout, result: str, reason: str | None) -> dict[str, Any]:
    """The document of one outcome: an error's details, the audit event's, the registry's copy."""
    return {
        "rollout": rollout.id,
        "operation": rollout.kind,
        "group": rollout.group,
        "from": release_dict(rollout.previous),
        "to": release_dict(rollout.to),
        "result": result,
        "reason": reason,
    }


def result_of(
    rollout: Rollout, result: str, started: float, *, resumed_at: str | None = None, reason: str | None = None
) -> RolloutResult:
    return RolloutResult(
        group=rollout.group,
        id=rollout.id,
        operation=rollout.kind,
        strategy=rollout.plan.strategy,
        from_=rollout.previous,
        to=rollout.to,
        result=result,
        plan=rollout.plan,
        resumed_at=resumed_at,
        reason=reason,
        seconds=round(time.monotonic() - started, 1),
    )


class History:
    """Writes where a rollout stands: the group's history, the registry's copy, the audit log."""

    def __init__(self, reporter: Reporter, trust: TrustContext, gate: TrustGate) -> None:
        self.reporter = reporter
        self.trust = trust
        self.gate = gate

    def record(self, driver: GroupDriver, rollout: Rollout, result: str, reason: str | None = None) -> None:
        entry = HistoryEntry(
            id=rollout.id,
            kind=rollout.kind,
            started=rollout.started,
            who=rollout.who,
            from_=rollout.previous,
            to=rollout.to,
            strategy=rollout.plan.strategy,
            result=result,
            finished=None if result == steps.RUNNING else steps.now(),
            reason=reason or rollout.reason,
        )
        try:
            driver.record(rollout.group, rollout.spec, rollout.target_spec, entry)
        except BakeryError as exc:  # the group moved (or not) whatever its history says: never hide that
            self.reporter.note(
                f"warning: could not record {rollout.id} ({result}) in the group's history: {exc.message}"
            )
        self.trust.keep(f"rollouts/{rollout.group}/{rollout.id}.json", details(rollout, result, reason))
        # `running` too (written once its first step is done): a rollout under way leaves the group
        # mixed, which ends the time it ran its image healthy (bakery/promote/gates.py: soak). Not
        # where no key is trusted: nothing reads such a log, and an event no key verifies would fail
        # the reads of revocations by the rollout's next steps.
        if result != steps.RUNNING or self.trust.keys:
            self.trust.record(
                rollout.kind,
                f"group {rollout.group}",
                result,
                policy=self.trust.policy(required=self.gate.required(rollout.spec)),
                details=details(rollout, result, reason),
            )

    def prune(self, driver: GroupDriver, rollout: Rollout) -> None:
        """Remove the templates older than the group's `keep` (a failure is only a warning)."""
        try:
            removed = driver.prune(rollout.group, rollout.spec, rollout.target_spec, rollout.spec.keep)
        except BakeryError as exc:  # the rollout succeeded; an old template left behind is no failure
            self.reporter.note(f"warning: could not prune old templates: {exc.message}")
            return
        for line in removed:
            self.reporter.note(f"pruned {line} (older than the last {rollout.spec.keep} rollouts)")
