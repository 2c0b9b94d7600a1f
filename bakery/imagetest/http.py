"""Waiting for a test instance to answer, and its HTTP checks.

A check waits while nothing answers (nginx may start after SSH does), until the boot deadline;
the first answer is the verdict: a 500 is judged at once, never waited out.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from bakery import runner
from bakery.config.imagetests import HttpCheck
from bakery.errors import Interrupted
from bakery.imagetest.base import Reach

BODY_READ_MAX = 1024 * 1024  # what a check reads of a body: a page, not a download
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


@dataclass(frozen=True)
class CheckResult:
    check: HttpCheck
    ok: bool
    detail: str  # 'answered 200' or what went wrong: 'answered 500 (expected 200): <body start>'

    @property
    def name(self) -> str:
        return self.check.name


def judge(check: HttpCheck, answer: Answer) -> CheckResult:
    """Whether `answer` passes `check` (pure)."""
    start = " ".join(answer.body[:120].split())
    if answer.status != check.status:
        return CheckResult(check, False, f"answered {answer.status} (expected {check.status}): {start!r}")
    if check.body is not None and re.search(check.body, answer.body) is None:
        return CheckResult(
            check, False, f"answered {answer.status}, but the body does not match {check.body!r}: {start!r}"
        )
    return CheckResult(check, True, f"answered {answer.status}")


def fetch(url: str, timeout: float = 10.0) -> Answer:
    """GET `url`; an HTTP error status is an answer too. Raises OSError when nothing answers."""
    request = urllib.request.Request(url, headers={"User-Agent": "bakery-imagetest"})
    # No proxy: the instance is reached directly, as the test names it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, response.read(BODY_READ_MAX).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        with contextlib.closing(exc):
            return Answer(exc.code, exc.read(BODY_READ_MAX).decode("utf-8", "replace"))


def url_of(reach: Reach, check: HttpCheck) -> str:
    host = f"[{reach.host}]" if ":" in reach.host else reach.host
    return f"http://{host}:{reach.port(check.port)}{check.path}"


def run_check(
    check: HttpCheck, reach: Reach, deadline: float, *, alive: Callable[[], bool], get: Callable[[str], Answer] = fetch
) -> CheckResult:
    """`check` against the instance, retried while nothing answers, until `deadline` (monotonic)."""
    url = url_of(reach, check)
    last = "nothing answered"
    while True:
        _interrupted()
        try:
            return judge(check, get(url))
        except (OSError, urllib.error.URLError, ValueError) as exc:  # refused, reset, timed out
            last = str(getattr(exc, "reason", exc)) or type(exc).__name__
        if not alive():
            return CheckResult(check, False, f"the instance stopped before {url} answered ({last})")
        if time.monotonic() + POLL_SECONDS > deadline:
            return CheckResult(check, False, f"no answer from {url} before the boot deadline ({last})")
        time.sleep(POLL_SECONDS)


def ssh_answers(host: str, port: int, timeout: float = 5.0) -> bool:
    """Whether an SSH server answers on host:port with its banner (a port QEMU forwards accepts
    connections before the guest listens: only the banner says sshd is up)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(255).startswith(b"SSH-")
    except OSError:
        return False


def wait_for_ssh(
    reach: Reach, deadline: float, *, alive: Callable[[], bool], answers: Callable[[str, int], bool] = ssh_answers
) -> str | None:
    """None once SSH answers; else why it did not before `deadline` (monotonic)."""
    if reach.local:
        return None
    while True:
        _interrupted()
        if answers(reach.host, reach.ssh_port):
            return None
        if not alive():
            return f"the instance stopped before SSH answered on {reach.host}:{reach.ssh_port}"
        if time.monotonic() + POLL_SECONDS > deadline:
            return f"SSH did not answer on {reach.host}:{reach.ssh_port} before the boot deadline"
        time.sleep(POLL_SECONDS)


def _interrupted() -> None:
    if runner.interrupted():
        raise Interrupted("test interrupted; its instance is removed")
