"""secrets reach the real ansible-playbook through its environment only (bakery/config/secrets.py's
vars file, as Packer's ansible provisioner passes it). The rest of secrets is in
tests/unit/config/test_secrets.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bakery.config import secrets

VALUE = "pa55-w0rd-{{ 7*7 }}-'q\"-é"


def _playbook(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / secrets.VARS_FILE).write_text(secrets.vars_file(["db_password"]))
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  vars: {db_password: play-vars-lose}\n  tasks:\n"
        "    - ansible.builtin.copy:\n        dest: " + str(tmp_path / "got") + "\n"
        '        content: "{{ db_password }}"\n'
    )
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "--extra-vars",
        f"ansible_python_interpreter={sys.executable}",
        "--extra-vars",
        f"@{tmp_path / secrets.VARS_FILE}",
        str(tmp_path / "play.yml"),
    ]
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANSIBLE_NOCOLOR": "1", **env}
    return subprocess.run(argv, env=clean, capture_output=True, text=True, timeout=120)


def test_ansible_playbook_reads_the_value_from_its_environment(tmp_path):
    """The generated file, as Packer passes it: `{{ db_password }}` is the value, literally (never
    templated again), and wins over play vars as an extra var did."""
    done = _playbook(tmp_path, secrets.ansible_env({"db_password": VALUE}))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "got").read_text() == VALUE


def test_ansible_playbook_fails_naming_an_unset_secret(tmp_path):
    done = _playbook(tmp_path, {})
    assert done.returncode != 0
    assert "BAKERY_SECRET_db_password is not set" in done.stdout + done.stderr
    assert not (tmp_path / "got").exists()
