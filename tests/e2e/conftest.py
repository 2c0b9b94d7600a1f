from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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


@pytest.fixture()
def bakery_env(e2e_project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAKERY_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["BAKERY_E2E_TOKEN"] = SECRET
    return env


def qemu_processes(marker: str) -> list[str]:
    """Command lines of running qemu processes that mention `marker` (a path of ours)."""
    out = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "qemu-system" in line and marker in line]
