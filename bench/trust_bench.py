"""Trust benchmarks. Reports ratios measured side by side in one run; asserts nothing.

    python bench/trust_bench.py              # both: local verify vs sha256sum, then audit verify (10,000 events)
    python bench/trust_bench.py --no-audit   # the first only

Goals (issue 8): `bakery verify` of a local image <= 1.1 x `sha256sum` of the same disk (the disk's
hash is the work; the signature, tags and registry are the overhead), and `audit verify` over
10,000 events < 1 s (bench/audit_bench.py). The local image is the newest `web` in this
checkout's catalog; one is baked first when there is none (about 3 minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GOAL_RATIO = 1.1


def local_image() -> tuple[Any, Any, list[Any]]:
    """(verifier, record, records) for the newest local `web`, baked first when there is none
    that is signed (images baked before bakery signed them are not)."""
    from bakery.cli.app import TerminalReporter
    from bakery.config import load as config
    from bakery.core import catalog
    from bakery.providers.base import get_provider
    from bakery.trust.context import TrustContext
    from bakery.trust.verify import Verifier
    from bakery.workspace import Workspace

    project = config.load(REPO / "images.yaml")
    ws = Workspace.for_project(project.root)
    reporter = TerminalReporter(verbose=False)
    provider = get_provider("local", ws, reporter, None, project.config.targets)
    verifier = Verifier(project, TrustContext(project, ws, reporter), lambda _target: provider)
    record = catalog.newest(provider.images("local", "web"))
    if record is None or verifier.attestations.get(record) is None:
        bakery = str(Path(sys.executable).with_name("bakery"))
        subprocess.run([bakery, "build", "web", "--target", "local", "--force"], check=True, cwd=REPO)
        record = catalog.newest(provider.images("local", "web"))
    return verifier, record, provider.images("local")


def verify_vs_sha256sum(rounds: int = 5) -> dict[str, float]:
    verifier, record, records = local_image()
    disk = Path(record.locations[0]) / "disk.qcow2"
    first = verifier.verify_record(record, records)
    if not first.ok:
        print(f"note: {record.ref} does not verify ({'; '.join(first.problems)}); timing it anyway")
    ours, theirs = [], []
    for _ in range(rounds):  # alternating, so both see the same page cache
        start = time.perf_counter()
        subprocess.run(["sha256sum", str(disk)], check=True, capture_output=True)
        theirs.append(time.perf_counter() - start)
        start = time.perf_counter()
        verifier.verify_record(record, records)
        ours.append(time.perf_counter() - start)
    return {"verify": min(ours), "sha256sum": min(theirs), "size_mib": disk.stat().st_size / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-audit", action="store_true", help="skip the audit log benchmark")
    args = parser.parse_args()
    found = verify_vs_sha256sum()
    ratio = found["verify"] / found["sha256sum"]
    print(
        f"verify of a local image ({found['size_mib']:.0f} MiB disk): {found['verify']:.2f} s; "
        f"sha256sum of the same disk: {found['sha256sum']:.2f} s; ratio {ratio:.2f} (goal <= {GOAL_RATIO})"
    )
    if not args.no_audit:
        subprocess.run([sys.executable, str(REPO / "bench" / "audit_bench.py")], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
