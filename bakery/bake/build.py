"""Packer's run for one bake: secrets in its environment only, a TMPDIR of its own, its
machine-readable lines parsed into events and shown through the reporter."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from bakery import packer, runner
from bakery.bake.preview import refuse_preview
from bakery.config.secrets import ansible_env
from bakery.progress import Reporter


def run_packer(
    directory: Path,
    workdir: Path,
    log_path: Path,
    secrets: dict[str, str],
    reporter: Reporter,
    observe: Callable[[str], None] | None = None,
) -> list[packer.Event]:
    """`packer build` of the rendered `directory` in `workdir`, logged to `log_path` (secrets
    masked); `observe` sees every line. Returns Packer's events. Raises BuildError, or UsageError
    for a preview render (bakery render --offline), which is never built."""
    refuse_preview(directory)
    events: list[packer.Event] = []

    def on_line(line: str) -> None:
        if observe is not None:
            observe(line)
        event = packer.parse_line(line)
        if event is None:
            reporter.line("packer", line)
            return
        events.append(event)
        text = packer.ui_text(event)
        if text is not None:
            for part in text.splitlines() or [""]:
                reporter.line("packer", part)

    # Secrets travel in Packer's environment, which its ansible provisioner hands on to
    # ansible-playbook: never on a command line or in the rendered directory.
    env = ansible_env(secrets)
    env["PACKER_NO_COLOR"] = "1"
    # Packer leaves inventories and logs in TMPDIR when cancelled: give it one of its own, and a
    # short path, since its plugins listen on unix sockets there (108 characters at most).
    tmp = tempfile.mkdtemp(prefix="bakery-")
    env["TMPDIR"] = tmp
    try:
        runner.run(
            packer.build_argv(directory),
            what="packer build",
            cwd=workdir,
            env=env,
            log_path=log_path,
            on_line=on_line,
            secrets=tuple(secrets.values()),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return events
