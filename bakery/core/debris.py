"""What a stopped bake leaves behind on a cloud, and whether the bake that left it is dead.

Every image a bake creates carries a mark from the moment it exists (the AMI description, the
GCP image's labels at insert) naming the bake's invocation, and soon after its owner: the host,
the process and the boot it runs in, and a heartbeat the bake renews while it runs. A later bake
removes such debris only when its owner is provably dead: on this host, by its process (gone, or
a different process under a reused pid) or a reboot since; elsewhere, by a heartbeat that stopped
for longer than LEASE (a live bake renews it every HEARTBEAT_SECONDS). An image without any mark
is never bakery's and is never touched.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HEARTBEAT_SECONDS = 20.0
# A bake renews its heartbeat every HEARTBEAT_SECONDS; silence for this long means it is dead.
LEASE = timedelta(minutes=5)

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_MACHINE_ID = Path("/etc/machine-id")


def utc(text: str | None) -> datetime | None:
    """An ISO time as written by bakery or a cloud ('...Z', '+00:00', '-00:00'); None if unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "unknown"


def boot_id() -> str:
    """Which running system a pid belongs to: this boot, this machine, this pid namespace. Two
    containers may share a host name and a kernel but not a pid namespace; a reboot changes the
    boot id. Only within one such system does a pid prove anything."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "unknown"
    identity = "|".join((_read(_BOOT_ID), _read(_MACHINE_ID), namespace))
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Owner:
    """The bake (process) that created an image."""

    invocation: str
    host: str
    pid: int
    boot: str  # this host's boot id when the bake ran: a reboot since proves the bake is dead
    started: str  # ISO time the bake started

    @classmethod
    def current(cls, invocation: str, started: str) -> Owner:
        return cls(invocation=invocation, host=socket.gethostname(), pid=os.getpid(), boot=boot_id(), started=started)

    def fields(self) -> dict[str, str]:
        """The owner as flat text fields (tags, labels); `from_fields` reads them back."""
        return {
            "invocation": self.invocation,
            "host": self.host,
            "pid": str(self.pid),
            "boot": self.boot,
            "started": self.started,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Owner | None:
        try:
            return cls(
                invocation=fields["invocation"],
                host=fields["host"],
                pid=int(fields["pid"]),
                boot=fields["boot"],
                started=fields["started"],
            )
        except (KeyError, ValueError):
            return None

    def describe(self) -> str:
        return f"the bake {self.invocation} started {self.started} on {self.host} (pid {self.pid})"


@dataclass(frozen=True)
class Leftover:
    """An image (with its regional copies) carrying one bake's mark, in whatever state it reached."""

    target: str
    image: str  # bakery's image name (from the mark, or the cloud image's name)
    version: str
    invocation: str
    locations: tuple[str, ...]  # provider-specific: "eu-west-1:ami-0abc", "my-project/web-1-0-3"
    created: str  # when the cloud created it (the earliest copy)
    state: str = ""  # bakery's stamp state: "" (only the mark so far), "pending" or "complete"
    owner: Owner | None = None  # None until the bake wrote its owner
    heartbeat: str | None = None  # last heartbeat the bake wrote

    @property
    def ref(self) -> str:
        return f"{self.image}@{self.version}" if self.version else self.image

    def order(self) -> tuple[str, str]:
        """Who keeps a version two bakes claim: the image created first (then the invocation)."""
        moment = utc(self.created)
        return (iso(moment) if moment else self.created, self.invocation)


@dataclass(frozen=True)
class Verdict:
    dead: bool
    why: str


def _process_started(pid: int) -> datetime | None:
    """When process `pid` on this host started; None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    since_boot = ticks / os.sysconf("SC_CLK_TCK")
    return datetime.now(UTC) - timedelta(seconds=uptime - since_boot)


def _processes_of(invocation: str) -> list[int]:
    """Processes on this host whose command line names the bake (its Packer runs in a work
    directory named after the invocation): a killed bakery's Packer may still be running."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if invocation.encode() in argv:
            found.append(int(entry.name))
    return sorted(found)


def judge(leftover: Leftover, *, now: datetime | None = None) -> Verdict:
    """Is the bake that left `leftover` provably dead? (Only then may its images be removed.)"""
    now = now or datetime.now(UTC)
    owner = leftover.owner
    if owner is not None and owner.host == socket.gethostname() and owner.boot == boot_id():
        started = utc(owner.started)
        process = _process_started(owner.pid)
        if process is not None and (started is None or process <= started + timedelta(seconds=5)):
            return Verdict(False, f"{owner.describe()} is still running")
        children = _processes_of(owner.invocation)
        if children:
            pids = ", ".join(map(str, children))
            return Verdict(False, f"{owner.describe()} was stopped, but its tools still run (pid {pids})")
        if process is None:
            return Verdict(True, f"{owner.describe()}; that process has exited")
        return Verdict(True, f"{owner.describe()}; that process has exited (pid {owner.pid} is another one now)")
    beat = utc(leftover.heartbeat)
    created = utc(leftover.created)
    who = owner.describe() if owner else f"the bake {leftover.invocation}"
    tools = _processes_of(leftover.invocation)  # e.g. a Packer run by hand from a render, here
    if tools:
        return Verdict(False, f"{who} is still running here (pid {', '.join(map(str, tools))})")
    if beat is not None:
        if now - beat > LEASE:
            return Verdict(True, f"{who}; its heartbeat stopped at {iso(beat)}")
        return Verdict(False, f"{who} is still running (heartbeat {int((now - beat).total_seconds())}s ago)")
    if created is not None and now - created > LEASE:
        # A live bake marks its owner within seconds of the image appearing.
        return Verdict(True, f"{who}; it never wrote a heartbeat after creating the image at {iso(created)}")
    return Verdict(False, f"{who} created it at {leftover.created} and may still be running")
