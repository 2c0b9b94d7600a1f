"""One job of a kind at a time (bakery/core/locks.py): a job that finds the lock taken is refused
naming the job that holds it; a look at who holds it (`bakery status`, a prune's dry run) never
makes a job that takes the lock at that moment refused as held by a nameless holder, and a job
that has just taken it is named once it says who it is. Each interleaving is made step by step
with events, in two threads (each with its own open file, as two processes would have)."""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bakery.core import locks
from bakery.errors import BakeryError

STEP = 10.0  # seconds a step may take before the test gives up waiting for it (never reached)


class Refused(BakeryError):
    pass


def refuse(by: str) -> BakeryError:
    return Refused(f"another job is running: {by}")


def named(what: str, who: str) -> str:
    return f"{what} by {who} on {socket.gethostname()} (pid {os.getpid()}) since "


class Other(threading.Thread):
    """A second job, run in a thread until its step is done; what it raises is kept."""

    def __init__(self, step: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.step = step
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.step()
        except BaseException as exc:  # handed back to the test
            self.error = exc


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "locks" / "prune.lock"


def test_a_job_is_refused_naming_the_job_that_holds_the_lock(lock: Path) -> None:
    with locks.held(lock, "bakery prune --yes", "ops@build-1", refuse):
        with pytest.raises(Refused) as refused, locks.held(lock, "r-0abc", "dev@laptop", refuse):
            pass
        assert str(refused.value.message).startswith(
            "another job is running: " + named("bakery prune --yes", "ops@build-1")
        )
        assert (locks.holder(lock) or "").startswith(named("bakery prune --yes", "ops@build-1"))
    assert locks.holder(lock) is None
    with locks.held(lock, "r-0abc", "dev@laptop", refuse):  # let go: the next job takes it
        pass


def test_a_look_at_who_holds_the_lock_does_not_refuse_a_job_taking_it_at_that_moment(
    lock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock.parent.mkdir(parents=True)
    lock.touch()
    looking, may_let_go, let_go = threading.Event(), threading.Event(), threading.Event()
    real = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        real(fd, operation)
        if threading.current_thread() is looker:
            if operation & fcntl.LOCK_SH:
                looking.set()  # the look holds the lock, shared, this moment
                may_let_go.wait(STEP)
            elif operation == fcntl.LOCK_UN:
                let_go.set()

    def pause() -> None:  # the job, refused once, waits for the look to let go
        may_let_go.set()
        let_go.wait(STEP)

    monkeypatch.setattr(locks.fcntl, "flock", flock)
    monkeypatch.setattr(locks, "_pause", pause, raising=False)
    looker = Other(lambda: locks.holder(lock))
    looker.start()
    assert looking.wait(STEP)
    try:
        with locks.held(lock, "bakery prune --yes", "ops@build-1", refuse):
            assert may_let_go.is_set()  # it did meet the look
            assert (locks.holder(lock) or "").startswith(named("bakery prune --yes", "ops@build-1"))
    finally:
        may_let_go.set()
        looker.join(STEP)
    assert looker.error is None and looker.result is None  # nobody held it when it looked


def test_a_job_that_has_just_taken_the_lock_is_named_once_it_says_who_it_is(
    lock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken, say, said, done = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    real_now = locks.now

    def now() -> str:
        if threading.current_thread() is first:  # it holds the lock and has not written who it is
            taken.set()
            say.wait(STEP)
        return real_now()

    def pause() -> None:  # the second job, refused once by a nameless holder, lets it say who it is
        say.set()
        said.wait(STEP)

    def job() -> None:
        with locks.held(lock, "r-0abc", "ops@build-1", refuse):
            said.set()
            done.wait(STEP)

    monkeypatch.setattr(locks, "now", now)
    monkeypatch.setattr(locks, "_pause", pause, raising=False)
    first = Other(job)
    first.start()
    try:
        assert taken.wait(STEP)
        with pytest.raises(Refused) as refused, locks.held(lock, "r-0def", "dev@laptop", refuse):
            pass
        assert str(refused.value.message).startswith("another job is running: " + named("r-0abc", "ops@build-1"))
    finally:
        say.set()
        done.set()
        first.join(STEP)
    assert first.error is None


def test_a_holder_that_never_says_who_it_is_is_refused_as_such_after_a_few_tries(
    lock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock.parent.mkdir(parents=True)
    pauses: list[None] = []
    monkeypatch.setattr(locks, "_pause", lambda: pauses.append(None), raising=False)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another program would, writing nothing
        with pytest.raises(Refused) as refused, locks.held(lock, "r-0abc", "ops@build-1", refuse):
            pass
        assert refused.value.message == "another job is running: its holder did not say who it is"
        assert locks.holder(lock) == "its holder did not say who it is"
    finally:
        os.close(fd)
    assert 0 < len(pauses) < 200  # it gave up, after a bounded number of tries
    with locks.held(lock, "r-0abc", "ops@build-1", refuse):
        pass
