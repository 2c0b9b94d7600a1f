"""`make demo`: the loop users came for, on this machine (QEMU under TCG, HAProxy on 127.0.0.1).

1. bake `web` on the local target; `bakery build` boots the new image and runs its tests (a test
   playbook through ansible-runner, HTTP checks) and signs the result;
2. promote it to the channel `testing`, which the group `web-local` follows, and roll the group
   onto the channel's head (2 VMs behind HAProxy on 127.0.0.1:8080); print its page;
3. bake a broken `web` (its /healthz answers 500, from demo.images.yaml: images.yaml with
   `healthz_status: 500`): its test refuses it, the bake fails naming the check, and promoting it
   is refused, so it never reaches the channel and the group keeps serving the good version;
4. `bakery diff` of the two versions: the changed playbook variables, and no package changed;
5. print the channel's history, the group's status and the audit trail.

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
BROKEN = ROOT / "demo.images.yaml"  # beside images.yaml, so playbooks/ resolve the same way


def bakery(*args: str, config: Path | None = None, ok: tuple[int, ...] = (0,)) -> int:
    argv = [BAKERY, *args, *(["--file", str(config)] if config else [])]
    print(f"\n$ bakery {' '.join(argv[1:])}", flush=True)
    code = subprocess.run(argv, cwd=ROOT).returncode
    if code not in ok:
        raise SystemExit(f"bakery {' '.join(args)} exited {code}")
    return code


def bake(config: Path | None = None, *, ok: tuple[int, ...] = (0,)) -> tuple[int, dict[str, object]]:
    """Bake web on the local target (or find it up to date) and test it: (exit code, the result)."""
    argv = [BAKERY, "build", "web", "--target", "local", "--quiet", "--json"]
    argv += ["--file", str(config)] if config else []
    print(f"\n$ bakery {' '.join(argv[1:])}", flush=True)
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if done.returncode not in ok:
        raise SystemExit(f"bakery build exited {done.returncode}")
    result: dict[str, object] = json.loads(done.stdout)
    record = result["record"]
    assert isinstance(record, dict)
    tests = result.get("tests")
    said = f"tests {tests['result']}" if isinstance(tests, dict) else f"not tested ({result.get('untested')})"
    print(f"web@{record['version']} (inputs digest {str(record['inputs_digest'])[:19]}...): {said}")
    return done.returncode, result


def ref_of(result: dict[str, object]) -> str:
    record = result["record"]
    assert isinstance(record, dict)
    return f"{record['name']}@{record['version']}"


def diff(before: str, after: str) -> bool:
    """Show `bakery diff` of two versions; True when it names the changed variable and no package."""
    bakery("diff", before, after, "--target", "local", config=BROKEN)
    argv = [BAKERY, "diff", before, after, "--target", "local", "--json", "--file", str(BROKEN)]
    found = json.loads(subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout)
    packages = found["packages"]
    names = [change["name"] for change in found["inputs"]]
    same = not (packages["added"] or packages["removed"] or packages["changed"])
    return same and "entry.vars.healthz_status" in names


def main() -> int:
    started = time.monotonic()
    bakery("validate")
    _, good = bake()
    bakery("promote", ref_of(good), "--to", "testing", "--target", "local")
    bakery("rollout", "web-local", "--yes")  # web-local follows testing: it rolls the channel's head
    with urllib.request.urlopen(FRONT, timeout=10) as answer:
        print(f"\n--- GET {FRONT} (through HAProxy) ---\n{answer.read().decode()}")

    text = (ROOT / "images.yaml").read_text()
    broken_vars = "page_title: A broken page\n      healthz_status: 500"
    BROKEN.write_text(text.replace("page_title: Hello from a baked image", broken_vars))
    with Traffic(PORT) as loop:  # the group keeps serving the good version throughout
        code, broken = bake(BROKEN, ok=(1,))
        refused = bakery("promote", ref_of(broken), "--to", "testing", "--target", "local", config=BROKEN, ok=(1,))
    same_packages = diff(ref_of(good), ref_of(broken))
    bakery("channels", "testing")
    bakery("status", "web-local")
    bakery("audit", "--since", "1h")
    print("\nrequests through 127.0.0.1:8080 while the broken version was baked, tested and refused:")
    for version, count in sorted(loop.served.items()):
        print(f"  served by {version}: {count}")
    print(f"  failed: {len(loop.failed)}")
    for line in loop.failed[:10]:
        print(f"    {line}")
    print(f"\ndemo took {time.monotonic() - started:.0f}s; `bakery down web-local` stops the group")
    return 1 if loop.failed or code != 1 or refused != 1 or not same_packages else 0


if __name__ == "__main__":
    sys.exit(main())
