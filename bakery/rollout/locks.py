"""One rollout of a group at a time on this machine: a lock file held for the whole rollout, with
the holder written beside it so that a second rollout can name the first (which, who, where, since)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bakery.errors import BakeryError, RolloutRefused
from bakery.steps import now


@contextmanager
def held(path: Path, group: str, rollout_id: str, who: str) -> Iterator[None]:
    """Hold `path` for the block, or raise RolloutRefused naming the holder. The kernel releases
    the lock when its process dies, however it dies, so a killed rollout never blocks the next."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            raise RolloutRefused(
                f"another rollout of {group} is running: {holder}",
                hint=f"wait for it to finish (bakery status {group}); one group never runs two rollouts",
            ) from None
        except OSError as exc:
            raise BakeryError(f"cannot lock {path}: {exc.strerror}") from None
        owner = {"rollout": rollout_id, "who": who, "host": socket.gethostname(), "pid": os.getpid(), "since": now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        owner = {}
    if not owner:
        return "its holder did not say who it is"
    return (
        f"{owner.get('rollout', '?')} by {owner.get('who', '?')} on {owner.get('host', '?')} "
        f"(pid {owner.get('pid', '?')}) since {owner.get('since', '?')}"
    )


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


def refuse_held(path: Path, group: str) -> None:
    """RolloutRefused naming who holds `path`, the lock of `group`, when anyone does."""
    held_by = holder(path)
    if held_by is not None:
        raise RolloutRefused(
            f"another rollout of {group} is running: {held_by}",
            hint=f"wait for it to finish (bakery status {group}); one group never runs two rollouts",
        )
