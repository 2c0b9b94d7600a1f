"""HAProxy in front of a local group: its configuration, its process, and its runtime API.

The configuration is rendered from the group's serving VMs (so that a restarted HAProxy comes up
with them); while it runs, servers are added and removed through the runtime API on a loopback
TCP stats socket (a unix socket path under a deep directory would pass the 108-byte limit), never
by a restart. Requests must not fail while servers come and go: a server is added only after
bakery's gate passed on it, drained until its sessions are 0 before it leaves, every request gets
its own server connection (no idle connection to a VM about to stop), and a request whose
connection fails is retried on another server.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bakery import runner
from bakery.config.models import Health
from bakery.errors import ProviderError

BACKEND = "members"
HAPROXY = "haproxy"
RUNTIME_TIMEOUT_SECONDS = 10.0
SERVER_TIMEOUT_SECONDS = 30  # also how long a drain waits for its last sessions
START_TIMEOUT_SECONDS = 15.0
_CONFIG_SPECIALS = ("\\", "#", "'", '"', " ")


@dataclass(frozen=True)
class Server:
    """One VM as HAProxy knows it: its name (the member id) and its forwarded loopback port."""

    name: str
    port: int


@dataclass(frozen=True)
class ServerStat:
    name: str
    status: str  # UP, DOWN, DRAIN, MAINT, "UP 1/2" (going down), "no check"
    sessions: int  # current sessions (scur)


def _escape(word: str) -> str:
    """One word of haproxy.cfg: characters it would read as syntax are backslash-escaped."""
    return "".join(f"\\{c}" if c in _CONFIG_SPECIALS else c for c in word)


def check_options(health: Health) -> str:
    """How HAProxy checks each server: the group's own interval and threshold."""
    n = health.healthy_threshold
    return f"check inter {health.interval_seconds}s fall {n} rise {n}"


def render_config(*, group: str, front_port: int, stats_port: int, health: Health, servers: Sequence[Server]) -> str:
    """haproxy.cfg for the group: the front port and the stats socket on 127.0.0.1 only."""
    lines = [
        f"# Written by bakery for the local group {group}; rewritten on every change.",
        "global",
        "    maxconn 1024",
        # SO_REUSEPORT off: a second HAProxy (one left behind) fails to bind the front port
        # instead of sharing its connections with this one.
        "    noreuseport",
        f"    stats socket ipv4@127.0.0.1:{stats_port} level admin",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 3s",
        "    timeout client 30s",
        f"    timeout server {SERVER_TIMEOUT_SECONDS}s",
        "    timeout queue 10s",
        "    timeout check 3s",
        "    retries 3",
        "    option redispatch 1",
        "    option http-server-close",
        "",
        "frontend front",
        f"    bind 127.0.0.1:{front_port}",
        f"    default_backend {BACKEND}",
        "",
        f"backend {BACKEND}",
        "    balance roundrobin",
        f"    option httpchk GET {_escape(health.path)}",
        "    http-check expect status 200",
        *(f"    server {s.name} 127.0.0.1:{s.port} {check_options(health)}" for s in servers),
    ]
    return "\n".join(lines) + "\n"


def haproxy_argv(config: Path) -> list[str]:
    """HAProxy in the foreground (-db): the process bakery starts is HAProxy itself."""
    return [HAPROXY, "-f", str(config), "-db"]


def check_argv(config: Path) -> list[str]:
    return [HAPROXY, "-c", "-q", "-f", str(config)]


def add_server(server: Server, health: Health) -> str:
    return f"add server {BACKEND}/{server.name} 127.0.0.1:{server.port} {check_options(health)}"


def enable_health(name: str) -> str:
    return f"enable health {BACKEND}/{name}"


def enable_server(name: str) -> str:
    return f"enable server {BACKEND}/{name}"


def set_state(name: str, state: str) -> str:
    """state: ready, drain or maint."""
    return f"set server {BACKEND}/{name} state {state}"


def del_server(name: str) -> str:
    return f"del server {BACKEND}/{name}"


SHOW_STAT = "show stat"


def parse_stat(text: str) -> dict[str, ServerStat]:
    """The servers of the backend in `show stat` CSV output, by name."""
    body = text.lstrip("# ")
    rows = csv.DictReader(io.StringIO(body))
    return {
        row["svname"]: ServerStat(row["svname"], row["status"], int(row["scur"] or 0))
        for row in rows
        if row.get("pxname") == BACKEND and row.get("svname") not in ("BACKEND", "FRONTEND")
    }


class Runtime:
    """HAProxy's runtime API on 127.0.0.1:`port` (one command per connection)."""

    def __init__(self, port: int, group: str) -> None:
        self.port = port
        self.group = group

    def send(self, command: str) -> str:
        """The answer to `command`. ProviderError when HAProxy cannot be reached."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=RUNTIME_TIMEOUT_SECONDS) as conn:
                conn.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise ProviderError(
                f"the HAProxy of group {self.group} does not answer on 127.0.0.1:{self.port} ({exc})",
                hint=f"`bakery rollout {self.group}` starts it again",
            ) from None
        return b"".join(chunks).decode("utf-8", "replace").strip()

    def answers(self) -> bool:
        try:
            self.send("show info")
        except ProviderError:
            return False
        return True

    def servers(self) -> dict[str, ServerStat]:
        return parse_stat(self.send(SHOW_STAT))

    def add(self, server: Server, health: Health) -> None:
        """Put `server` in rotation (again): added unless HAProxy has it, checks on, enabled.
        Checks and enabling are sent every time: a process killed just after `add server` left
        a server with neither."""
        if server.name in self.servers():
            self._expect(set_state(server.name, "ready"))
        else:
            self._expect(add_server(server, health), "New server registered")
        self._expect(enable_health(server.name))
        self._expect(enable_server(server.name))

    def remove(self, name: str, *, interruptible: bool = True) -> None:
        """Drain `name` (no new requests), wait until its sessions are 0 (at most the server
        timeout), then take it out of HAProxy. Nothing to do when HAProxy has no such server.
        A signal stops the wait (Interrupted) unless `interruptible` is False, as in a cleanup."""
        if name not in self.servers():
            return
        self._expect(set_state(name, "drain"))
        deadline = time.monotonic() + SERVER_TIMEOUT_SECONDS
        while (stat := self.servers().get(name)) is not None and stat.sessions > 0 and time.monotonic() < deadline:
            if interruptible:
                runner.check_interrupted(f"draining {name}")
            time.sleep(0.2)
        self._expect(set_state(name, "maint"))
        self._expect(del_server(name), "Server deleted", "No such server")

    def _expect(self, command: str, *accepted: str) -> None:
        """Send `command`; its answer must start with one of `accepted` (or be empty, as for
        enable and set commands, when none is given)."""
        answer = self.send(command)
        ok = any(answer.startswith(a) for a in accepted) if accepted else answer == ""
        if not ok:
            raise ProviderError(f"HAProxy of group {self.group} refused `{command}`: {answer}")


def start(
    config: Path,
    log_path: Path,
    runtime: Runtime,
    *,
    front_port: int,
    on_start: Callable[[runner.Background], None] = lambda _process: None,
) -> runner.Background:
    """Check `config`, start HAProxy on it (`on_start` is told its process at once, before it
    answers) and wait until its runtime API answers. Raises BuildError for a configuration
    HAProxy rejects, ProviderError when it does not come up; it is stopped on any failure."""
    runner.run(check_argv(config), what="haproxy -c", log_path=log_path)
    started = runner.start(haproxy_argv(config), what="haproxy", log_path=log_path)
    try:
        on_start(started)
        _wait_until_it_answers(started, log_path, runtime, front_port=front_port)
    except BaseException:
        started.stop()
        raise
    return started


def _wait_until_it_answers(started: runner.Background, log_path: Path, runtime: Runtime, *, front_port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not runtime.answers():
        if not started.alive() or time.monotonic() > deadline:
            lines = log_path.read_text(errors="replace").strip().splitlines()
            said = [line.split(": ", 1)[-1] for line in lines if "[ALERT]" in line] or lines[-3:]
            raise ProviderError(
                f"HAProxy of group {runtime.group} did not start: {' / '.join(said) or 'no output'}",
                hint=f"is 127.0.0.1:{front_port} taken by another program? change the group's local.port; "
                f"full log: {log_path}",
            )
        runner.check_interrupted("starting HAProxy")
        time.sleep(0.1)
