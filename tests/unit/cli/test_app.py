"""The command line, in-process through typer's CliRunner (and once through the installed script)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bakery import __version__

COMMANDS = (
    "validate",
    "schema",
    "render",
    "build",
    "plan",
    "images",
    "show",
    "boot",
    "test",
    "sbom",
    "diff",
    "scan",
    "prune",
)


PANELS = {
    "Images": COMMANDS,
    "Groups": ("rollout", "rollback", "status", "history", "down"),
    "Channels": ("promote", "approve", "channels"),
    "Trust": ("verify", "sign", "revoke", "unrevoke", "keys", "audit"),
    "Estate": ("report",),
}


def test_help_lists_every_command(bakery_cli):
    result = bakery_cli("--help")
    assert result.exit_code == 0
    assert "Usage: bakery" in result.stdout
    commands = result.stdout.split("Images:", 1)[1]
    for command in COMMANDS:
        assert f"  {command} " in commands, command


def test_help_groups_the_commands_under_their_panels_with_whole_summaries(bakery_cli):
    text = bakery_cli("--help").stdout
    headings = [line for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings == ["Options:", "Images:", "Groups:", "Channels:", "Trust:", "Estate:"]
    sections = dict(
        zip(
            PANELS,
            re.split("Groups:|Channels:|Trust:|Estate:", text.split("Images:", 1)[1]),
            strict=True,
        )
    )
    for panel, names in PANELS.items():
        listed = [
            line.split()[0]
            for line in sections[panel].splitlines()
            if line.startswith("  ") and not line.startswith("   ")
        ]
        assert listed == list(names), panel
    assert "..." not in text.split("Images:", 1)[1]  # click cuts summaries at 45 characters; none is here
    assert "rolled back on failure." in " ".join(text.split())  # rollout's summary, to its last word


def test_no_arguments_shows_help(bakery_cli):
    result = bakery_cli()
    assert "Usage: bakery" in result.output
    assert "Traceback" not in result.output


def test_version(bakery_cli):
    result = bakery_cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"bakery {__version__}\n"


def test_unknown_command_is_a_usage_error(bakery_cli):
    result = bakery_cli("bake", "web")
    assert result.exit_code == 2
    assert "No such command 'bake'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("render", "wbe", "--target", "aws"), "unknown image 'wbe' (did you mean 'web'?); known: web"),
        (("render", "web", "--target", "asw"), "unknown target 'asw' (did you mean 'aws'?)"),
        (("render", "nginx", "--target", "aws"), "unknown image 'nginx'; known: web"),
        (("images", "wbe"), "unknown image 'wbe' (did you mean 'web'?)"),
        (("images", "--target", "nowhere"), "unknown target 'nowhere'"),
        (("show", "web@1.0"), "'web@1.0': a version is MAJOR.MINOR.PATCH, as in web@1.0.2"),
        (("show", "web"), "no baked image web"),
    ],
)
def test_usage_errors_exit_2_with_a_message(project_dir, bakery_cli, args, message):
    result = bakery_cli(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"error: {message}" in result.stderr
    assert result.stdout == ""


def test_unknown_image_as_json_is_an_error_document(project_dir, bakery_cli):
    result = bakery_cli("images", "wbe", "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["kind"] == "error" and doc["exit_code"] == 2
    assert "did you mean 'web'?" in doc["error"]


def test_images_on_an_empty_workspace(project_dir, bakery_cli):
    result = bakery_cli("images", "--target", "local")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no images baked yet (bakery build IMAGE --target T)\n"


def test_images_json_on_an_empty_workspace(project_dir, bakery_cli):
    result = bakery_cli("images", "--json", "--target", "local")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "schema_version": 1,
        "kind": "images",
        "images": [],
        "targets_read": ["local"],
        "errors": {},
        "conflicts": [],
    }


def test_images_reports_each_unreachable_target_and_exits_1(project_dir, bakery_cli):
    # conftest points both clouds at a closed port on loopback
    result = bakery_cli("images", "--json")
    assert result.exit_code == 1
    listing = json.loads(result.stdout)
    assert listing["images"] == []
    assert set(listing["errors"]) == {"aws", "gcp"}
    assert "error: target aws could not be listed" in result.output
    assert "Traceback" not in result.output


def test_images_lists_a_recorded_version(project_dir, bakery_cli, tmp_path):
    from bakery.core.catalog import ImageRecord
    from bakery.providers.local.store import LocalStore

    store = LocalStore(project_dir.home / "catalog.sqlite", project_dir.home / "images")
    image = tmp_path / "staged"
    image.mkdir()
    (image / "disk.qcow2").write_bytes(b"x")
    store.record(
        ImageRecord(
            name="web",
            version="1.0.0",
            target="local",
            kind="local",
            inputs_digest="sha256:" + "ab" * 32,
            created="2024-01-01T00:00:00Z",
            base="sha256:" + "cd" * 32,
            subject_sha256="ef" * 32,
        ),
        image,
    )
    result = bakery_cli("images", "--json", "--target", "local")
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(result.stdout)["images"]
    assert listed["name"] == "web" and listed["version"] == "1.0.0" and listed["target"] == "local"
    assert listed["locations"] == [str(project_dir.home / "images" / "local" / "web" / "1.0.0")]
    table = bakery_cli("images", "-t", "local").stdout.splitlines()
    assert table[0].split()[:4] == ["IMAGE", "VERSION", "TARGET", "CREATED"]
    assert table[1].split()[:5] == ["web", "1.0.0", "local", "2024-01-01T00:00:00Z", "abababababab"]


def test_invalid_config_stops_every_command(project_dir, bakery_cli, valid_yaml):
    project_dir.write(valid_yaml.replace("kind: aws", "kind: azure"))
    for args in (("images",), ("render", "web", "-t", "aws", "--packer-version", "1.11.0"), ("show", "web")):
        result = bakery_cli(*args)
        assert result.exit_code == 2, args
        assert "targets.aws.kind" in result.stderr
        assert "Traceback" not in result.output
    assert project_dir.nothing_written()


def test_installed_script(project_dir):
    script = Path(sys.executable).parent / "bakery"
    done = subprocess.run(
        [str(script), "validate", "--json"], capture_output=True, text=True, timeout=60, cwd=project_dir.root
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True
    bad = subprocess.run(
        [str(script), "validate", "-f", "missing.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=project_dir.root,
    )
    assert bad.returncode == 2
    assert "missing.yaml: no such file" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_render_of_an_unknown_image_writes_nothing(project_dir, bakery_cli, tmp_path):
    result = bakery_cli("render", "wbe", "--target", "aws", "--packer-version", "1.11.0")
    assert result.exit_code == 2
    assert project_dir.nothing_written(), sorted(str(p) for p in project_dir.home.rglob("*"))


def test_build_refuses_a_missing_secret_before_anything_starts(project_dir, bakery_cli, monkeypatch):
    monkeypatch.delenv("WEB_DB_PASSWORD", raising=False)
    text = (project_dir.root / "images.yaml").read_text()
    project_dir.write(
        text.replace(
            "    playbooks:\n      - playbooks/base.yml",
            "    secrets: {db_password: WEB_DB_PASSWORD}\n    playbooks:\n      - playbooks/base.yml",
            1,
        )
    )
    result = bakery_cli("build", "web", "--target", "local")
    assert result.exit_code == 2, result.output
    assert "needs the environment variable(s) WEB_DB_PASSWORD" in result.output
    assert "never written" in result.output  # the hint says why secrets come from the environment
    assert not (project_dir.home / "builds").exists()


def test_build_without_image_or_stale_is_a_usage_error(project_dir, bakery_cli):
    result = bakery_cli("build", "--target", "local")
    assert result.exit_code == 2
    assert "or use --stale" in result.output


def test_plan_unknown_target_is_a_usage_error(project_dir, bakery_cli):
    result = bakery_cli("plan", "--target", "azure")
    assert result.exit_code == 2
    assert "unknown target 'azure'" in result.output


def test_render_refuses_a_malformed_packer_version(project_dir, bakery_cli):
    result = bakery_cli("render", "web", "--target", "aws", "--packer-version", "foo")
    assert result.exit_code == 2
    assert "--packer-version takes a version such as 1.11.2" in result.output


def test_boot_refuses_a_path_without_a_slash(project_dir, bakery_cli):
    result = bakery_cli("boot", "web", "--get", "healthz")
    assert result.exit_code == 2
    assert "--get takes a path starting with '/'" in result.output


def test_boot_as_a_group_that_is_not_local_names_the_local_ones(project_dir, bakery_cli):
    result = bakery_cli("boot", "web", "--as-group", "no-such-group")
    assert result.exit_code == 2
    assert "--as-group takes a local group; local groups: " in result.output
