"""One job of a kind at a time on this machine (a group's rollout, `prune --yes`): a lock file
held for the whole job, with its holder written into it so that a second job can name the first
(what, who, where, pid, since). The kernel releases the lock when its process dies, however it
dies, so a killed job never blocks the next one."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bakery.errors import BakeryError
from bakery.steps import now

_MAX_HOLDER_BYTES = 4096  # what a holder writes is a few hundred bytes; more is not a holder's


@contextmanager
def held(path: Path, what: str, who: str, refuse: Callable[[str], BakeryError]) -> Iterator[None]:
    """Hold `path` for the block as `what` (run by `who`), or raise refuse(holder) where holder
    names the job that holds it ("r-0abc by ops@build-1 on host (pid 42) since ...")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise refuse(_holder(path)) from None
        except OSError as exc:
            raise BakeryError(f"cannot lock {path}: {exc.strerror}") from None
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
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    """The holder as its file says, every field checked: the file is anyone's to write."""
    try:
        with path.open("rb") as handle:
            owner = json.loads(handle.read(_MAX_HOLDER_BYTES + 1)[:_MAX_HOLDER_BYTES] or b"{}")
    except (OSError, ValueError):
        owner = {}
    if not isinstance(owner, dict) or not owner:
        return "its holder did not say who it is"

    def field(*keys: str) -> str:
        value = next((owner[k] for k in keys if k in owner), "?")
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else "?"
        return "".join(c if c.isprintable() else "?" for c in text[:200])

    # "rollout": what a rollout's lock file said before the lock served other jobs
    return (
        f"{field('what', 'rollout')} by {field('who')} on {field('host')} (pid {field('pid')}) since {field('since')}"
    )
