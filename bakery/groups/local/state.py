"""What a local group keeps on disk, under <home>/groups/<name>/: state.json (its HAProxy, its VMs
and the release it was last rolled to), history.json (its rollouts), haproxy.cfg and logs, and
one directory per VM (its copy-on-write overlay and console log).

Files are written whole and atomically (a temporary file renamed over the old one), so a process
killed at any moment leaves either the old or the new state, never half of one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.errors import BakeryError
from bakery.groups.base import HistoryEntry, Release

STATE_SCHEMA = "bakery.local-group/v1"

# A member's life: booted, gate passed, in HAProxy, leaving HAProxy, kept out of rotation for
# a blue-green rollback (until `retain_until`).
BOOTING, READY, SERVING, DRAINING, RETAINED = "booting", "ready", "serving", "draining", "retained"


@dataclass(frozen=True)
class Member:
    """One VM of the group."""

    id: str  # "web-local-3": the VM's name, and its server name in HAProxy
    image: str | None  # "web@1.0.1"
    image_dir: str  # the catalog directory it boots from (Release.image_id)
    port: int  # the 127.0.0.1 port forwarded to the guest's health port
    overlay: str  # its copy-on-write disk: the mark on its qemu command line
    status: str
    rollout: str  # the rollout (or rollback) it belongs to now
    wave: int  # the wave of that rollout that brought it in (-1: the group was brought up)
    tags: dict[str, str] = field(default_factory=dict)  # instance_tags of the rollout that launched it
    pid: int | None = None
    retain_until: str | None = None

    @property
    def directory(self) -> Path:
        return Path(self.overlay).parent

    def label(self) -> str:
        return f"{self.id} ({self.image or self.image_dir})"


@dataclass(frozen=True)
class Saved:
    """The group's state.json."""

    front_port: int | None = None
    stats_port: int | None = None
    haproxy_pid: int | None = None
    release: Release | None = None  # what the group was last rolled to (its intended release)
    members: tuple[Member, ...] = ()
    serial: int = 0  # the number of the last VM named

    def member(self, member_id: str) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    def put(self, member: Member) -> Saved:
        kept = [m for m in self.members if m.id != member.id]
        return dataclasses.replace(self, members=(*kept, member))

    def drop(self, member_id: str) -> Saved:
        return dataclasses.replace(self, members=tuple(m for m in self.members if m.id != member_id))

    def of(self, rollout: str, *, wave: int | None = None) -> list[Member]:
        return [m for m in self.members if m.rollout == rollout and (wave is None or m.wave == wave)]

    def with_status(self, *statuses: str) -> list[Member]:
        return [m for m in self.members if m.status in statuses]


def release_from(data: dict[str, Any] | None) -> Release | None:
    return Release(**data) if data else None


def _saved_from(data: dict[str, Any]) -> Saved:
    return Saved(
        front_port=data.get("front_port"),
        stats_port=data.get("stats_port"),
        haproxy_pid=data.get("haproxy_pid"),
        release=release_from(data.get("release")),
        members=tuple(Member(**m) for m in data.get("members", [])),
        serial=int(data.get("serial", 0)),
    )


def entry_from(data: dict[str, Any]) -> HistoryEntry:
    to = release_from(data["to"])
    assert to is not None, "a history entry always names where it went"
    return HistoryEntry(**{**data, "from_": release_from(data.get("from_")), "to": to})


class GroupFiles:
    """The files of one local group."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    @property
    def history_path(self) -> Path:
        return self.directory / "history.json"

    @property
    def config(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def haproxy_log(self) -> Path:
        return self.directory / "haproxy.log"

    @property
    def vms(self) -> Path:
        return self.directory / "vms"

    def exists(self) -> bool:
        return self.state_path.is_file()

    def load(self) -> Saved:
        data = self._read(self.state_path)
        return _saved_from(data) if isinstance(data, dict) else Saved()

    def save(self, saved: Saved) -> Saved:
        doc = {"schema": STATE_SCHEMA, "group": self.name, **dataclasses.asdict(saved)}
        _write_json(self.state_path, doc)
        return saved

    def update(self, change: Callable[[Saved], Saved]) -> Saved:
        """Load, change and save at once (one process moves a group at a time: the rollout
        service holds the group's lock)."""
        return self.save(change(self.load()))

    def history(self) -> list[HistoryEntry]:
        data = self._read(self.history_path)
        return [entry_from(e) for e in data] if isinstance(data, list) else []

    def record(self, entry: HistoryEntry) -> None:
        entries = [e for e in self.history() if e.id != entry.id]
        _write_json(self.history_path, [dataclasses.asdict(e) for e in _by_start([*entries, entry])])

    def _read(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise BakeryError(
                f"cannot read {path} of local group {self.name}: {exc}",
                hint="`bakery down` stops the group's processes; move the file away to start over",
            ) from None


def _by_start(entries: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(entries, key=lambda e: e.started)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
