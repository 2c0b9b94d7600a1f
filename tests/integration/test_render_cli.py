"""`bakery render` resolves exactly as a bake would: the source, the endpoint, the next version and
the bake's marks, read from the clouds (moto and the fake GCE server here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bakery.bake import render
from bakery.cli.app import app

runner = CliRunner()


def bakery(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_render_writes_what_a_bake_would_build(project_dir: Path, fake_clouds: Any, tmp_path: Path) -> None:
    moto, _gce = fake_clouds
    out = tmp_path / "rendered"
    result = bakery("render", "web", "--target", "aws", "--packer-version", "1.11.0", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"rendered web 1.0.0 for aws (amazon-ebs) into {out}\nrun it with: packer build {out}\n"
    values = render.hcl.loads_values((out / render.VARS_FILE).read_text())
    assert values["source_ami"] == "ami-0de000000000000d1"  # the filter resolved, as a bake resolves it
    assert values["custom_endpoint_ec2"] == moto  # AWS_ENDPOINT_URL, as a bake uses it
    assert re.fullmatch(r"web-1\.0\.0-aws-[0-9a-f]{12}", values["ami_name"])
    invocation = values["ami_name"].rsplit("-", 1)[1]
    assert values["image_description"].endswith(f"[bakery:{invocation}]")
    assert values["build_tags"]["bakery:invocation"] == invocation
    assert (out / "amazon-ebs.pkr.hcl").is_file() and (out / "plugins.pkr.hcl").is_file()


def test_render_takes_the_catalog_s_next_version(aws_project: Path, moto: str, tmp_path: Path) -> None:
    assert bakery("build", "app", "-t", "aws").exit_code == 0
    result = bakery("render", "app", "-t", "aws", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{") :])["version"] == "0.3.1"


def test_render_json_for_gcp(project_dir: Path, fake_clouds: Any, tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    result = bakery("render", "web", "-t", "gcp", "--packer-version", "1.6.6", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kind"] == "render" and doc["schema_version"] == 1
    assert (doc["image"], doc["target"], doc["version"]) == ("web", "gcp", "1.0.0")
    assert doc["builder"] == "googlecompute"
    assert doc["directory"] == str(out)
    assert "googlecompute.pkr.hcl" in doc["files"] and "plugins.pkr.hcl" not in doc["files"]
    values = render.hcl.loads_values((out / render.VARS_FILE).read_text())
    assert values["source_image"] == "debian-12-bookworm-v20260101"


def test_render_refuses_an_existing_build(project_dir: Path, fake_clouds: Any, tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    out.mkdir()
    (out / "main.pkr.hcl").write_text("")
    result = bakery("render", "web", "-t", "aws", "--packer-version", "1.11.0", "-o", out)
    assert result.exit_code == 2
    assert "already holds a Packer build" in result.stderr
    assert "Traceback" not in result.output


def test_vars_of_any_yaml_type_render(project_dir: Path, fake_clouds: Any, tmp_path: Path) -> None:
    text = (project_dir / "images.yaml").read_text()
    (project_dir / "images.yaml").write_text(text.replace("    vars:\n", "    vars:\n      release: 2024-01-01\n", 1))
    result = bakery("render", "web", "--target", "aws", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert '\\"release\\": \\"2024-01-01\\"' in (tmp_path / "out" / "bakery.auto.pkrvars.hcl").read_text()


def test_render_against_an_unreachable_cloud_is_one_line(project_dir: Path, tmp_path: Path) -> None:
    # conftest points AWS at a closed port on loopback
    result = bakery("render", "web", "--target", "aws", "--out", tmp_path / "out", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["kind"] == "error"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and errors[0].startswith("error: AWS: listing AMIs: ")
    assert "Traceback" not in result.output
