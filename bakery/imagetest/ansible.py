"""Test playbooks, run by ansible-runner against the test instance, judged from its events.

ansible-runner prepares the run: `RunnerConfig.prepare()` builds the ansible-playbook command, its
inventory and the environment that loads its event callback. The process itself is started by
`bakery.runner.run`, bakery's one door for processes, and not by `ansible_runner.run()`: that
function starts ansible-playbook itself (through pexpect) with bakery's whole environment, outside
the signal handling that stops every child of an interrupted job and outside the masking of the
log. So the door runs the command in a cleaned environment (only what ansible-runner added to it
passes), and each line it streams goes through ansible-runner's own `OutputEventFilter` and
`Runner.event_callback`, which decode the events the callback embeds in the output, merge what it
wrote beside them, and hand each whole event to `Tally`: results per task and per host, and each
failure as host, task and message.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery import runner
from bakery.imagetest.base import Reach
from bakery.progress import Reporter

MESSAGE_MAX = 400
# The events of a task's end on one host (a loop's items end in runner_item_* events first, and
# the task's own event follows with the verdict on them all).
OK = "runner_on_ok"
FAILED_EVENTS = ("runner_on_failed", "runner_on_async_failed")
UNREACHABLE = "runner_on_unreachable"
SKIPPED = "runner_on_skipped"
_EMBEDDED = re.compile(r"\x1b\[K.*?\x1b\[K")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Failure:
    host: str
    task: str
    message: str

    def __str__(self) -> str:
        return f"{self.host}: task '{self.task}' failed: {self.message}"


@dataclass(frozen=True)
class PlaybookResult:
    playbook: str
    passed: tuple[str, ...]  # "<playbook>: <task> [<host>]" of each task that ended ok
    failures: tuple[Failure, ...]
    returncode: int

    @property
    def ok(self) -> bool:
        return not self.failures and self.returncode == 0

    def failed_tests(self) -> list[str]:
        named = [f"{self.playbook}: {f.task} [{f.host}]: {f.message}" for f in self.failures]
        if not named and self.returncode != 0:  # a syntax error, a missing role: no task ran
            named.append(f"{self.playbook}: ansible-playbook exited {self.returncode} before any task failed")
        return named


@dataclass
class Tally:
    """Results per task and host, from ansible-runner's event dicts (as `Runner.event_callback`
    hands them on, or as they lie in artifacts/<ident>/job_events/*.json)."""

    playbook: str
    passed: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def __call__(self, event: Mapping[str, Any]) -> bool:
        """Take one event; True: ansible-runner keeps it in the artifacts."""
        kind = event.get("event")
        data = event.get("event_data")
        if not isinstance(kind, str) or not isinstance(data, Mapping):
            return True
        host = _text(data.get("host") or data.get("remote_addr") or "?")
        task = _text(data.get("task") or data.get("task_action") or "?")
        found = data.get("res")
        result: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        if kind == OK:
            self.passed.append(f"{self.playbook}: {task} [{host}]")
        elif kind in FAILED_EVENTS and not data.get("ignore_errors"):
            self.failures.append(Failure(host, task, message_of(result)))
        elif kind == UNREACHABLE:
            self.failures.append(Failure(host, task, "unreachable: " + message_of(result)))
        return True

    def result(self, returncode: int) -> PlaybookResult:
        return PlaybookResult(self.playbook, tuple(self.passed), tuple(self.failures), returncode)


def message_of(result: Mapping[str, Any]) -> str:
    """What a failed task said, on one line: its msg, else the end of its stderr or stdout. It
    comes from the instance: control characters go, and it is cut to MESSAGE_MAX characters."""
    parts = [result.get("msg"), result.get("stderr"), result.get("stdout")]
    if result.get("rc") not in (None, 0):
        parts.append(f"rc={result.get('rc')}")
    found = [_text(p) for p in parts if isinstance(p, str | int) and str(p).strip()]
    text = " | ".join(dict.fromkeys(found)) or "no message"
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def _text(value: object) -> str:
    return " ".join(_CONTROL.sub(" ", str(value)).split())


def inventory(name: str, reach: Reach, private_key: Path, known_hosts: Path) -> dict[str, Any]:
    """The one-host inventory of a test instance (pure; written as JSON, which YAML reads)."""
    if reach.local:  # a stand-in on this machine (tests): Ansible's local connection, this Python
        host: dict[str, Any] = {"ansible_connection": "local", "ansible_python_interpreter": reach.python}
    else:
        host = {
            "ansible_host": reach.host,
            "ansible_port": reach.ssh_port,
            "ansible_user": reach.user,
            "ansible_ssh_private_key_file": str(private_key),
            # The instance made its host key at its first boot: nobody can know it before; it is
            # accepted once into a file of this test alone, and holds for every later connection.
            "ansible_ssh_common_args": (
                f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={known_hosts} "
                "-o IdentitiesOnly=yes -o ConnectTimeout=20"
            ),
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_become": reach.user != "root",
        }
    return {"all": {"hosts": {name: host}}}


def run_playbook(
    playbook: str,
    *,
    project_root: Path,
    host: str,
    reach: Reach,
    workdir: Path,
    extravars: Mapping[str, Any],
    reporter: Reporter,
    log: Callable[[str], None] | None = None,
) -> PlaybookResult:
    """Run `playbook` (a path inside `project_root`) against the test instance; its result per
    task and host. Raises BuildError when ansible-playbook cannot be started, Interrupted on a
    signal (the door stops it)."""
    from ansible_runner import Runner, RunnerConfig
    from ansible_runner.utils import OutputEventFilter

    private = workdir / f"runner-{re.sub(r'[^A-Za-z0-9]+', '-', playbook).strip('-')}"
    (private / "env").mkdir(parents=True, exist_ok=True)
    (private / "inventory").mkdir(exist_ok=True)
    hosts = inventory(host, reach, workdir / "id_ed25519", workdir / "known_hosts")
    (private / "inventory" / "hosts.json").write_text(json.dumps(hosts, indent=2))
    (private / "env" / "extravars").write_text(json.dumps(dict(extravars), indent=2, default=str))
    config = RunnerConfig(
        private_data_dir=str(private),
        project_dir=str(project_root),
        playbook=str(project_root / playbook),
        ident="test",
        quiet=True,
        suppress_ansible_output=True,
        suppress_env_files=True,
    )
    config.prepare()
    tally = Tally(playbook)
    events = Runner(config, event_handler=tally)
    decoder = OutputEventFilter(None, events.event_callback, suppress_ansible_output=True)

    def on_line(line: str) -> None:
        decoder.write(line + "\n")
        # What people read, without the events the callback embeds in its output.
        shown = _CONTROL.sub("", _EMBEDDED.sub("", line))
        if shown.strip():
            reporter.line("ansible", shown)
            if log is not None:
                log(shown)

    completed = runner.run(
        config.command,
        what=f"ansible-playbook {playbook}",
        env=added_env(config.env),
        cwd=Path(config.cwd),
        on_line=on_line,
        check=False,
    )
    decoder.close()
    return tally.result(completed.returncode)


def added_env(prepared: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What ansible-runner added to (or changed in) the environment it was prepared in: only that
    reaches ansible-playbook on top of the door's cleaned environment."""
    base = os.environ if base is None else base
    return {key: value for key, value in prepared.items() if base.get(key) != value}
