"""The bakery command line: one typer app, its commands grouped by topic under help panels.

Each topic module (project, images, groups, trust) defines plain command functions; they are registered
here, in one place, in the order `bakery --help` lists them. Nothing registers itself on import.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from bakery import __version__
from bakery.cli import channels, groups, images, imagetests, project, prune, report, sbom, scan, trust


class PanelGroup(TyperGroup):
    """Plain-text help with the commands under their panel's heading (Images, Groups, Trust), each
    with its whole one-sentence summary (click's default cuts summaries at 45 characters)."""

    # Any: typer takes click's Context and HelpFormatter, from click or (typer 0.29+) its own copy of it.
    def format_commands(self, ctx: Any, formatter: Any) -> None:
        panels: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            panel = getattr(command, "rich_help_panel", None) or "Commands"
            panels.setdefault(panel, []).append((name, summary(command)))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)


def summary(command: Any) -> str:
    """The first paragraph of a command's help, on one line."""
    text: str = command.short_help or (command.help or "").split("\n\n", 1)[0]
    return " ".join(text.split())


app = typer.Typer(
    name="bakery",
    help="Bake golden VM images from images.yaml with Packer and Ansible, with provenance.",
    cls=PanelGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain text: help, usage errors and messages read the same everywhere
)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print bakery's version and exit."),
) -> None:
    if version:
        sys.stdout.write(f"bakery {__version__}\n")
        raise typer.Exit(0)


def _register(panel: str, commands: tuple[Any, ...]) -> None:
    for command in commands:
        app.command(rich_help_panel=panel)(command)


_register(
    "Images",
    (*project.COMMANDS, *images.COMMANDS, *imagetests.COMMANDS, *sbom.COMMANDS, *scan.COMMANDS, *prune.COMMANDS),
)
_register("Groups", groups.COMMANDS)
_register("Channels", channels.COMMANDS)
_register("Trust", trust.COMMANDS)
for name, sub in trust.SUBCOMMANDS:
    app.add_typer(sub, name=name, rich_help_panel="Trust")
_register("Estate", report.COMMANDS)


def main() -> None:
    app()
