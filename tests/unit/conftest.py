"""The unit tier starts no program but Python (this interpreter, a script it runs, or a link to it
named as a tool is): a test that starts HAProxy, ansible-playbook, Packer, qemu or a shell belongs to
tests/integration/. Enforced here, in the test process, as loopback-only sockets are (pyproject)."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PYTHON = Path(sys.executable).resolve()


def runs_python(program: str, path: str | None) -> bool:
    """Whether `program` (as Popen would find it on `path`) is this Python or a script for it. A
    program that is not there starts nothing: the caller's FileNotFoundError is what it tests."""
    found = program if os.sep in program else shutil.which(program, path=path)
    if found is None or not Path(found).exists():
        return True
    if Path(found).resolve() == PYTHON:
        return True
    with open(found, "rb") as file:
        first = file.readline(512)
    if not first.startswith(b"#!"):
        return False
    words = first[2:].decode(errors="replace").split()
    return bool(words) and (Path(words[0]).resolve() == PYTHON or Path(words[-1]).name.startswith("python"))


_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
_SIGNATURE = inspect.signature(_execute_child)


def _only_python(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
    bound = _SIGNATURE.bind(self, *args, **kwargs).arguments
    argv, executable, env = bound["args"], bound["executable"], bound["env"]
    program = os.fsdecode(executable) if executable else os.fsdecode(argv if isinstance(argv, str | bytes) else argv[0])
    if bound["shell"]:
        program = "/bin/sh"
    path = (os.environ if env is None else env).get("PATH")
    if not runs_python(program, path):
        pytest.fail(
            f"the unit tier starts no program but Python; this test started {program} (tests/integration/ is for that)"
        )
    return _execute_child(self, *args, **kwargs)


# What git answers in a directory outside any checkout, as every project a unit test makes is: bakes
# record no commit (bakery/bake/tools.py's git_state), as they would there with the real git.
GIT = f"""#!{sys.executable}
import sys
sys.stderr.write("fatal: not a git repository (or any of the parent directories): .git\\n")
sys.exit(128)
"""


@pytest.fixture(scope="session")
def stand_in_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = tmp_path_factory.mktemp("unit-bin")
    (bin_dir / "git").write_text(GIT)
    (bin_dir / "git").chmod(0o755)
    return bin_dir


@pytest.fixture(autouse=True)
def only_python_starts(stand_in_bin: Path) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{stand_in_bin}{os.pathsep}{os.environ['PATH']}")
        patch.setattr(subprocess.Popen, "_execute_child", _only_python)
        yield


@pytest.fixture()
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An OpenTelemetry collector stand-in on 127.0.0.1 that OTEL_EXPORTER_OTLP_ENDPOINT names, and
    a caller's TRACEPARENT (tests/fakes/collector.py): what bakery traces goes there."""
    from tests.fakes.collector import CALLER_SPAN, CALLER_TRACE, Collector

    with Collector().serving() as serving:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", serving.endpoint)
        monkeypatch.setenv("TRACEPARENT", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
        yield serving
