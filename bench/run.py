"""bakery benchmarks. Reports ratios and times measured in one run; asserts nothing.

    python bench/run.py                 # --help time, 200 renders, and a local bake vs raw packer
    python bench/run.py --no-bake       # skip the bake comparison (3 rounds of two QEMU builds, ~5 minutes)

Goals (from the issue): overhead <= 1.02 x raw packer, `bakery --help` < 0.25 s, 200 renders < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def help_time(runs: int = 7) -> float:
    """Median wall time of a cold `bakery --help` (a new process each time)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(BIN / "bakery"), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def renders(count: int = 200) -> float:
    """Seconds to render `count` generated images (aws target: no base disk needed)."""
    from bakery.bake import render
    from bakery.config import load as config

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "templates", root / "templates")
        shutil.copytree(REPO / "playbooks", root / "playbooks")
        images = {
            f"img-{i}": {
                "version": "1.0",
                "description": f"generated image {i}",
                "source": {"aws": {"ami": "ami-0123456789abcdef0"}},
                "playbooks": ["playbooks/base.yml"],
                "vars": {"index": i, "title": f"image {i}"},
                "tags": {"team": "bench", "n": str(i)},
            }
            for i in range(count)
        }
        doc = {"targets": {"aws": {"kind": "aws", "region": "eu-west-1"}}, "images": images}
        (root / "images.yaml").write_text(json.dumps(doc))
        start = time.perf_counter()
        project = config.load(root / "images.yaml")
        for name in project.config.images:
            render.render(
                project,
                project.effective(name, "aws"),
                version="1.0.0",
                packer_version="1.6.6",
                out=root / "out" / name,
            )
        return time.perf_counter() - start


def bake_overhead(rounds: int) -> dict[str, object]:
    """One `bakery build` against one plain `packer build` of the same render, of an image whose
    playbook needs no network (apt through a mirror would add noise larger than the overhead)."""
    home = Path(tempfile.mkdtemp(prefix="bakery-bench-"))
    project = home / "project"
    project.mkdir()
    shutil.copytree(REPO / "templates", project / "templates")
    shutil.copytree(REPO / "playbooks", project / "playbooks")
    (project / "images.yaml").write_text(
        json.dumps(
            {
                "targets": {"local": {"kind": "local", "cpus": 2}},
                "images": {"bench": {"version": "1.0", "source": {"local": {}}, "playbooks": ["playbooks/base.yml"]}},
            }
        )
    )
    env = {**os.environ, "BAKERY_HOME": str(home / "state"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    bakery = str(BIN / "bakery")
    out = home / "raw"
    # Rendering makes (and caches) the base disk and probes the accelerator: both runs start warm.
    subprocess.run(
        [bakery, "render", "bench", "--target", "local", "--out", str(out)],
        check=True,
        env=env,
        cwd=project,
        capture_output=True,
    )
    raws, bakes = [], []
    # Alternate the two, several rounds: a TCG build varies by seconds from run to run, more than
    # bakery's own cost, so the ratio compares the fastest run of each.
    for _ in range(rounds):
        shutil.rmtree(out / "output", ignore_errors=True)
        start = time.perf_counter()
        subprocess.run(
            ["packer", "build", "-on-error=cleanup", str(out)], check=True, cwd=out, capture_output=True, env=env
        )
        raws.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(
            [bakery, "build", "bench", "--target", "local", "--quiet", "--force"],
            check=True,
            env=env,
            cwd=project,
            capture_output=True,
        )
        bakes.append(time.perf_counter() - start)
    shutil.rmtree(home, ignore_errors=True)
    return {
        "rounds": rounds,
        "raw_packer_s": [round(t, 1) for t in raws],
        "bakery_s": [round(t, 1) for t in bakes],
        "ratio": round(min(bakes) / min(raws), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-bake", action="store_true", help="skip the QEMU bake comparison")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/bakery builds (default 3)")
    args = parser.parse_args()
    report: dict[str, object] = {
        "help_seconds": round(help_time(), 3),
        "render_200_seconds": round(renders(), 2),
    }
    if not args.no_bake:
        report["bake"] = bake_overhead(args.rounds)
    report["goals"] = {"help_seconds": 0.25, "render_200_seconds": 2.0, "bake_ratio": 1.02}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
