"""The live view of a rollout on a terminal (plain timestamped lines elsewhere)."""

from __future__ import annotations

import sys
import time
from typing import Any

from bakery.cli.common import TerminalReporter, err
from bakery.progress import GroupView


class RolloutReporter(TerminalReporter):
    """Progress of a rollout on stderr: on a terminal, a live view (rich) of the step, the waves,
    instances per state and health; elsewhere, timestamped plain lines (logs, scheduled jobs)."""

    def __init__(self) -> None:
        super().__init__(verbose=True)
        self.tty = sys.stderr.isatty()
        # Nothing live is drawn until the question is answered (go_live): a live view would draw
        # over the prompt. Until then every line is printed as it comes.
        self._live_ok = False
        self._live: Any = None
        self._step = ""
        self._view: GroupView | None = None
        self._notes: list[str] = []

    def _stamp(self) -> str:
        return time.strftime("%H:%M:%S ", time.gmtime())

    @property
    def live(self) -> bool:
        return self.tty and self._live_ok

    def go_live(self) -> None:
        """The question, if any, is answered: from now on a terminal shows the live view."""
        self._live_ok = True

    def phase(self, name: str, detail: str = "") -> None:
        self._step = f"{name}: {detail}" if detail else name
        if self.live:
            self._show()
        else:
            err(f"{self._stamp()}==> {self._step}")

    def note(self, text: str) -> None:
        if self.live:
            self._notes = [*self._notes[-5:], text]
            self._show()
        else:
            err(f"{self._stamp()}    {text}")

    def line(self, source: str, text: str) -> None:
        self.note(f"{source}: {text}")

    def progress(self, view: GroupView) -> None:
        self._view = view
        if self.live:
            self._show()
        else:
            super().progress(view)

    def _show(self) -> None:
        from rich.console import Console, Group
        from rich.live import Live
        from rich.table import Table
        from rich.text import Text

        if self._live is None:
            self._live = Live(console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.start()
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("instances")
        table.add_column("count", justify="right")
        view = self._view
        for state, count in sorted((view.states if view else {}).items()):
            table.add_row(state, str(count))
        head = Text(f"==> {self._step}", style="bold")
        waves = (
            Text(
                f"waves {view.waves_done}/{view.waves}"
                + (f"  {view.percent}% on the new image" if view.percent is not None else "")
                + "  health: "
                + (", ".join(f"{n} {h}" for h, n in sorted(view.health.items())) or "-")
            )
            if view
            else Text("")
        )
        notes = Text("\n".join(f"  {n}" for n in self._notes), style="dim")
        self._live.update(Group(head, waves, table, notes))

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
