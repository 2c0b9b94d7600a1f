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

import collections
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAKERY = str(Path(sys.executable).with_name("bakery"))
FRONT = "http://127.0.0.1:8080/"
CHANGED = ROOT / "demo.images.yaml"  # beside images.yaml, so playbooks/ resolve the same way
VERSION = re.compile(r'id="version">([^<]+)<')


def bakery(*args: str, config: Path | None = None) -> None:
    argv = [BAKERY, *args, *(["--file", str(config)] if config else [])]
    print(f"\n$ bakery {' '.join(argv[1:])}", flush=True)
    subprocess.run(argv, check=True, cwd=ROOT)


class Requests(threading.Thread):
    """GET the front port every 50 ms; count answers per version, and failures."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.served: collections.Counter[str] = collections.Counter()
        self.failed: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with urllib.request.urlopen(FRONT, timeout=5) as answer:
                    match = VERSION.search(answer.read().decode("utf-8", "replace"))
                    self.served[match.group(1) if match else "?"] += 1
            except (urllib.error.URLError, OSError) as exc:
                self.failed.append(f"{time.strftime('%H:%M:%S')} {exc}")
            time.sleep(0.05)


def main() -> int:
    started = time.monotonic()
    bakery("validate")
    bakery("build", "web", "--target", "local", "--quiet")
    bakery("rollout", "web-local", "--yes")
    with urllib.request.urlopen(FRONT, timeout=10) as answer:
        print(f"\n--- GET {FRONT} (through HAProxy) ---\n{answer.read().decode()}")
    text = (ROOT / "images.yaml").read_text()
    CHANGED.write_text(text.replace("Hello from a baked image", "Hello again: a new version, rolled out by bakery"))
    bakery("build", "web", "--target", "local", "--quiet", config=CHANGED)
    loop = Requests()
    loop.start()
    try:
        bakery("rollout", "web-local", "--yes", "--strategy", "canary", config=CHANGED)
    finally:
        time.sleep(2)
        loop.stopping.set()
        loop.join()
    bakery("status", "web-local", config=CHANGED)
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
