"""How the GCP group driver's watch reads a MIG's instances (bakery/groups/gcp/watch.py), against a
scripted API and clock."""

from __future__ import annotations

from typing import Any

import pytest

from bakery.config.models import GcpGroup, Group, Health
from bakery.groups.budget import CallBudget, Clock
from bakery.groups.gcp import requests as rq
from bakery.groups.gcp.watch import Goal, Watcher, health_of, ready
from bakery.progress import Recording


def gcp(**settings: Any) -> GcpGroup:
    return GcpGroup(**{"mig": "web-mig", "zone": "europe-west1-b", **settings})


# --- the watch ---------------------------------------------------------------------------------------


def managed(
    name: str, template: str, *, status: str = "RUNNING", action: str = "NONE", health: str | None = "HEALTHY"
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "instance": f"https://x/projects/p/zones/z/instances/{name}",
        "instance_status": status,
        "current_action": action,
        "version": {"instance_template": f"projects/p/global/instanceTemplates/{template}"},
    }
    if health:
        entry["instance_health"] = [{"health_check": "hc", "detailed_health_state": health}]
    return entry


def test_an_instance_is_ready_when_running_idle_and_healthy_where_checked() -> None:
    assert ready(managed("a", "t"), checked=True)
    assert not ready(managed("a", "t", health="UNHEALTHY"), checked=True)
    assert not ready(managed("a", "t", action="VERIFYING"), checked=True)
    assert ready(managed("a", "t", health=None), checked=False)
    assert not ready(managed("a", "t", health=None), checked=True)
    assert (
        health_of({"instance_health": [{"detailed_health_state": "HEALTHY"}, {"detailed_health_state": "TIMEOUT"}]})
        == "TIMEOUT"
    )


class ScriptedApi:
    """Answers the watch's two calls a look from a script of (mig, instances)."""

    def __init__(self, looks: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        self.looks = looks
        self.calls = 0
        self.where = rq.Where("p", zone="z")

    def mig(self, name: str) -> dict[str, Any]:
        self.calls += 1
        return self.looks[0][0]

    def managed(self, name: str) -> list[dict[str, Any]]:
        self.calls += 1
        return self.looks.pop(0)[1] if len(self.looks) > 1 else self.looks[0][1]


def watcher(api: ScriptedApi, clock: list[float], budget: int = 1000) -> Watcher:
    """A watcher looking every simulated second (`clock[0]`, moved on by its waits only)."""
    group = Group(
        image="web", target="gcp", gcp=gcp(health_check="hc"), health=Health(grace_seconds=0, timeout_seconds=5)
    )

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    calls = CallBudget(Clock(now=lambda: clock[0], sleep=sleep), calls=budget)
    return Watcher(api, "web-mig", group, Recording(), interval=1.0, budget=calls)  # type: ignore[arg-type]


def test_the_watch_returns_once_every_instance_runs_the_template_ready_in_two_calls_a_look() -> None:
    moving = {"target_size": 2, "status": {"is_stable": False, "version_target": {"is_reached": False}}}
    done = {"target_size": 2, "status": {"is_stable": True, "version_target": {"is_reached": True}}}
    api = ScriptedApi(
        [
            (moving, [managed("a", "T0"), managed("b", "T1", action="VERIFYING", health=None)]),
            (done, [managed("b", "T1"), managed("c", "T1")]),
        ]
    )
    look = watcher(api, [0.0]).until(Goal("projects/p/global/instanceTemplates/T1"))
    assert [i["instance"].rpartition("/")[2] for i in look.instances] == ["b", "c"]
    assert api.calls == 4


def test_an_instance_unhealthy_past_the_gate_s_time_fails_it_by_name() -> None:
    from bakery.errors import GateFailed

    moving = {"target_size": 1, "status": {"is_stable": False, "version_target": {"is_reached": False}}}
    api = ScriptedApi([(moving, [managed("bad", "T1", action="VERIFYING", health="UNHEALTHY")])])
    with pytest.raises(GateFailed) as failed:
        watcher(api, [0.0]).until(Goal("projects/p/global/instanceTemplates/T1"))
    assert (failed.value.instance, failed.value.answer) == ("bad", "UNHEALTHY by health check hc")
    assert (
        "instance bad is UNHEALTHY by health check hc 6s after it appeared (the gate allows 5s" in failed.value.message
    )
