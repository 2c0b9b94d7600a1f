"""What every command module shares: the common options, the one way a result is printed (text,
or JSON with a schema version), the one place a BakeryError becomes a message and an exit code,
and the terminal reporter that shows progress on stderr.

Progress and errors go to stderr; results go to stdout, so `--json` output pipes cleanly.
Exit codes: 0 ok, 1 a job failed, 2 usage or configuration error.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from bakery.errors import BakeryError, BuildError, TrustError

SCHEMA_VERSION = 1
F = TypeVar("F", bound=Callable[..., Any])

FileOpt = typer.Option(None, "--file", "-f", help="images.yaml to use (default: ./images.yaml, or $BAKERY_CONFIG).")
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
TargetOpt = typer.Option(..., "--target", "-t", help="Target name from images.yaml.")


def err(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except OSError:
        pass  # the terminal is gone (SIGHUP after a dropped session): the job still cleans up


def emit(kind: str, payload: Any, *, as_json: bool, text: Callable[[], str]) -> None:
    if as_json:
        body = dataclasses.asdict(payload) if dataclasses.is_dataclass(payload) else payload  # type: ignore[arg-type]
        sys.stdout.write(
            json.dumps(
                {"schema_version": SCHEMA_VERSION, "kind": kind, **_plain(body)},
                indent=2,
                ensure_ascii=False,
                default=str,
            )
            + "\n"
        )
    else:
        sys.stdout.write(text() + "\n")


def _plain(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else {"result": body}


def handled(func: F) -> F:
    """Turn a BakeryError into its message on stderr and its exit code; nothing else is caught."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BakeryError as exc:
            as_json = bool(kwargs.get("as_json"))
            _report_error(exc, as_json=as_json)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _report_error(exc: BakeryError, *, as_json: bool) -> None:
    lines = [f"error: {exc.message}"]
    if isinstance(exc, TrustError):
        lines += [f"  - {problem}" for problem in exc.problems if problem != exc.message]
    if isinstance(exc, BuildError) and exc.tail:
        lines.append("last lines of output:")
        lines += [f"  | {line}" for line in exc.tail[-20:]]
    if isinstance(exc, BuildError) and exc.log_path:
        lines.append(f"full log: {exc.log_path}")
    if exc.hint:
        lines.append(f"hint: {exc.hint}")
    err("\n".join(lines))
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "schema_version": SCHEMA_VERSION,
                    "kind": "error",
                    "error": exc.message,
                    "exit_code": exc.exit_code,
                    "hint": exc.hint,
                    "log": getattr(exc, "log_path", None),
                    **({"details": exc.details} if exc.details else {}),
                    **({"problems": list(exc.problems)} if isinstance(exc, TrustError) else {}),
                },
                indent=2,
            )
            + "\n"
        )


class TerminalReporter:
    """Progress on stderr: a line per phase, tool output indented beneath it."""

    def __init__(self, *, verbose: bool = True) -> None:
        self.verbose = verbose

    def phase(self, name: str, detail: str = "") -> None:
        err(f"==> {name}: {detail}" if detail else f"==> {name}")

    def line(self, source: str, text: str) -> None:
        if self.verbose:
            err(f"    {source:>7} | {text}")

    def note(self, text: str) -> None:
        err(f"    note: {text}")

    def progress(self, view: Any) -> None:
        states = ", ".join(f"{n} {s}" for s, n in sorted(view.states.items()))
        health = ", ".join(f"{n} {h}" for h, n in sorted(view.health.items()))
        err(f"    {view.group}: wave {view.waves_done}/{view.waves}; {states or 'no instances'}; {health or '-'}")


def project_of(file: Path | None) -> Any:
    from bakery.config import load as config

    return config.load(config.find_config(str(file) if file else None))


def workspace_of(project: Any) -> Any:
    from bakery.workspace import Workspace

    return Workspace.for_project(project.root)
