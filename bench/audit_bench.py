"""Audit log benchmark. Reports numbers measured in one run; asserts nothing.

    python bench/audit_bench.py                 # 10,000 signed events in a local registry (~15 s to write)
    python bench/audit_bench.py --events 2000

Goal (issue 8): `audit verify` over 10,000 events < 1 s with the local registry. The events are
written by AuditLog.append itself (signed ed25519, chained, the head moved after each), so what
is verified is exactly what bakery writes; verify() is timed best of 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOAL_SECONDS = 1.0


def audit_verify(count: int, rounds: int = 3) -> dict[str, Any]:
    """Seconds to write `count` events, and the best of `rounds` verify() over them."""
    from securesystemslib.signer import CryptoSigner

    from bakery.registry.local import LocalStore
    from bakery.trust.audit import AuditLog
    from bakery.trust.signing import PublicKey

    signer = CryptoSigner.generate_ed25519()
    key = PublicKey("bench", signer.public_key.keyid, signer.public_key)
    with tempfile.TemporaryDirectory(prefix="bakery-audit-bench-") as tmp:
        log = AuditLog(LocalStore(Path(tmp) / "registry"), signer=lambda: signer, keys=[key])
        start = time.perf_counter()
        for n in range(count):
            log.append(
                action="rollout",
                subject="group web-local",
                result="ok",
                policy="trust.require=on, threshold 1 of keys: bench",
                details={"from": f"web@1.0.{n}", "to": f"web@1.0.{n + 1}"},
                who="bench@host",
            )
        written = time.perf_counter() - start
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            report = log.verify()
            times.append(time.perf_counter() - start)
            if not report.ok or report.events != count:
                raise SystemExit(f"the benchmark's own log does not verify: {report.problems[:3]}")
    return {
        "events": count,
        "write_seconds": round(written, 2),
        "verify_seconds": [round(t, 3) for t in times],
        "best_verify_seconds": round(min(times), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="events in the log (default 10000)")
    args = parser.parse_args()
    report = {"audit_verify": audit_verify(args.events), "goals": {"audit_verify_10000_seconds": GOAL_SECONDS}}
    print(json.dumps(report, indent=2))
    best = report["audit_verify"]["best_verify_seconds"]
    print(f"audit verify: {args.events} events in {best:.3f} s; {best / GOAL_SECONDS:.2f} x the goal (goal < 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
