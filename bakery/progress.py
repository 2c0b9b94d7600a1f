"""The one channel for progress. Services report; only the CLI decides how it looks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GroupView:
    """Where a rollout stands, for the live view: waves done, instances per state and health."""

    group: str
    step: str
    waves_done: int
    waves: int
    states: Mapping[str, int] = field(default_factory=dict)  # "web@1.0.2 serving" -> 2
    health: Mapping[str, int] = field(default_factory=dict)  # "healthy" -> 3, "unhealthy" -> 1
    percent: int | None = None  # of the instances on the new image


class Reporter(Protocol):
    def phase(self, name: str, detail: str = "") -> None:
        """A step of a job starts (resolve, render, build, verify, record)."""

    def line(self, source: str, text: str) -> None:
        """One line of a tool's output (packer, ansible, mmdebstrap)."""

    def note(self, text: str) -> None:
        """Something the user should know that is not an error."""

    def progress(self, view: GroupView) -> None:
        """Where a rollout stands now (drivers report it after each look at their group)."""


class Silent:
    """A reporter that drops everything (library use, tests)."""

    def phase(self, name: str, detail: str = "") -> None:
        pass

    def line(self, source: str, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def progress(self, view: GroupView) -> None:
        pass


class Recording(Silent):
    """Keeps what it was told (tests, JSON output)."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, str]] = []
        self.lines: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.views: list[GroupView] = []

    def phase(self, name: str, detail: str = "") -> None:
        self.phases.append((name, detail))

    def line(self, source: str, text: str) -> None:
        self.lines.append((source, text))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def progress(self, view: GroupView) -> None:
        self.views.append(view)
