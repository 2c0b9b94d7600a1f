"""The e2e session: one demo project and one BAKERY_HOME, and what tests share in it as fixtures
(the base disk, a baked web image) that any test requests for itself: no test counts on another
having run first, so any one of them runs alone or in any order."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.traffic import Traffic, page_version  # noqa: F401 - the e2e modules take them from here

REPO = Path(__file__).resolve().parents[2]
HOSTILE = 'say "hi" \\ back ${x} %{y}\nline two é ✓'
SECRET = "s3cr3t-token-never-baked-8d1f"
BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The repository's demo project in a git checkout of its own, with a hostile description
    and a deliberately broken image. One BAKERY_HOME for the whole session: the base disk made
    by the first bake is reused by the others, as it would be for a user."""
    root = tmp_path_factory.mktemp("e2e")
    shutil.copy(REPO / "images.yaml", root / "images.yaml")
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "playbooks" / "broken.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Fail on purpose\n      ansible.builtin.command: /bin/false\n"
    )
    # A secret reaches Ansible at build time; the play proves it arrived by writing its hash only.
    (root / "playbooks" / "secret.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: The token arrived\n      ansible.builtin.assert:\n        that: api_token | length > 0\n"
        "    - name: Keep its hash, never the token\n      ansible.builtin.copy:\n"
        "        dest: /etc/bakery/token.sha256\n        content: \"{{ api_token | hash('sha256') }}\"\n"
        "        mode: '0644'\n"
    )
    data = yaml.safe_load((root / "images.yaml").read_text())
    data["images"]["web"]["description"] = HOSTILE
    data["images"]["web"]["playbooks"].append("playbooks/secret.yml")
    data["images"]["web"]["secrets"] = {"api_token": "BAKERY_E2E_TOKEN"}
    data["images"]["broken"] = {
        "version": "0.1",
        "source": {"local": {}},
        "playbooks": ["playbooks/broken.yml"],
        "targets": ["local"],
    }
    (root / "images.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    git = ["git", "-C", str(root), "-c", "user.email=t@localhost", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / ".gitignore").write_text(".bakery/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "e2e project"], check=True)
    yield root


@pytest.fixture(scope="session")
def e2e_env(e2e_project: Path) -> dict[str, str]:
    """The environment a user's shell gives `bakery` (its home: .bakery beside images.yaml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAKERY_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["BAKERY_E2E_TOKEN"] = SECRET
    return env


@pytest.fixture()
def bakery_env(e2e_env: dict[str, str]) -> dict[str, str]:
    return dict(e2e_env)


def run_bakery(
    project: Path, env: dict[str, str], *args: str, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """The installed `bakery` script, run in `project` as a user would."""
    return subprocess.run(
        [str(BIN / "bakery"), *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def base_disk(e2e_project: Path, e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The local base disk in the session's home, made once (by `bakery render`, which prepares a
    bake as a build does, without booting anything): tests that check its reuse request it."""
    out = tmp_path_factory.mktemp("render-for-the-base-disk")
    made = run_bakery(e2e_project, e2e_env, "render", "web", "--target", "local", "--out", str(out))
    assert made.returncode == 0, made.stderr[-3000:]
    shutil.rmtree(out)  # it holds a build key


@dataclass(frozen=True)
class Baked:
    """The outcome of `bakery build web --target local --json` (one real bake per session)."""

    process: subprocess.CompletedProcess[str]
    built: dict[str, Any]

    @property
    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = self.built["record"]
        return record

    @property
    def version(self) -> str:
        return str(self.record["version"])

    @property
    def directory(self) -> Path:
        return Path(self.record["locations"][0])


@pytest.fixture(scope="session")
def web_image(e2e_project: Path, e2e_env: dict[str, str], base_disk: None) -> Baked:
    """The web image, baked once for the session; any test that needs a baked image requests it."""
    result = run_bakery(e2e_project, e2e_env, "build", "web", "--target", "local", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return Baked(result, json.loads(result.stdout))


def qemu_processes(marker: str) -> list[str]:
    """Command lines of running qemu processes that mention `marker` (a path of ours)."""
    out = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "qemu-system" in line and marker in line]


# --- rollouts of local groups (tests/e2e/test_local_rollout.py) --------------------------------

UNHEALTHY_PLAYBOOK = """\
- name: A web server whose health check fails
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Make /healthz answer 500
      ansible.builtin.replace:
        path: /etc/nginx/sites-available/default
        regexp: 'return 200 "ok '
        replace: 'return 500 "broken '
"""


@dataclass(frozen=True)
class RolloutImages:
    """A project of its own (its own home, so that the bake tests' catalog is not touched) with
    two local groups, and three versions of web in its catalog: `one` and `two` serve pages that
    show their version, `bad` answers /healthz with 500."""

    project: Path
    ports: dict[str, int]  # front port per group
    one: str
    two: str
    bad: str

    @property
    def home(self) -> Path:
        return self.project / ".bakery"


def _rollout_config(ports: dict[str, int]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "images.yaml").read_text())
    health = {"path": "/healthz", "port": 80, "grace_seconds": 0, "timeout_seconds": 75, "healthy_threshold": 2}
    data["groups"] = {
        "web-local": {
            "image": "web",
            "target": "local",
            "local": {"size": 2, "port": ports["web-local"], "memory": 512, "cpus": 1},
            "strategy": {"type": "canary", "canary_size": 1, "batch_size": 1, "bake_seconds": 5},
            "health": health,
        },
        "web-blue": {
            "image": "web",
            "target": "local",
            "local": {"size": 1, "port": ports["web-blue"], "memory": 512, "cpus": 1},
            "strategy": {"type": "blue-green", "retention_seconds": 3600},
            "health": health,
        },
    }
    return data


@pytest.fixture(scope="session")
def rollout_images(
    tmp_path_factory: pytest.TempPathFactory, e2e_project: Path, e2e_env: dict[str, str], web_image: Baked
) -> RolloutImages:
    """Baked once per session: `one` is the session's web bake (web_image) copied into this
    project's catalog, `two` a second bake of web (its page shows its own version), `bad` a bake
    with playbooks/unhealthy.yml added. The base disk is the session's, copied."""
    from bakery.core.catalog import ImageRecord
    from bakery.providers.local.boot import free_port
    from bakery.providers.local.store import LocalStore

    root = tmp_path_factory.mktemp("rollouts")
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "playbooks" / "unhealthy.yml").write_text(UNHEALTHY_PLAYBOOK)
    ports = {"web-local": free_port(), "web-blue": free_port()}
    config = _rollout_config(ports)
    (root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git = ["git", "-C", str(root), "-c", "user.email=t@localhost", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / ".gitignore").write_text(".bakery/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "rollout project"], check=True)

    home = root / ".bakery"
    shutil.copytree(e2e_project / ".bakery" / "cache" / "base", home / "cache" / "base")
    staged = tmp_path_factory.mktemp("staged") / "web"
    shutil.copytree(web_image.directory, staged)
    record = ImageRecord(**{**web_image.record, "locations": ()})
    # Signed as it was: the session's signing key (this project lists none: its workspace key is
    # trusted) and the bake's attestation come along into this project's workspace and registry.
    shutil.copytree(e2e_project / ".bakery" / "keys", home / "keys")
    attestation = Path("registry", "attestations", "local", "web", f"{web_image.version}.dsse.json")
    (home / attestation).parent.mkdir(parents=True)
    shutil.copy(e2e_project / ".bakery" / attestation, home / attestation)
    extra = web_image.record.get("extra", {})
    LocalStore(home / "catalog.sqlite", home / "images").record(
        record, staged, attestation=extra.get("attestation"), stamp=extra.get("stamp")
    )

    def bake(*extra: str) -> str:
        made = run_bakery(root, e2e_env, "build", "web", "--target", "local", "--json", *extra)
        assert made.returncode == 0, made.stderr[-3000:]
        return str(json.loads(made.stdout)["record"]["version"])

    two = bake("--force")
    config["images"]["web"]["playbooks"].append("playbooks/unhealthy.yml")
    (root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([*git, "commit", "-qam", "web whose health check fails"], check=True)
    bad = bake()
    return RolloutImages(root, ports, f"web@{web_image.version}", f"web@{two}", f"web@{bad}")


def group_processes(home: Path, group: str) -> list[str]:
    """Command lines of the live processes (qemu, haproxy) that name the group's directory."""
    marker = f"{home / 'groups' / group}/"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and marker in line and int(entry.name) != os.getpid():
            found.append(line)
    return found
