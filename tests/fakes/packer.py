"""A stand-in `packer` for service tests: it creates images in a FakeProvider's cloud (through
the cloud's inbox, as Packer creates them in a real one), prints Packer's machine-readable lines
and exits as a scenario says (see tests/fakes/provider.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MARK_FILE = "fake-cloud.json"  # in the work directory: the mark the stand-in packer puts on what it creates

_PACKER = '''\
#!{python}
"""Stand-in packer: `version`, `init`, and `build DIR` per scenario.json beside this script."""
import json, os, pathlib, sys, time

here = pathlib.Path(__file__).resolve().parent
scenario = json.loads((here / "scenario.json").read_text())
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\\n")
command = sys.argv[1] if len(sys.argv) > 1 else ""
if command == "version":
    print("Packer v" + scenario["version"])
    sys.exit(0)
if command != "build":
    sys.exit(0)
stamp = str(int(time.time()))

def ui(text):
    print(stamp + ",,ui,say," + text.replace(",", "%!(PACKER_COMMA)"), flush=True)

mark = json.loads(pathlib.Path("{mark_file}").read_text())
inbox = pathlib.Path(mark["inbox"])
inbox.mkdir(parents=True, exist_ok=True)
made = []
for number, region in enumerate(scenario["create"]):
    image_id = "img-" + mark["invocation"][:6] + "-" + str(number)
    note = dict(mark, region=region, id=image_id, content=scenario["content"])
    staged = inbox / (image_id + ".tmp")
    staged.write_text(json.dumps(note))
    os.replace(staged, inbox / ("%d-%s.json" % (time.monotonic_ns(), image_id)))
    made.append(region + ":" + image_id)
    # Said once the image exists (in the inbox): the heartbeat this line wakes finds it.
    ui("==> fake: Creating image " + image_id + " in " + region + "...")
for line in scenario["lines"]:
    print(line, flush=True)
time.sleep(scenario["sleep"])
if scenario["exit_code"] != 0:
    ui("Build 'fake' errored: " + scenario["error"])
    sys.exit(scenario["exit_code"])
if made:
    print(stamp + ",fake,artifact-count,1")
    print(stamp + ",fake,artifact,0,builder-id,fake")
    print(stamp + ",fake,artifact,0,id," + "%!(PACKER_COMMA)".join(made))
    print(stamp + ",fake,artifact,0,end")
ui("==> Builds finished.")
'''


class FakePacker:
    """A `packer` executable in `bin_dir` (put it first on PATH) that answers `version` and
    `init`, and for `build` creates images in the FakeProvider's cloud, prints Packer's
    machine-readable lines and exits as the scenario says. Every call is logged."""

    def __init__(self, bin_dir: Path, *, version: str = "1.6.6") -> None:
        self.bin_dir = bin_dir
        bin_dir.mkdir(parents=True, exist_ok=True)
        path = bin_dir / "packer"
        path.write_text(_PACKER.format(python=sys.executable, mark_file=MARK_FILE))
        path.chmod(0o755)
        self._version = version
        self.scenario()

    def scenario(
        self,
        *,
        create: tuple[str, ...] = ("region-a",),
        lines: tuple[str, ...] = (),
        exit_code: int = 0,
        sleep: float = 0.0,
        content: str = "a baked disk",
        error: str = "ansible-playbook exited 2",
        version: str | None = None,
    ) -> None:
        """What the next `packer build` does: create an image in each region of `create` (in
        order), print `lines`, sleep, then exit with `exit_code` (reporting the artifact on 0)."""
        if version is not None:
            self._version = version
        spec = {
            "create": list(create),
            "lines": list(lines),
            "exit_code": exit_code,
            "sleep": sleep,
            "content": content,
            "error": error,
            "version": self._version,
        }
        (self.bin_dir / "scenario.json").write_text(json.dumps(spec))

    def calls(self) -> list[list[str]]:
        log = self.bin_dir / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line)["argv"] for line in log.read_text().splitlines()]

    def builds(self) -> list[list[str]]:
        return [argv for argv in self.calls() if argv[:1] == ["build"]]
