"""Rollout benchmarks. Reports numbers and ratios measured in one run; asserts nothing.

    python bench/rollout_bench.py            # cloud watches on the fakes (about a minute)
    python bench/rollout_bench.py --local    # and a local rollout on what `make demo` left (QEMU, a few minutes)

Goals (issue 7):
- API calls while watching a cloud rollout: at most 12 per minute at production's poll interval;
  the total for a 100-instance refresh on the fakes is reported.
- local rollout wall time against the floor measured in the same run (waves x one VM's
  boot-to-healthy time): ratio <= 1.15.
- requests failed through the front port during a local rollout: 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def aws_watch(size: int) -> dict[str, Any]:
    """A `size`-instance instance refresh (rolling, 10% a batch) on moto with the fake refresh."""
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(name, value)  # moto's; nothing leaves 127.0.0.1
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    from tests.fakes import moto_ebs
    from tests.integration.aws_groups import bench_watch_calls
    from tests.integration.aws_world import ACCOUNT, SOURCE_AMIS

    with tempfile.TemporaryDirectory() as tmp:
        amis = Path(tmp) / "amis.json"
        amis.write_text(moto_ebs.ami_records(SOURCE_AMIS, ACCOUNT))
        with moto_ebs.running(amis) as endpoint:
            return bench_watch_calls(endpoint, Path(tmp) / "world", size=size)


def gcp_watch(size: int) -> dict[str, Any]:
    """A `size`-instance MIG moved by a rolling update on the fake GCE, counting requests."""
    import pytest

    from bakery.groups.gcp import watch
    from tests.integration.gcp_groups import gcp_world, seed_mig

    with (
        tempfile.TemporaryDirectory() as tmp,
        pytest.MonkeyPatch.context() as patch,
        gcp_world(Path(tmp), patch) as world,
    ):
        seed_mig(world, size=size)
        group = world.group("rolling", max_surge="10%", max_unavailable=0)
        rollout = world.new_rollout(group, "1.0.1")
        world.gce.reset_requests()
        world.run(rollout)
        requests = list(world.gce.requests)
    reads = [r for r in requests if r[0] == "GET" or "listManagedInstances" in r[1]]
    looks = sum(1 for method, path in requests if method == "GET" and path.rstrip("/").endswith("/web-mig"))
    per_look = (len(reads) / looks) if looks else 0.0
    interval = watch.POLL_SECONDS
    return {
        "instances": size,
        "calls_total": len(requests),
        "calls_reading": len(reads),
        "looks": looks,
        "calls_per_look": round(per_look, 2),
        "poll_seconds_in_production": interval,
        "calls_per_minute_in_production": round(per_look * 60 / interval, 1) if interval else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100, help="instances in the cloud groups (default 100)")
    parser.add_argument("--local", action="store_true", help="also time a local rollout (real QEMU VMs)")
    args = parser.parse_args()
    report: dict[str, Any] = {"aws": aws_watch(args.size), "gcp": gcp_watch(args.size)}
    if args.local:
        from bench.local_rollout import local_rollout

        report["local"] = local_rollout()
    print(json.dumps(report, indent=2))
    for cloud in ("aws", "gcp"):
        rate = report[cloud].get("calls_per_minute_in_production")
        print(f"{cloud}: {report[cloud]['calls_total']} calls for {args.size} instances; {rate} calls/min (goal <= 12)")
    if "local" in report:
        local = report["local"]
        ratio, failed = local["ratio"], local["failed"]
        print(f"local: rollout {ratio:.2f} x the floor (goal <= 1.15); failed requests {failed} (goal 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
