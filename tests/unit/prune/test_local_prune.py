"""`bakery prune` on a local target: the catalog entry and its directory go, the audit log says
so, and a removal interrupted between the two is finished by the next prune."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from bakery.config.load import load
from bakery.core.catalog import ImageRecord
from bakery.core.identity import who
from bakery.errors import BakeryError, Interrupted, UsageError
from bakery.progress import Silent
from bakery.providers.local import provider as local_provider
from bakery.providers.local.store import LocalStore
from bakery.prune import service
from bakery.prune.service import Pruner
from bakery.workspace import Workspace

CONFIG = """\
targets:
  local:
    kind: local
images:
  web:
    version: "1.0"
    source:
      local: {}
    playbooks: [playbooks/base.yml]
    prune: {keep: 1, older_than_days: 30}
"""


def seed(home: Path, version: str) -> Path:
    staged = home.parent / f"staged-{version}"
    staged.mkdir(parents=True)
    for name in ("disk.qcow2", "vmlinuz", "initrd.img"):
        (staged / name).write_bytes(name.encode())
    (staged / "provenance.json").write_text('{"subject": []}\n')
    record = ImageRecord(
        "web",
        version,
        "local",
        "local",
        "sha256:" + "a" * 64,
        "2026-01-01T00:00:00Z",
        "sha256:" + "b" * 64,
        subject_sha256="c" * 64,
    )
    return LocalStore(home / "catalog.sqlite", home / "images").record(record, staged)


@pytest.fixture
def seeded(project_dir):
    project_dir.write(CONFIG)
    return {v: seed(project_dir.home, v) for v in ("1.0.0", "1.0.1", "1.0.2")}


def listed(bakery_cli) -> list[str]:
    result = bakery_cli("images", "--target", "local", "--json")
    return sorted(i["version"] for i in json.loads(result.stdout)["images"])


def test_prune_removes_the_catalog_entry_and_its_files(project_dir, bakery_cli, seeded) -> None:
    dry = bakery_cli("prune", "--target", "local")
    assert dry.exit_code == 0, dry.output
    assert "web@1.0.0  local   remove      older than 30 days, not among the newest 1, unused" in dry.stdout
    assert "web@1.0.2  local   keep        among the newest 1" in dry.stdout
    assert listed(bakery_cli) == ["1.0.0", "1.0.1", "1.0.2"] and all(p.exists() for p in seeded.values())

    done = bakery_cli("prune", "--target", "local", "--yes")
    assert done.exit_code == 0, done.output
    assert f"removed web@1.0.0 on local: catalog entry web@1.0.0 on local and {seeded['1.0.0']}" in done.stdout
    assert listed(bakery_cli) == ["1.0.2"]
    assert not seeded["1.0.0"].exists() and not seeded["1.0.1"].exists() and seeded["1.0.2"].exists()
    events = json.loads(bakery_cli("audit", "--json").stdout)["events"]
    assert [(e["action"], e["subject"], e["result"]) for e in events] == [
        ("prune", "web@1.0.0 on local", "pruned"),
        ("prune", "web@1.0.1 on local", "pruned"),
    ]
    verify = bakery_cli("verify", "web@1.0.0", "--target", "local")
    assert verify.exit_code == 2
    assert (
        f"web@1.0.0 on local was pruned at {events[0]['time']} by {events[0]['who']} (audit event 1)" in verify.stderr
    )


def test_a_removal_interrupted_after_the_catalog_entry_is_finished_by_the_next_prune(
    project_dir, bakery_cli, seeded, monkeypatch
) -> None:
    real, calls = local_provider.remove_tree, []

    def interrupted_once(path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise Interrupted("interrupted", exit_code=130)
        real(path)

    monkeypatch.setattr(local_provider, "remove_tree", interrupted_once)
    stopped = bakery_cli("prune", "--target", "local", "--yes")
    assert stopped.exit_code == 130, stopped.output
    assert listed(bakery_cli) == ["1.0.1", "1.0.2"]  # 1.0.0 is gone for every reader; 1.0.1 untouched
    assert seeded["1.0.0"].exists()
    assert "interrupted prune of web@1.0.0 on local (interrupted during remove)" in bakery_cli("prune").stdout

    done = bakery_cli("prune", "--target", "local", "--yes")
    assert done.exit_code == 0, done.output
    assert "finished interrupted prune of web@1.0.0 on local" in done.stdout
    assert not seeded["1.0.0"].exists() and not seeded["1.0.1"].exists()
    assert listed(bakery_cli) == ["1.0.2"]


def test_prune_refuses_a_version_and_an_unknown_image(project_dir, bakery_cli, seeded) -> None:
    versioned = bakery_cli("prune", "web@1.0.0")
    assert versioned.exit_code == 2 and "prune takes an image name, not a version ('web@1.0.0')" in versioned.stderr
    unknown = bakery_cli("prune", "db")
    assert unknown.exit_code == 2 and "no image 'db' in images.yaml; images: web" in unknown.stderr
    assert all(p.exists() for p in seeded.values())


def pruner(project_dir) -> Pruner:
    project = load(project_dir.root / "images.yaml")
    return Pruner(project, Workspace.for_project(project.root), Silent())


def test_the_service_refuses_overrides_images_yaml_would_refuse(project_dir, seeded) -> None:
    with pytest.raises(UsageError) as keep:
        pruner(project_dir).run(keep=0, act=True)
    assert keep.value.exit_code == 2 and "--keep 0: Input should be greater than or equal to 1" in keep.value.message
    with pytest.raises(UsageError) as older:
        pruner(project_dir).run(older_than_days=-1)
    assert older.value.exit_code == 2
    assert "--older-than -1: Input should be greater than or equal to 0" in older.value.message
    assert all(p.exists() for p in seeded.values())


def test_a_prune_never_overwrites_the_journal_of_another_under_way(project_dir, seeded, monkeypatch) -> None:
    real = service.candidates
    other = Workspace.for_project(project_dir.root).root / "prune" / "local--web@1.0.0.json"

    def another_prune_starts(*args: Any) -> Any:
        found = real(*args)  # after this prune finished what was interrupted, before it removes
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text('{"theirs": true}')
        return found

    monkeypatch.setattr(service, "candidates", another_prune_starts)
    with pytest.raises(BakeryError) as refused:
        pruner(project_dir).run(target="local", act=True)
    assert refused.value.exit_code == 1
    assert f"another prune of web@1.0.0 on local is under way: its journal {other} exists" in refused.value.message
    assert json.loads(other.read_text()) == {"theirs": True}
    assert seeded["1.0.0"].exists()


def test_a_second_prune_yes_is_refused_naming_the_first_and_the_lock_is_released_on_every_exit(
    project_dir, bakery_cli, seeded, monkeypatch
) -> None:
    real = local_provider.remove_tree
    inside, go_on = threading.Event(), threading.Event()
    failures: list[str] = []

    def waits(path: Path) -> None:
        if failures:
            raise BakeryError(failures.pop())
        inside.set()  # the first prune is removing web@1.0.0
        assert go_on.wait(30)
        real(path)

    monkeypatch.setattr(local_provider, "remove_tree", waits)
    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(pruner(project_dir).run(target="local", act=True)))
    thread.start()
    try:
        assert inside.wait(30)
        second = bakery_cli("prune", "--yes")
        dry = bakery_cli("prune", "--target", "local")
    finally:
        go_on.set()
        thread.join(30)
    assert second.exit_code == 1, second.output
    assert (
        f"another `bakery prune --yes` is running: bakery prune --yes --target local by {who()} on "
        f"{socket.gethostname()} (pid {os.getpid()}) since "
    ) in second.stderr
    assert dry.exit_code == 0
    assert "a `bakery prune --yes` is running (bakery prune --yes --target local by " in dry.stdout
    assert [r.image for r in first[0].removals] == ["web@1.0.0", "web@1.0.1"]  # the first went on, alone
    assert listed(bakery_cli) == ["1.0.2"]

    # released after a run that failed, and after one that finished
    seed(project_dir.home, "1.0.3")
    seed(project_dir.home, "1.0.4")
    failures.append("the disk is busy")
    failed = bakery_cli("prune", "--yes")
    assert failed.exit_code == 1 and "the disk is busy" in failed.stderr
    after = bakery_cli("prune", "--yes")
    assert after.exit_code == 0, after.output
    assert "another `bakery prune --yes` is running" not in after.output
    assert listed(bakery_cli) == ["1.0.4"]
