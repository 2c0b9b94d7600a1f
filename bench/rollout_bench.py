"""Rollout benchmarks. Reports numbers and ratios measured in one run; asserts nothing.

    python bench/rollout_bench.py            # cloud watches on the fakes (about a minute)
    python bench/rollout_bench.py --local    # and a local rollout on what `make demo` left (QEMU, a few minutes)
    python bench/rollout_bench.py --local-only

Goals (issue 7, issue 13 item 9):
- API calls while watching a cloud rollout (the polls, the gate's and the live view's reads): at most
  12 in the busiest minute, at production's poll intervals in simulated time (tests/fakes/clock.py);
  the busiest minute of every call of the moving steps (writes too) and the totals are reported.
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


# A canary refresh: bakery's gate settles at each checkpoint, right after a look (the busiest minutes).
CANARY = {"type": "canary", "canary_size": "5%", "batch_size": "25%", "bake_seconds": 1}


def aws_watch(size: int, strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `size`-instance instance refresh (rolling, 10% a batch, unless `strategy`) on moto with the
    fake refresh."""
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
            return bench_watch_calls(endpoint, Path(tmp) / "world", size=size, strategy=strategy)


def gcp_watch(size: int) -> dict[str, Any]:
    """A `size`-instance MIG moved by a rolling update on the fake GCE, counting requests."""
    import pytest

    from tests.integration.gcp_groups import bench_watch_calls, gcp_world

    with (
        tempfile.TemporaryDirectory() as tmp,
        pytest.MonkeyPatch.context() as patch,
        gcp_world(Path(tmp), patch) as world,
    ):
        return bench_watch_calls(world, patch, size=size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100, help="instances in the cloud groups (default 100)")
    parser.add_argument("--local", action="store_true", help="also time a local rollout (real QEMU VMs)")
    parser.add_argument("--local-only", action="store_true", help="only time the local rollout")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    if not args.local_only:
        report["aws"] = aws_watch(args.size)
        report["aws-canary"] = aws_watch(args.size, CANARY)
        report["gcp"] = gcp_watch(args.size)
    if args.local or args.local_only:
        from bench.local_rollout import local_rollout

        report["local"] = local_rollout()
    print(json.dumps(report, indent=2))
    for cloud in (c for c in ("aws", "aws-canary", "gcp") if c in report):
        found = report[cloud]
        print(
            f"{cloud}: {found['calls_watching']} calls watching {args.size} instances for "
            f"{found['minutes_watched_in_production']} min; busiest minute {found['busiest_minute_watching']} "
            f"calls (goal <= 12)"
        )
    if "local" in report:
        local = report["local"]
        ratio, failed = local["ratio"], local["failed"]
        for each in local["rounds"]:
            print(
                f"local: to {each['to']}: {each['rollout_seconds']}s for {each['waves']} waves of one VM that boots "
                f"to healthy in {each['one_vm_boot_to_healthy_seconds']}s "
                f"({each['one_vm_boot_to_healthy_idle_seconds']}s on an idle group): {each['ratio']} x the floor"
            )
        print(f"local: rollout {ratio:.2f} x the floor (goal <= 1.15); failed requests {failed} (goal 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
