"""With no cloud account: `render --offline` and `validate --packer` (real Packer), and a `plan` that
shows the target it can read and names the ones it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bakery.cli.app import app
from bakery.config import kinds
from bakery.providers import base
from tests.integration.conftest import HOSTILE

runner = CliRunner()
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS")


@pytest.fixture()
def no_account(project_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The repository's project with no cloud credentials anywhere (the endpoints stay on a closed
    port), and any provider or cloud client that bakery makes fails the test."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.aws, no gcloud configuration

    def no_provider(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an offline command made a provider or a cloud client")

    for kind in ("aws", "gcp", "local"):
        monkeypatch.setattr(kinds.get(kind).module("provider"), "make", no_provider)
    monkeypatch.setattr(base.CloudProvider, "client", no_provider)
    yield project_dir


def bakery(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def packer(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Packer as a pull-request job runs it: no credentials in its environment at all."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # ansible-playbook
        "HOME": os.environ["HOME"],
        "CHECKPOINT_DISABLE": "1",
    }
    return subprocess.run(["packer", *args], env=env, input=stdin, capture_output=True, text=True, timeout=300)


def console(out: Path, expression: str) -> str:
    seen = packer("console", str(out), stdin=expression + "\n")
    assert seen.returncode == 0, seen.stderr
    return seen.stdout.removesuffix("\n")


def assert_packer_accepts(out: Path) -> None:
    checked = packer("validate", str(out))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = packer("fmt", "-check", "-diff", str(out))
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def edit_images(project: Path, change: Any) -> None:
    data = yaml.safe_load((project / "images.yaml").read_text())
    change(data)
    (project / "images.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))


def with_child(data: dict[str, Any]) -> None:
    data["images"]["api"] = {"version": "2.1", "from": "web", "playbooks": ["playbooks/web.yml"]}


# --- render --offline ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "template", "source"),
    [
        ("aws", "amazon-ebs.pkr.hcl", ("source_ami_filter_name", "debian-12-amd64-*")),
        ("gcp", "googlecompute.pkr.hcl", ("source_image_family", "debian-12")),
        ("local", "qemu.pkr.hcl", ("accelerator", "tcg")),
    ],
)
def test_an_offline_render_needs_no_account_and_packer_accepts_it(
    no_account: Path, target: str, template: str, source: tuple[str, str]
) -> None:
    result = bakery("render", "web", "--target", target, "--offline", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    out = no_account / ".bakery" / "render" / f"web-{target}-preview"
    assert (doc["directory"], doc["version"], doc["preview"]) == (str(out), "1.0-preview", True)
    assert template in doc["files"] and "bakery-preview.json" in doc["files"]
    assert console(out, "var.image_version") == "1.0-preview"
    assert console(out, f"var.{source[0]}") == source[1]
    assert_packer_accepts(out)


def test_the_text_says_it_is_a_preview(no_account: Path, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    result = bakery("render", "web", "-t", "aws", "--offline", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"rendered web 1.0-preview for aws (amazon-ebs) into {out}",
        "a preview: nothing was read from the target (source as declared or left to Packer, no next version); "
        f"check it with: packer validate {out}",
    ]
    assert console(out, "var.ami_name") == "web-1.0-preview"


@pytest.mark.parametrize("target", ["aws", "gcp", "local"])
def test_a_child_renders_offline_from_its_parent_as_packer_will_find_it(no_account: Path, target: str) -> None:
    edit_images(no_account, with_child)
    out = no_account / "child"
    result = bakery("render", "api", "-t", target, "--offline", "-o", out)
    assert result.exit_code == 0, result.output
    assert_packer_accepts(out)


def _hostile(data: dict[str, Any]) -> None:
    web = data["images"]["web"]
    web["description"] = HOSTILE
    web["tags"] = {"note": HOSTILE, 'odd key: ${k} %{j} "q" \\': "v"}
    web["vars"] = {"page_title": HOSTILE, 'key "${x}" %{y} \\ \n': HOSTILE}
    web["overrides"] = {"gcp": {"tags": {"note": "short"}}}  # GCP labels cannot hold these; validate says so
    with_child(data)


@pytest.mark.parametrize("target", ["aws", "gcp", "local"])
def test_hostile_values_render_offline_literally_and_packer_accepts_them(no_account: Path, target: str) -> None:
    edit_images(no_account, _hostile)
    if target == "gcp":
        edit_images(no_account, lambda d: d["images"]["web"]["tags"].pop('odd key: ${k} %{j} "q" \\'))
    out = no_account / "hostile"
    result = bakery("render", "web", "-t", target, "--offline", "-o", out)
    assert result.exit_code == 0, result.output
    assert_packer_accepts(out)
    extra = json.loads(console(out, "var.ansible_extra_vars"))
    assert extra["page_title"] == HOSTILE and extra['key "${x}" %{y} \\ \n'] == HOSTILE
    assert extra["bakery_description"] == HOSTILE
    if target == "aws":
        assert console(out, "var.image_description") == HOSTILE + " [bakery preview: not recorded]"
        assert json.loads(console(out, "jsonencode(var.image_tags)")) == {
            "note": HOSTILE,
            'odd key: ${k} %{j} "q" \\': "v",
        }


# --- validate --packer --------------------------------------------------------------------------


def test_validate_packer_checks_every_image_on_every_target(no_account: Path) -> None:
    edit_images(no_account, with_child)
    shown = bakery("validate", "--packer")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert sorted(lines[1:-1]) == [
        "ok      api on aws (2.1-preview)",
        "ok      api on gcp (2.1-preview)",
        "ok      api on local (2.1-preview)",
        "ok      web on aws (1.0-preview)",
        "ok      web on gcp (1.0-preview)",
        "ok      web on local (1.0-preview)",
    ]
    assert lines[-1] == "packer 1.6.6: 6 offline renders checked, all valid and packer fmt clean"
    as_json = bakery("validate", "--packer", "--json")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["valid"] is True and doc["packer"]["version"] == "1.6.6"
    assert sorted((c["image"], c["target"], c["ok"], c["problems"]) for c in doc["packer"]["checks"]) == [
        (image, target, True, []) for image in ("api", "web") for target in ("aws", "gcp", "local")
    ]
    assert not (no_account / ".bakery").exists()  # the renders went to a scratch directory, gone now


def test_validate_packer_accepts_hostile_values(no_account: Path) -> None:
    edit_images(no_account, _hostile)
    edit_images(no_account, lambda d: d["images"]["web"]["tags"].pop('odd key: ${k} %{j} "q" \\'))  # not a GCP label
    result = bakery("validate", "--packer")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "packer 1.6.6: 6 offline renders checked, all valid and packer fmt clean"


def test_validate_packer_names_what_packer_rejects(no_account: Path) -> None:
    templates = no_account / "templates"
    gce = templates / "googlecompute.pkr.hcl"
    broken = gce.read_text().replace("  zone                    = var.zone\n", "  zone = var.zone\n  no_such = 1\n")
    gce.write_text(broken)
    qemu = templates / "qemu.pkr.hcl"
    qemu.write_text(qemu.read_text().replace("  format           = ", "  format = "))  # not as packer fmt writes it
    shown = bakery("validate", "--packer")
    assert shown.exit_code == 1
    out = shown.stdout
    assert "ok      web on aws (1.0-preview)" in out
    assert "FAILED  web on gcp (1.0-preview)" in out and "no_such" in out
    assert "FAILED  web on local (1.0-preview)" in out
    assert "packer fmt -check: qemu.pkr.hcl is not as packer fmt writes it" in out
    assert "packer 1.6.6: 3 offline renders checked, 2 rejected" in out
    assert [line for line in shown.stderr.splitlines() if line.startswith("error:")] == [
        "error: packer rejects the render of web on local",
        "error: packer rejects the render of web on gcp",
    ]
    doc = json.loads(bakery("validate", "--packer", "--json").stdout)
    checks = {c["target"]: c for c in doc["packer"]["checks"]}
    assert doc["valid"] is False
    assert (checks["gcp"]["valid"], checks["gcp"]["formatted"]) == (False, False)
    assert (checks["local"]["valid"], checks["local"]["formatted"]) == (True, False)
    assert checks["aws"]["ok"] is True


def test_validate_packer_on_a_bad_images_yaml_is_exit_2(no_account: Path) -> None:
    edit_images(no_account, lambda d: d["images"]["web"].update(version="one"))
    result = bakery("validate", "--packer", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["valid"] is False


def test_validate_packer_without_packer_says_so(no_account: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(no_account / "no-tools"))
    result = bakery("validate", "--packer")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: packer is not installed or not on PATH")


def test_the_installed_script_validates_with_no_credentials_in_its_environment(project_dir: Path) -> None:
    keep = ("PATH", "PYTHONPATH", "BAKERY_HOME", "BAKERY_APT_DIR", "LANG")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["HOME"] = str(project_dir / "home")
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "bakery"), "validate", "--packer", "--json"],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert checked.returncode == 0, checked.stderr
    doc = json.loads(checked.stdout)
    assert sorted((c["target"], c["ok"]) for c in doc["packer"]["checks"]) == [
        ("aws", True),
        ("gcp", True),
        ("local", True),
    ]


# --- plan without an account --------------------------------------------------------------------


def test_plan_shows_the_target_it_can_read_and_names_the_others(project_dir: Path, monkeypatch: Any) -> None:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(project_dir / "home"))
    shown = bakery("plan")
    assert shown.exit_code == 1
    assert shown.stdout.splitlines() == [
        "new         web on local",
        "              - no version on this target yet",
        "1 to bake (aws, gcp not read)",
    ]
    errors = [line for line in shown.stderr.splitlines() if line.startswith("error:")]
    assert [e.split(":", 2)[1] for e in errors] == [" target aws could not be read", " target gcp could not be read"]
    assert "Traceback" not in shown.output
    as_json = bakery("plan", "--json")
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert [(i["image"], i["target"], i["status"]) for i in doc["items"]] == [("web", "local", "new")]
    assert doc["matrix"] == [{"image": "web", "target": "local", "depends_on": []}]
    assert set(doc["errors"]) == {"aws", "gcp"} and doc["errors"]["aws"].startswith("AWS: ")
