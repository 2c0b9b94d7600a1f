"""One rollout of a group at a time on this machine: the group's lock file (bakery/core/locks.py)
held for the whole rollout, so that a second rollout is refused naming the first (which, who,
where, since)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bakery.core import locks
from bakery.core.locks import holder as holder  # who holds a group's lock, for `bakery status`
from bakery.errors import RolloutRefused


@contextmanager
def held(path: Path, group: str, rollout_id: str, who: str) -> Iterator[None]:
    """Hold `path` for the block, or raise RolloutRefused naming the holder."""
    with locks.held(path, rollout_id, who, lambda by: _refused(group, by)):
        yield


def refuse_held(path: Path, group: str) -> None:
    """RolloutRefused naming who holds `path`, the lock of `group`, when anyone does."""
    held_by = holder(path)
    if held_by is not None:
        raise _refused(group, held_by)


def _refused(group: str, by: str) -> RolloutRefused:
    return RolloutRefused(
        f"another rollout of {group} is running: {by}",
        hint=f"wait for it to finish (bakery status {group}); one group never runs two rollouts",
    )
