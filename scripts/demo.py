"""`make demo`: the loop users came for, on this machine (QEMU under TCG, HAProxy on 127.0.0.1).

1. bake `web` on the local target and bring the group `web-local` up (2 VMs behind HAProxy on
   127.0.0.1:8080), then print its page through the front port;
2. bake `web` again with a changed page (from demo.images.yaml: images.yaml with another
   page_title, so the new version traces to a different inputs digest);
3. roll the group onto it (canary, then the rest) while a request loop runs against the front port;
4. print the requests served per version and how many failed.

The group keeps running afterwards (`bakery down web-local` stops it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.traffic import Traffic  # noqa: E402 - the repository's own request loop

BAKERY = str(Path(sys.executable).with_name("bakery"))
PORT = 8080  # web-local's front port in images.yaml
FRONT = f"http://127.0.0.1:{PORT}/"
CHANGED = ROOT / "demo.images.yaml"  # beside images.yaml, so playbooks/ resolve the same way


def bakery(*args: str, config: Path | None = None) -> None:
    argv = [BAKERY, *args, *(["--file", str(config)] if config else [])]
    print(f"\n$ bakery {' '.join(argv[1:])}", flush=True)
    subprocess.run(argv, check=True, cwd=ROOT)


def bake(config: Path | None = None) -> str:
    """Bake web on the local target (or find it up to date); its NAME@VERSION."""
    argv = [
        BAKERY,
        "build",
        "web",
        "--target",
        "local",
        "--quiet",
        "--json",
        *(["--file", str(config)] if config else []),
    ]
    print(f"\n$ bakery {' '.join(argv[1:])}", flush=True)
    done = subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    record = json.loads(done.stdout)["record"]
    print(f"web@{record['version']} (inputs digest {record['inputs_digest'][:19]}...)")
    return f"{record['name']}@{record['version']}"


def main() -> int:
    started = time.monotonic()
    bakery("validate")
    first = bake()
    bakery("rollout", "web-local", "--image", first, "--yes")
    with urllib.request.urlopen(FRONT, timeout=10) as answer:
        print(f"\n--- GET {FRONT} (through HAProxy) ---\n{answer.read().decode()}")
    text = (ROOT / "images.yaml").read_text()
    CHANGED.write_text(text.replace("Hello from a baked image", "Hello again, from a new version rolled out by bakery"))
    second = bake(CHANGED)
    bakery("verify", second, "--target", "local", config=CHANGED)  # what every rollout checks first
    with Traffic(PORT) as loop:
        bakery("rollout", "web-local", "--image", second, "--yes", "--strategy", "canary", config=CHANGED)
        time.sleep(2)
    bakery("status", "web-local", config=CHANGED)
    bakery("audit", "--since", "1h", config=CHANGED)
    print("\nrequests through 127.0.0.1:8080 during the rollout:")
    for version, count in sorted(loop.served.items()):
        print(f"  served by {version}: {count}")
    print(f"  failed: {len(loop.failed)}")
    for line in loop.failed[:10]:
        print(f"    {line}")
    print(f"\ndemo took {time.monotonic() - started:.0f}s; `bakery down web-local` stops the group")
    return 1 if loop.failed else 0


if __name__ == "__main__":
    sys.exit(main())
