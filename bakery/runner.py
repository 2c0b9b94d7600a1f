"""The one place that starts processes (packer, ansible, qemu, mmdebstrap, git).

Every child runs in its own process group with a cleaned environment. Its output is streamed
line by line to a callback and a log file; the last lines are kept for the error message.
SIGINT/SIGTERM to bakery are forwarded to the child group (as a terminal's Ctrl-C would be),
the child is given time to clean up (Packer removes its VM and output), and whatever is left of
the group afterwards is killed, so no qemu outlives its bake.

Over 400 lines on purpose: starting children and handling signals are one concern here (the
handler must reach the child group it forwards to, and cleanup is timed against that child);
split apart, each half would have to know the other's state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
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

_PEM_ARMOR = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]+-----")

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

_lock = threading.RLock()  # re-entrant: the signal handler takes it in the main thread too
_live: set[subprocess.Popen[bytes]] = set()
_interrupted = threading.Event()
_starting = threading.Event()  # run() is between starting a child and registering it


@dataclass
class _Guard:
    """What the signal handler needs to know about the job it guards."""

    raise_in_main: bool
    signum: int = 0  # the first signal received
    signals: int = 0  # how many arrived
    raised: bool = False  # Interrupted was raised into the main thread already
    cleanup: _Cleanup | None = None


@dataclass
class _Cleanup:
    describe: Callable[[], str]  # what stopping the cleanup now would leave behind
    warn: Callable[[str], None]
    signals: int = 0


_guard: _Guard | None = None


class _Stop(KeyboardInterrupt):
    """What the signal handler raises into the main thread. A BaseException, as KeyboardInterrupt
    is, so that no SDK's `except Exception` retry loop swallows it; signal_guard turns it into
    Interrupted (a BakeryError) once it has unwound the job."""

    def __init__(self, message: str, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint


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


def secret_forms(value: str) -> set[str]:
    """How a secret may appear once written out: as is, escaped inside JSON (how Ansible passes
    module arguments), and line by line (a PEM key, a wrapped log line): each line of 8
    characters or more, except PEM armor, which is the same in every key."""
    if not value:
        return set()
    found = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    for line in value.splitlines():
        if len(line.strip()) >= 8 and not _PEM_ARMOR.fullmatch(line.strip()):
            found.add(line)
    return found


def mask(text: str, secrets: Sequence[str]) -> str:
    """Hide each secret in every form secret_forms names (as written, inside JSON, by line)."""
    forms: set[str] = set().union(*(secret_forms(secret) for secret in secrets))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "********")
    return text


def interrupted() -> bool:
    return _interrupted.is_set()


def exit_code_for(signum: int) -> int:
    """128 + the signal's number, as a shell reports a job a signal stopped (130 for Ctrl-C)."""
    return 128 + signum if signum else 130


def interrupt_exit_code() -> int | None:
    """128 + the signal that interrupted the guarded job, or None if none did."""
    if not _interrupted.is_set():
        return None
    return exit_code_for(_guard.signum if _guard else signal.SIGINT)


def check_interrupted(what: str) -> None:
    """Raise Interrupted if a signal arrived (for loops and threads that the handler cannot reach)."""
    if _interrupted.is_set():
        signum = _guard.signum if _guard else signal.SIGINT
        raise Interrupted(f"{what}: interrupted", exit_code=exit_code_for(signum))


def _handle(signum: int, _frame: FrameType | None) -> None:
    guard = _guard
    if guard is None:  # a signal between two guarded jobs
        raise _Stop("interrupted", exit_code_for(signum))
    guard.signals += 1
    if not guard.signum:
        guard.signum = signum
    _interrupted.set()
    cleanup = guard.cleanup
    if cleanup is not None:
        cleanup.signals += 1
        if cleanup.signals == 1:
            cleanup.warn(
                f"cleanup is under way; stopping it now would leave behind: {cleanup.describe()}. "
                "Press Ctrl-C (or send the signal) again to abandon the cleanup."
            )
            return
        raise _Stop(
            f"cleanup abandoned; left behind: {cleanup.describe()}",
            exit_code_for(guard.signum),
            hint="the next bake of this image on this target removes what a dead bake left",
        )
    with _lock:
        children = list(_live)
    if children:
        # The children clean up (Packer removes its VM); run() raises Interrupted when they exit.
        # A third signal hurries them (SIGTERM), a fourth kills them; and whatever happens, they
        # are killed CLEANUP_GRACE_SECONDS after the first, so a tool that hangs while
        # cancelling cannot keep bakery from its own cleanup.
        if guard.signals == 2:
            sys.stderr.write("note: waiting for the running tools to clean up; signal again to hurry them\n")
        sig = signal.SIGINT if guard.signals < 3 else signal.SIGTERM if guard.signals == 3 else signal.SIGKILL
        for child in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, sig)
            if guard.signals == 1:
                _deadline(child, CLEANUP_GRACE_SECONDS)
        return
    if guard.raise_in_main and not guard.raised and not _starting.is_set():
        # Bakery itself is waiting (a cloud call, a poll, a lock): break out of it now, so that
        # cleanup starts at once; PEP 475 does not restart a call whose handler raised.
        guard.raised = True
        raise _Stop(f"interrupted by signal {signal.Signals(signum).name}", exit_code_for(signum))


@contextlib.contextmanager
def signal_guard(*, raise_in_main: bool = True) -> Iterator[None]:
    """While active, SIGINT/SIGTERM/SIGHUP stop the job cleanly instead of killing bakery.

    Running children are sent SIGINT and given time to clean up; when bakery itself is waiting
    (a cloud call, a poll), Interrupted is raised into the main thread at once, unless
    `raise_in_main` is False (jobs run in worker threads, which check `check_interrupted`).
    Interrupted carries exit code 128 + the signal (130 for Ctrl-C, 143 for SIGTERM).
    """
    global _guard
    if threading.current_thread() is not threading.main_thread() or _guard is not None:
        yield  # the outermost guard decides
        return
    _interrupted.clear()
    _guard = _Guard(raise_in_main=raise_in_main)
    # SIGHUP too: a dropped SSH session must not leave Packer and its VM running unsupervised.
    previous = {s: signal.signal(s, _handle) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except _Stop as stop:
        raise Interrupted(stop.message, exit_code=stop.exit_code, hint=stop.hint) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _guard = None
        _interrupted.clear()


@contextlib.contextmanager
def cleanup_phase(describe: Callable[[], str], warn: Callable[[str], None]) -> Iterator[None]:
    """Cleanup after a failure or an interrupt: a signal no longer stops it at once. The first
    one says what stopping would leave behind (`describe()`); the next abandons the cleanup."""
    guard = _guard
    if guard is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = guard.cleanup
    guard.cleanup = _Cleanup(describe, warn)
    try:
        yield
    finally:
        guard.cleanup = previous


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
        raise Interrupted(f"{what} not started: interrupted", exit_code=_exit_code())
    started = time.monotonic()
    sink = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    child: subprocess.Popen[bytes] | None = None
    try:
        if sink:
            sink.write(f"$ {shown}\n")
            sink.flush()
        # A signal between the child's start and its registration is not raised into this frame
        # (the child would run on, unwatched); the child is told once it is registered.
        _starting.set()
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
            _starting.clear()
            raise BuildError(
                f"{what}: '{argv[0]}' is not installed or not on PATH",
                hint="run `make setup` (installs packer, qemu, mmdebstrap and the Python tools)",
            ) from None
        with _lock:
            _live.add(child)
        _starting.clear()
        if _interrupted.is_set():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGINT)
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
            if child.poll() is None:  # left early (an error in a callback): never leave it running
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            with _lock:
                _live.discard(child)
    result = Completed(tuple(argv), returncode, "\n".join(lines), time.monotonic() - started)
    if _interrupted.is_set():
        raise Interrupted(
            f"{what} interrupted; cleanup ran",
            exit_code=_exit_code(),
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


def _exit_code() -> int:
    return exit_code_for(_guard.signum if _guard else signal.SIGINT)


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
        if self._child.poll() is not None:
            return  # already gone: its process group id may belong to someone else by now
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
        """SIGTERM the child's session, SIGKILL it after `grace`. A child already reaped is never
        signalled: its process group id may belong to another process by now."""
        if self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child.pid, signal.SIGTERM)
            try:
                self.child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.child.pid, signal.SIGKILL)
                self.child.wait()
            # What the child left in its session goes too; the group id is still theirs while any lives.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child.pid, signal.SIGKILL)
        close = getattr(self._sink, "close", None)
        if close:
            close()
