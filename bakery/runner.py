"""The one place that starts processes (packer, ansible, qemu, mmdebstrap, git).

Every child runs in its own process group with a cleaned environment. Its output is streamed
line by line to a callback and a log file; the last lines are kept for the error message.
SIGINT/SIGTERM to bakery are forwarded to the child group (as a terminal's Ctrl-C would be),
the child is given time to clean up (Packer removes its VM and output), and whatever is left of
the group afterwards is killed, so no qemu outlives its bake.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bakery.errors import BuildError, Interrupted

log = logging.getLogger("bakery.runner")

TAIL_LINES = 30
CLEANUP_GRACE_SECONDS = 120
# What a child may inherit from bakery's environment; everything else is dropped. PKR_VAR_* is
# dropped on purpose: Packer variables come from the rendered directory, not from the shell.
INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "TMPDIR", "TZ", "SSL_CERT_FILE")
INHERITED_PREFIXES = (
    "LC_",
    "AWS_",
    "GOOGLE_",
    "CLOUDSDK_",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "PACKER_LOG",
    "PACKER_CACHE_DIR",
)

_lock = threading.Lock()
_live: set[subprocess.Popen[bytes]] = set()
_interrupted = threading.Event()


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    output: str
    seconds: float


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: an allowlist of bakery's own, this Python's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith(INHERITED_PREFIXES)}
    # Tools installed beside bakery (ansible-playbook in the same venv) win over the system's.
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
    env.setdefault("LANG", "C.UTF-8")
    # Packer would otherwise call HashiCorp's update-check service on every run.
    env["CHECKPOINT_DISABLE"] = "1"
    env.update(extra or {})
    return env


def mask(text: str, secrets: Sequence[str]) -> str:
    """Hide each secret as written, as it appears inside JSON, and line by line (a PEM key)."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= {secret, json.dumps(secret)[1:-1]}
            forms |= {line for line in secret.splitlines() if len(line.strip()) >= 8}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "********")
    return text


def interrupted() -> bool:
    return _interrupted.is_set()


def _forward(signum: int, _frame: FrameType | None) -> None:
    first = not _interrupted.is_set()
    _interrupted.set()
    with _lock:
        children = list(_live)
    for child in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGINT if first else signal.SIGTERM)


@contextlib.contextmanager
def signal_guard() -> Iterator[None]:
    """While active, SIGINT/SIGTERM/SIGHUP stop the children gracefully instead of killing bakery."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # SIGHUP too: a dropped SSH session must not leave Packer and its VM running unsupervised.
    previous = {s: signal.signal(s, _forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(
    argv: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log_path: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    secrets: Sequence[str] = (),
    timeout: float | None = None,
    check: bool = True,
) -> Completed:
    """Run `argv`; stream its merged output. Raises BuildError on failure, Interrupted on a signal.

    `what` names the step for messages ("packer build"). `secrets` are masked in logs and
    messages. With `timeout`, the group is killed after that many seconds and a BuildError raised
    (or, with check=False, returncode -9 is returned).
    """
    argv = [str(a) for a in argv]
    shown = mask(shlex.join(argv), secrets)
    log.debug("run: %s (cwd=%s)", shown, cwd)
    if _interrupted.is_set():
        raise Interrupted(f"{what} not started: interrupted")
    started = time.monotonic()
    sink = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    child: subprocess.Popen[bytes] | None = None
    try:
        if sink:
            sink.write(f"$ {shown}\n")
            sink.flush()
        try:
            child = subprocess.Popen(
                argv,
                cwd=cwd,
                env=child_env(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise BuildError(
                f"{what}: '{argv[0]}' is not installed or not on PATH",
                hint="run `make setup` (installs packer, qemu, mmdebstrap and the Python tools)",
            ) from None
        with _lock:
            _live.add(child)
        killer = _deadline(child, timeout) if timeout else None
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        lines: list[str] = []
        assert child.stdout is not None
        for raw in child.stdout:
            line = mask(raw.decode("utf-8", "replace").rstrip("\n"), secrets)
            tail.append(line)
            lines.append(line)
            if sink:
                sink.write(line + "\n")
                sink.flush()
            if on_line:
                on_line(line)
        returncode = _wait_for(child)
        if killer:
            killer.cancel()
    finally:
        if sink:
            sink.close()
        if child is not None:
            with _lock:
                _live.discard(child)
    result = Completed(tuple(argv), returncode, "\n".join(lines), time.monotonic() - started)
    if _interrupted.is_set():
        raise Interrupted(
            f"{what} interrupted; cleanup ran",
            returncode=returncode,
            tail=tuple(tail),
            log_path=str(log_path) if log_path else None,
        )
    if check and returncode != 0:
        reason = "timed out" if killer and killer.fired else f"failed (exit {returncode})"
        raise BuildError(
            f"{what} {reason}", returncode=returncode, tail=tuple(tail), log_path=str(log_path) if log_path else None
        )
    return result


def _wait_for(child: subprocess.Popen[bytes]) -> int:
    """Wait for the child, then kill what is left of its process group (qemu, ssh)."""
    try:
        returncode = child.wait(timeout=CLEANUP_GRACE_SECONDS if _interrupted.is_set() else None)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        returncode = child.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    return returncode


class _deadline:
    def __init__(self, child: subprocess.Popen[bytes], seconds: float) -> None:
        self.fired = False
        self._child = child
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._child.pid, signal.SIGKILL)

    def cancel(self) -> None:
        self._timer.cancel()


def start(argv: Sequence[str], *, what: str, log_path: Path, cwd: Path | None = None) -> Background:
    """Start a long-lived child (a booted VM) that outlives this call; stop it with .stop()."""
    argv = [str(a) for a in argv]
    sink = open(log_path, "ab")  # noqa: SIM115 - owned by the Background
    try:
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError:
        sink.close()
        raise BuildError(f"{what}: '{argv[0]}' is not installed or not on PATH") from None
    return Background(child, sink, what)


class Background:
    def __init__(self, child: subprocess.Popen[bytes], sink: object, what: str) -> None:
        self.child = child
        self._sink = sink
        self.what = what

    @property
    def pid(self) -> int:
        return self.child.pid

    def alive(self) -> bool:
        return self.child.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.child.pid, signal.SIGTERM)
        try:
            self.child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.child.pid, signal.SIGKILL)
            self.child.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.child.pid, signal.SIGKILL)
        close = getattr(self._sink, "close", None)
        if close:
            close()
