"""A local rollout timed against its floor, in one run, on the repository's project.

Needs two versions of `web` that verify in the local catalog (`make demo` leaves one, and a broken
one that never rolls out: `bakery build web --target local --force` bakes another). The floor is the plan's
waves x one VM's boot-to-healthy time (`bakery boot`, measured just before, while the group serves
the same request loop the rollout runs under: the same machine under the same load; the boot
time of an idle machine is reported beside it). The rollout moves `web-local` (brought up first
when it is down) to the other of the two newest versions, rolling, under that request loop; two
rounds, there and back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BAKERY = str(Path(sys.executable).with_name("bakery"))
GROUP, PORT = "web-local", 8080
ROUNDS = 2


def _json(*args: str, ok: tuple[int, ...] = (0,)) -> Any:
    done = subprocess.run([BAKERY, *args, "--json"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    if done.returncode not in ok:
        raise SystemExit(f"bakery {' '.join(args)} exited {done.returncode}")
    return json.loads(done.stdout)


def _verifies(ref: str) -> bool:
    return subprocess.run([BAKERY, "verify", ref, "--target", "local"], cwd=REPO, capture_output=True).returncode == 0


def local_rollout() -> dict[str, Any]:
    listing = _json("images", "web", "--target", "local")
    every = [f"web@{r['version']}" for r in listing.get("images", [])]
    versions = [ref for ref in every if _verifies(ref)]  # `make demo` leaves a broken one, which never rolls out
    if len(versions) < 2:
        raise SystemExit(
            "bench --local needs two versions of web on the local target that verify (tested, not revoked): "
            "after `make demo`, bake another with `bakery build web --target local --force`"
        )
    newest, other = versions[-1], versions[-2]
    status = _json("status", GROUP, ok=(0, 3))["groups"][0]
    runs = (status.get("intended") or {}).get("image")
    if not status.get("running"):
        subprocess.run([BAKERY, "rollout", GROUP, "--image", newest, "--yes"], cwd=REPO, check=True)
        runs = newest
    to = other if runs == newest else newest
    rounds = []
    for _ in range(ROUNDS):  # there and back: each round's floor is measured just before its rollout
        rounds.append(_round(to))
        to = other if to == newest else newest
    wall = sum(r["rollout_seconds"] for r in rounds)
    floor = sum(r["floor_seconds"] for r in rounds)
    return {
        "rounds": rounds,
        "ratio": round(wall / floor, 2) if floor else None,
        "failed": sum(r["failed"] for r in rounds),
    }


def _boot(ref: str) -> float:
    """Seconds until one VM of the group (its size, its health port) answers its health path."""
    return float(_json("boot", ref, "--as-group", GROUP, "--get", "/healthz")["seconds_to_first_answer"])


def _round(to: str) -> dict[str, Any]:
    """One VM's boot-to-healthy time, with the group serving the same request loop the rollout
    runs under (the same machine, the same load), then the rolling rollout onto `to`."""
    from tests.traffic import Traffic

    with Traffic(PORT):
        one_vm = _boot(to)
    idle = _boot(to)
    plan = _json("rollout", GROUP, "--image", to, "--strategy", "rolling", "--dry-run")
    waves = len(plan["plan"]["waves"])
    started = time.monotonic()
    with Traffic(PORT) as traffic:
        subprocess.run(
            [BAKERY, "rollout", GROUP, "--image", to, "--strategy", "rolling", "--yes"], cwd=REPO, check=True
        )
    wall = time.monotonic() - started
    floor = waves * one_vm
    return {
        "to": to,
        "waves": waves,
        "one_vm_boot_to_healthy_seconds": round(one_vm, 1),
        "one_vm_boot_to_healthy_idle_seconds": round(idle, 1),
        "floor_seconds": round(floor, 1),
        "rollout_seconds": round(wall, 1),
        "ratio": round(wall / floor, 2) if floor else None,
        "ratio_to_idle_boots": round(wall / (waves * idle), 2) if idle else None,
        "requests_served": dict(traffic.served),
        "failed": len(traffic.failed),
    }
