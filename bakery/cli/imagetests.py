"""The image-test command: `bakery test IMAGE@VERSION --target T`; and how `build` shows the tests
that ran after its bake."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from bakery.cli.common import (
    FileOpt,
    JsonOpt,
    TargetOpt,
    TerminalReporter,
    emit,
    err,
    handled,
    project_of,
    workspace_of,
)
from bakery.errors import EXIT_FAILED


@handled
def test(
    ref: str = typer.Argument(..., metavar="IMAGE[@VERSION]", help="Image to test (its newest version when none)."),
    target: str = TargetOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show phases and results only, not Ansible's output."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Boot a test instance of a recorded image, run its tests (playbooks, HTTP checks), remove it.

    The instance gets an SSH key made for this test and is removed whatever happens (failure,
    Ctrl-C, SIGTERM). The result is signed into the registry; `bakery verify` shows it.
    Exit 0 when every test passed, 1 when one failed."""
    from bakery.imagetest.service import Tester

    project = project_of(file)
    result = Tester(project, workspace_of(project), TerminalReporter(verbose=not quiet)).test(ref, target)
    emit("test", result, as_json=as_json, text=lambda: run_text(result))
    if not result.ok:
        err(
            f"error: tests of {result.ref} on {result.target} failed ({len(result.failed)} of "
            f"{len(result.failed) + len(result.passed)})"
        )
        raise typer.Exit(EXIT_FAILED)


def run_text(run: Any) -> str:
    """A test run as people read it: the verdict, each failed test, where the result is kept."""
    counts = f"{len(run.passed)} passed, {len(run.failed)} failed"
    lines = [f"tests of {run.ref} on {run.target}: {run.result.upper()} ({counts}) in {run.seconds:.0f}s"]
    lines += [f"  FAILED {name}" for name in run.failed]
    lines += [f"  instance: {run.instance} (removed)", f"  signed result: {run.stored}"]
    return "\n".join(lines)


def build_payload(tested: Any) -> dict[str, Any]:
    """`build --json`: the bake's result, and its tests' (null when none ran, with why)."""
    tests = dataclasses.asdict(tested.tests) if tested.tests is not None else None
    return {**dataclasses.asdict(tested.build), "tests": tests, "untested": tested.untested}


def build_text(tested: Any) -> str:
    """What `build` prints: the bake, then its tests."""
    result, rec = tested.build, tested.build.record
    if result.skipped:
        head = f"up to date: {rec.ref} on {rec.target} has the same inputs digest {result.inputs_digest}"
    else:
        head = (
            f"baked {rec.ref} on {rec.target} in {result.seconds:.0f}s\n  inputs digest: {result.inputs_digest}\n"
            f"  location: {', '.join(rec.locations)}\n  log: {result.log_path}"
        )
    if tested.tests is None:
        return f"{head}\n  tests: none ran ({tested.untested})"
    return head + "\n  " + run_text(tested.tests).replace("\n", "\n  ")


def refuse_failed(tested: Any) -> None:
    """Exit 1, naming each failed test on stderr, when the tests after a bake failed."""
    if tested.tests is not None and not tested.tests.ok:
        from bakery.imagetest.bake import failure_of

        failure = failure_of(tested.tests)
        err(f"error: {failure.message}\nhint: {failure.hint}")
        raise typer.Exit(EXIT_FAILED)


COMMANDS = (test,)
