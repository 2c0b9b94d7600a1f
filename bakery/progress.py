"""The one channel for progress. Services report; only the CLI decides how it looks."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def phase(self, name: str, detail: str = "") -> None:
        """A step of a job starts (resolve, render, build, verify, record)."""

    def line(self, source: str, text: str) -> None:
        """One line of a tool's output (packer, ansible, mmdebstrap)."""

    def note(self, text: str) -> None:
        """Something the user should know that is not an error."""


class Silent:
    """A reporter that drops everything (library use, tests)."""

    def phase(self, name: str, detail: str = "") -> None:
        pass

    def line(self, source: str, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class Recording(Silent):
    """Keeps what it was told (tests, JSON output)."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, str]] = []
        self.lines: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def phase(self, name: str, detail: str = "") -> None:
        self.phases.append((name, detail))

    def line(self, source: str, text: str) -> None:
        self.lines.append((source, text))

    def note(self, text: str) -> None:
        self.notes.append(text)
