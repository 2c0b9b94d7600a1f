"""`bakery rollout GROUP` at a terminal, in a real pseudo-terminal: the question comes plainly and
first, nothing live is drawn before it is answered; `n` changes nothing, Ctrl-C and Ctrl-D at the
prompt neither; `y` runs the rollout with its live view to its last frame."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from tests.fakes.driver import FakeDriver

PROMPT = b"[y/N]"


class Terminal:
    """A pseudo-terminal the CLI runs on (stdin, stdout and stderr), and a reader of its screen
    that answers the question once it is shown."""

    def __init__(self, answer: bytes | None, *, interrupt: bool = False) -> None:
        self.master, slave = os.openpty()
        self.files = [os.fdopen(os.dup(slave), mode, buffering=1) for mode in ("r", "w", "w")]
        os.close(slave)
        self.answer, self.interrupt = answer, interrupt
        self.screen = bytearray()
        self.asked_at: int | None = None  # how much of the screen there was when the prompt showed
        self._main = threading.get_ident()
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            self.screen += chunk
            if self.asked_at is None and PROMPT in self.screen:
                self.asked_at = self.screen.index(PROMPT)
                time.sleep(0.2)  # what a person takes to read it: anything drawn meanwhile shows
                if self.interrupt:
                    signal.pthread_kill(self._main, signal.SIGINT)  # Ctrl-C, as the terminal delivers it
                elif self.answer is not None:
                    os.write(self.master, self.answer)

    def run(self, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
        from bakery.cli.app import app

        stdin, stdout, stderr = self.files
        self._reader.start()
        code = 0
        with monkeypatch.context() as patched:
            patched.setattr(sys, "stdin", stdin)
            patched.setattr(sys, "stdout", stdout)
            patched.setattr(sys, "stderr", stderr)
            try:
                returned = app(args=list(args), standalone_mode=False)  # an Exit's code, without standalone mode
                code = returned if isinstance(returned, int) else 0
            except SystemExit as exc:
                code = int(exc.code or 0)
            except Exception as exc:  # click's Abort (Ctrl-C, Ctrl-D) and Exit
                code = int(getattr(exc, "exit_code", 1))
            finally:
                for handle in self.files:
                    handle.flush()
        time.sleep(0.3)  # the reader drains what was written last
        self._done.set()
        for handle in self.files:
            handle.close()
        os.close(self.master)
        return code, self.screen.decode(errors="replace")


def before_the_question(terminal: Terminal) -> str:
    assert terminal.asked_at is not None, terminal.screen.decode(errors="replace")
    return terminal.screen[: terminal.asked_at].decode(errors="replace")


@pytest.mark.parametrize(("answer", "interrupt"), [(b"n\n", False), (b"\x04", False), (None, True)])
def test_the_question_comes_first_and_anything_but_yes_changes_nothing(
    world: FakeDriver, monkeypatch: pytest.MonkeyPatch, answer: bytes | None, interrupt: bool
) -> None:
    terminal = Terminal(answer, interrupt=interrupt)
    code, screen = terminal.run(monkeypatch, "rollout", "web-local")
    shown = before_the_question(terminal)
    assert "rollout web-local to web@1.0.2? [y/N]" in screen
    assert "\x1b[?25l" not in shown and "\x1b[2K" not in shown  # no live view (cursor hidden, lines redrawn)
    assert code != 0
    assert world.runs("web-local") == {"web@1.0.0": 2}
    assert world.group("web-local").history == []


def test_yes_runs_the_rollout_with_its_live_view_to_its_last_frame(
    world: FakeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal(b"y\n")
    code, screen = terminal.run(monkeypatch, "rollout", "web-local")
    shown = before_the_question(terminal)
    assert "\x1b[?25l" not in shown and "==> " not in shown
    assert code == 0, screen
    after = screen[screen.index("[y/N]") :]
    assert "\x1b[?25l" in after  # the live view started once the question was answered
    assert "waves 2/2" in after and "100% on the new image" in after  # its last frame
    assert "now runs web@1.0.2" in after
    assert world.runs("web-local") == {"web@1.0.2": 2}
