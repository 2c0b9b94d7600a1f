"""One job of a kind at a time on this machine (a group's rollout, `prune --yes`): a lock file
held for the whole job, with its holder written into it so that a second job can name the first
(what, who, where, pid, since). The kernel releases the lock when its process dies, however it
dies, so a killed job never blocks the next one.

Taking the lock and naming its holder both go through flock: `holder()` takes it shared for a
moment, and a job writes who it is just after it takes it. Either one, met by a job that finds the
lock taken by a holder that does not say who it is yet, is waited for a little (tried again,
`_TRIES` times) rather than refused as a nameless holder."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bakery.errors import BakeryError
from bakery.steps import now

_MAX_HOLDER_BYTES = 4096  # what a holder writes is a few hundred bytes; more is not a holder's
_SILENT = "its holder did not say who it is"
_TRIES = 50  # to take a lock held by a holder that does not say who it is yet
_PAUSE = 0.02  # seconds between those tries: a second in all, ample for a write or a look


@contextmanager
def held(path: Path, what: str, who: str, refuse: Callable[[str], BakeryError]) -> Iterator[None]:
    """Hold `path` for the block as `what` (run by `who`), or raise refuse(holder) where holder
    names the job that holds it ("r-0abc by ops@build-1 on host (pid 42) since ...")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            by = _take(fd, path, fcntl.LOCK_EX)
        except OSError as exc:
            raise BakeryError(f"cannot lock {path}: {exc.strerror}") from None
        if by is not None:
            raise refuse(by)
        owner = {"what": what, "who": who, "host": socket.gethostname(), "pid": os.getpid(), "since": now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def holder(path: Path) -> str | None:
    """Who holds `path` now (as `held` words it), or None when nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        by = _take(fd, path, fcntl.LOCK_SH)
        if by is None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return by
    finally:
        os.close(fd)


def _take(fd: int, path: Path, mode: int) -> str | None:
    """Take the lock on `fd` in `mode` without blocking: None once taken, else who holds it. A
    holder that does not say who it is is tried again: it may be a job that has just taken the lock
    (it writes who it is next), or a look by `holder()` (which lets go at once)."""
    tries = 1
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            by = _holder(path)
            if by != _SILENT or tries >= _TRIES:
                return by
        tries += 1
        _pause()


def _pause() -> None:
    time.sleep(_PAUSE)


def _holder(path: Path) -> str:
    """The holder as its file says, every field checked: the file is anyone's to write."""
    try:
        with path.open("rb") as handle:
            owner = json.loads(handle.read(_MAX_HOLDER_BYTES + 1)[:_MAX_HOLDER_BYTES] or b"{}")
    except (OSError, ValueError):
        owner = {}
    if not isinstance(owner, dict) or not owner:
        return _SILENT

    def field(*keys: str) -> str:
        value = next((owner[k] for k in keys if k in owner), "?")
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else "?"
        return "".join(c if c.isprintable() else "?" for c in text[:200])

    # "rollout": what a rollout's lock file said before the lock served other jobs
    return (
        f"{field('what', 'rollout')} by {field('who')} on {field('host')} (pid {field('pid')}) since {field('since')}"
    )
