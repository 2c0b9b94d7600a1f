"""The local group's state files (bakery/groups/local/state.py): state.json and the history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bakery.errors import BakeryError
from bakery.groups.base import HistoryEntry, Release
from bakery.groups.local.state import SERVING, GroupFiles, Member, Saved


def member(member_id: str, status: str = SERVING, **changes: Any) -> Member:
    values: dict[str, Any] = {
        "id": member_id,
        "image": "web@1.0.0",
        "image_dir": "/images/web/1.0.0",
        "port": 40001,
        "overlay": f"/g/vms/{member_id}/disk.qcow2",
        "status": status,
        "rollout": "r-1",
        "wave": 0,
        "tags": {"bakery:image": "web"},
    }
    return Member(**{**values, **changes})


def test_state_round_trip(tmp_path: Path) -> None:
    files = GroupFiles(tmp_path / "g", "g")
    assert files.load() == Saved()
    release = Release("web@1.0.0", "/images/web/1.0.0", None, "sha256:1")
    saved = Saved(front_port=8080, stats_port=9000, haproxy_pid=12, release=release, members=(member("g-1"),), serial=1)
    files.save(saved)
    assert files.load() == saved
    files.update(lambda s: s.put(member("g-2", pid=77)).drop("g-1"))
    assert [m.id for m in files.load().members] == ["g-2"]
    assert files.load().member("g-2") == member("g-2", pid=77)
    assert json.loads(files.state_path.read_text())["schema"] == "bakery.local-group/v1"


def test_history_replaces_an_entry_by_id_and_keeps_full_releases(tmp_path: Path) -> None:
    files = GroupFiles(tmp_path / "g", "g")
    one = Release("web@1.0.0", "/images/web/1.0.0", None, "sha256:1")
    two = Release("web@1.0.1", "/images/web/1.0.1", None, "sha256:2")
    first = HistoryEntry("r-1", "rollout", "2026-01-01T00:00:00Z", "a@h", None, one, "rolling", "succeeded")
    running = HistoryEntry("r-2", "rollout", "2026-01-02T00:00:00Z", "a@h", one, two, "canary", "running")
    files.record(running)
    files.record(first)
    done = HistoryEntry(
        "r-2", "rollout", "2026-01-02T00:00:00Z", "a@h", one, two, "canary", "rolled-back", "2026-01-02T00:05:00Z", "x"
    )
    files.record(done)
    assert files.history() == [first, done]


def test_a_damaged_state_file_is_reported_with_its_path(tmp_path: Path) -> None:
    files = GroupFiles(tmp_path / "g", "g")
    files.directory.mkdir()
    files.state_path.write_text("{not json")
    with pytest.raises(BakeryError) as failed:
        files.load()
    assert str(files.state_path) in failed.value.message
    assert failed.value.hint is not None and "bakery down" in failed.value.hint
