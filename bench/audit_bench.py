"""Audit log benchmark. Reports numbers measured in one run; asserts nothing.

    python bench/audit_bench.py                 # 10,000 signed events in a local registry (~15 s to write)
    python bench/audit_bench.py --events 2000

Goal (issues 8 and 13): `audit verify --full` over 10,000 events < 1 s with the local registry;
`audit verify` from a remembered head checks only what is new. The events are written by
AuditLog.append itself (signed ed25519, chained, the head moved and sealed after each, the
witness told), so what is verified is exactly what bakery writes. Each is timed best of 3, side
by side in this run: the full check (the sealed head's signature, the chain, the events after the
seal); the full check of every event's own signature (`--every-signature`, what `--full` did
before seals); the bare ed25519 verification of as many signatures (cryptography, one thread: the
floor any per-event check stands on); and the check of the last 10 events from where the witness
verified before them. The ratios, not the seconds, are what compare across machines.
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
    from bakery.trust.witness import Witness

    with tempfile.TemporaryDirectory(prefix="bakery-audit-bench-") as tmp:
        store = LocalStore(Path(tmp) / "registry")
        witness = Witness(Path(tmp) / "witness.json", store.where)
        log = AuditLog(store, signer=lambda: signer, keys=[key], witness=witness)
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
        times, every, raw, incremental = [], [], [], []
        for _ in range(rounds):
            for seals, into in ((True, times), (False, every)):
                start = time.perf_counter()
                followed = log.follow(full=True, seals=seals)
                into.append(time.perf_counter() - start)
                if not followed.report.ok or followed.report.events != count:
                    raise SystemExit(f"the benchmark's own log does not verify: {followed.report.problems[:3]}")
                if followed.report.sealed != (count if seals else 0):
                    raise SystemExit(f"the head seals {followed.report.sealed} of {count} events")
            raw.append(_bare_ed25519(signer, count))
        for n in range(rounds):
            for _ in range(10):
                log.append(action="rollout", subject="group web-local", result="ok", details={"n": n}, who="b@h")
            start = time.perf_counter()
            followed = log.follow()
            incremental.append(time.perf_counter() - start)
            if not followed.report.ok or followed.report.events != 11:  # the remembered event and 10 new
                raise SystemExit(f"the incremental check read {followed.report.events} events")
    return {
        "events": count,
        "write_seconds": round(written, 2),
        "verify_seconds": [round(t, 3) for t in times],
        "best_verify_seconds": round(min(times), 3),
        "best_verify_every_signature_seconds": round(min(every), 3),
        "best_bare_ed25519_seconds": round(min(raw), 3),
        "full_over_every_signature": round(min(times) / min(every), 3),
        "full_over_bare_ed25519": round(min(times) / min(raw), 3),
        "best_verify_10_new_seconds": round(min(incremental), 4),
        "full_over_incremental": round(min(times) / min(incremental), 1),
    }


def _bare_ed25519(signer: Any, count: int) -> float:
    """Seconds to verify `count` ed25519 signatures over event-sized messages with cryptography
    alone, one after the other: what checking every event's own signature cannot go below."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    messages = [
        b"DSSEv1 35 application/vnd.bakery.audit+json 300 " + bytes(300) + str(n).encode() for n in range(count)
    ]
    signatures = [key.sign(m) for m in messages]
    start = time.perf_counter()
    for message, signature in zip(messages, signatures, strict=True):
        public.verify(signature, message)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="events in the log (default 10000)")
    args = parser.parse_args()
    report = {"audit_verify": audit_verify(args.events), "goals": {"audit_verify_10000_seconds": GOAL_SECONDS}}
    print(json.dumps(report, indent=2))
    best = report["audit_verify"]["best_verify_seconds"]
    print(f"audit verify --full: {args.events} events in {best:.3f} s; {best / GOAL_SECONDS:.2f} x the goal (< 1 s)")
    every = report["audit_verify"]["best_verify_every_signature_seconds"]
    raw = report["audit_verify"]["best_bare_ed25519_seconds"]
    print(
        f"  side by side: --every-signature {every:.3f} s, bare ed25519 x {args.events} {raw:.3f} s; "
        f"--full takes {best / every:.2f} x the one and {best / raw:.2f} x the other"
    )
    ten = report["audit_verify"]["best_verify_10_new_seconds"]
    print(f"audit verify from a remembered head, 10 new events: {ten:.4f} s ({args.events} + 10 in the log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
