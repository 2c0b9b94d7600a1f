"""secrets (bakery/config/secrets.py): how a value reaches Ansible (environment only), is masked, and is
searched for in an image. The real ansible-playbook reading it is in tests/integration/test_secrets_ansible.py."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
import yaml

from bakery import runner
from bakery.bake.build import run_packer
from bakery.config import secrets
from bakery.errors import BuildError, ConfigError, UsageError
from bakery.progress import Recording
from bakery.providers.base import BakeRequest, CloudProvider
from bakery.providers.local.provider import LocalProvider
from bakery.workspace import Workspace

VALUE = "pa55-w0rd-{{ 7*7 }}-'q\"-é"
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"


def with_secrets(project_dir, secret_map: dict[str, str]):
    text = project_dir.config.read_text().replace(
        "    tags:\n      team: platform\n",
        "    tags:\n      team: platform\n    secrets: {"
        + ", ".join(f"{k}: {v}" for k, v in secret_map.items())
        + "}\n",
    )
    project_dir.write(text)
    return project_dir.load()


# --- reading them --------------------------------------------------------------------------------


def test_secret_values_come_from_the_environment(project_dir, monkeypatch):
    project = with_secrets(project_dir, {"db_password": "WEB_DB_PASSWORD"})
    monkeypatch.setenv("WEB_DB_PASSWORD", VALUE)
    assert secrets.secret_values(project.effective("web", "aws")) == {"db_password": VALUE}


def test_a_missing_secret_names_its_variable_not_a_value(project_dir, monkeypatch):
    project = with_secrets(project_dir, {"db_password": "WEB_DB_PASSWORD"})
    monkeypatch.delenv("WEB_DB_PASSWORD", raising=False)
    with pytest.raises(UsageError, match="WEB_DB_PASSWORD"):
        secrets.secret_values(project.effective("web", "aws"))


# --- handing them to Ansible ---------------------------------------------------------------------


def test_ansible_env_has_one_variable_per_secret():
    assert secrets.ansible_env({"db_password": "a", "api_token": "b"}) == {
        "BAKERY_SECRET_db_password": "a",
        "BAKERY_SECRET_api_token": "b",
    }


def test_vars_file_holds_lookups_and_no_value():
    text = secrets.vars_file(["db_password", "api_token"])
    data = yaml.safe_load(text)
    assert set(data) == {"db_password", "api_token"}
    assert data["db_password"].startswith("{{ lookup('ansible.builtin.env', 'BAKERY_SECRET_db_password', ")
    assert "default=undef(" in data["db_password"]  # unset: the task fails, rather than an empty password
    assert yaml.safe_load(secrets.vars_file([])) == {}


def test_vars_file_refuses_a_name_ansible_cannot_use():
    with pytest.raises(ConfigError, match="not an Ansible variable name"):
        secrets.vars_file(["db-password"])


def test_packer_gets_secrets_in_its_environment_never_in_its_argv(project_dir, tmp_path, monkeypatch):
    """A bake runs Packer (a stand-in script here): the value is in the child's environment only,
    and masked in the log even when the child prints it."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "packer").write_text(  # a Python stand-in: the unit tier starts no other program
        f"#!{sys.executable}\n"
        "import hashlib, os, pathlib, sys\n"
        f"pathlib.Path({str(tmp_path / 'argv')!r}).write_text(''.join(a + '\\n' for a in sys.argv[1:]))\n"
        "value = os.environb.get(b'BAKERY_SECRET_db_password', b'')\n"
        f"pathlib.Path({str(tmp_path / 'received')!r}).write_text(hashlib.sha256(value).hexdigest() + '  -\\n')\n"
        "print('ansible says: ' + os.environ.get('BAKERY_SECRET_db_password', ''), flush=True)\n"
    )
    (fake / "packer").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("BAKERY_SECRET_stray", "from-the-shell")  # bakery's own environment is not passed on
    reporter = Recording()
    log = tmp_path / "bake.log"
    run_packer(tmp_path / "rendered", tmp_path, log, {"db_password": VALUE}, reporter)

    argv = (tmp_path / "argv").read_text()
    assert VALUE not in argv and "BAKERY_SECRET" not in argv
    assert (tmp_path / "received").read_text().split()[0] == hashlib.sha256(VALUE.encode()).hexdigest()
    assert VALUE not in log.read_text()
    assert "ansible says: ********" in log.read_text()
    assert ("packer", "ansible says: ********") in reporter.lines
    assert "BAKERY_SECRET_stray" not in runner.child_env()


# --- masking -------------------------------------------------------------------------------------


def test_forms_cover_json_and_lines_but_not_pem_armor():
    found = secrets.forms(PEM + "\nshort")
    assert PEM + "\nshort" in found
    assert "b3BlbnNzaC1rZXktdjEAAAAA" in found
    assert "-----BEGIN OPENSSH PRIVATE KEY-----" not in found  # the same in every key, and in ssh itself
    assert "short" not in found  # a line under 8 characters is no form of its own
    assert secrets.forms('a"b\\c\u00e9') >= {'a"b\\c\u00e9', 'a\\"b\\\\c\\u00e9', 'a\\"b\\\\c\u00e9'}
    assert secrets.forms("") == set()


def test_runner_masks_every_form():
    text = f'plain {VALUE} json "{VALUE.replace(chr(34), chr(92) + chr(34))}" pem line b3BlbnNzaC1rZXktdjEAAAAA'
    masked = runner.mask(text, [VALUE, PEM])
    assert masked == 'plain ******** json "********" pem line ********'


# --- searching what was built --------------------------------------------------------------------


def test_needles_leave_out_values_too_short_to_search_for():
    wanted, short = secrets.needles({"db_password": VALUE, "pin": "1234"})
    assert short == ("pin",)
    assert VALUE.encode() in wanted["db_password"]


@pytest.mark.parametrize("offset", [0, 1, 5, 15, 16, 17, 31, 40])
def test_search_finds_a_value_wherever_it_lies_across_chunks(tmp_path, offset):
    needle = b"0123456789abcdef-needle"  # longer than a chunk: it spans two or three reads
    disk = tmp_path / "disk"
    disk.write_bytes(b"\0" * offset + needle + b"\0" * 7)
    assert secrets.search(disk, {"db_password": [needle]}, chunk_bytes=16) == "db_password"


def test_search_misses_nothing_it_should_and_finds_nothing_else(tmp_path):
    disk = tmp_path / "disk"
    disk.write_bytes(b"x" * 100 + b"needle-o" + b"y" * 100)
    assert secrets.search(disk, {"a": [b"needle-one"]}, chunk_bytes=8) is None
    assert secrets.search(disk, {"a": [b"needle-one"], "b": [b"xneedle-o"]}, chunk_bytes=8) == "b"
    assert secrets.search(disk, {}, chunk_bytes=8) is None


def _request(project_dir, workdir: Path) -> BakeRequest:
    project = project_dir.load()
    return BakeRequest(project, project.effective("web", "local"), "1.0.0", workdir, None, workdir / "bake.log")


def test_local_scan_refuses_an_image_holding_a_secret_naming_it_not_its_value(project_dir, tmp_path):
    with_secrets(project_dir, {"db_password": "WEB_DB_PASSWORD"})
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "disk.qcow2").write_bytes(os.urandom(4096) + VALUE.encode() + os.urandom(4096))
    provider = LocalProvider(Workspace(project_dir.home), Recording())
    with pytest.raises(BuildError) as caught:
        provider.scan(_request(project_dir, tmp_path), {"db_password": VALUE})
    assert caught.value.message == (
        "secret 'db_password' (from $WEB_DB_PASSWORD) was found in the built disk; refusing to record it"
    )
    assert caught.value.exit_code == 1
    assert VALUE not in str(caught.value) + (caught.value.hint or "")


def test_local_scan_passes_a_clean_image_and_says_what_it_skipped(project_dir, tmp_path):
    with_secrets(project_dir, {"db_password": "WEB_DB_PASSWORD", "pin": "WEB_PIN"})
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "disk.qcow2").write_bytes(b"\0" * 65536 + hashlib.sha256(VALUE.encode()).digest())
    (tmp_path / "output-initrd.img").write_bytes(b"initrd")
    reporter = Recording()
    LocalProvider(Workspace(project_dir.home), reporter).scan(
        _request(project_dir, tmp_path), {"db_password": VALUE, "pin": "1234"}
    )
    assert reporter.notes == [
        "secret 'pin' is under 8 bytes: too short to search the image for",
        "searched the image for 1 secret(s): none found",
    ]


def test_local_scan_reads_the_initrd_too(project_dir, tmp_path):
    with_secrets(project_dir, {"db_password": "WEB_DB_PASSWORD"})
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "disk.qcow2").write_bytes(b"clean")
    (tmp_path / "output-initrd.img").write_bytes(b"cpio " + VALUE.encode())
    with pytest.raises(BuildError, match="found in the built initrd"):
        LocalProvider(Workspace(project_dir.home), Recording()).scan(
            _request(project_dir, tmp_path), {"db_password": VALUE}
        )


def test_cloud_images_cannot_be_read_here_so_nothing_is_searched(project_dir, tmp_path):
    provider = CloudProvider(Recording(), clients=lambda *a: None)
    assert provider.scan(_request(project_dir, tmp_path), {"db_password": VALUE}) is None
