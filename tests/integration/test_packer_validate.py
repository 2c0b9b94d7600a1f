"""Real `packer validate` and `packer console` against bakery's renders."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bakery.bake import render
from bakery.cli.app import app
from bakery.config import load as config
from bakery.providers.local.variables import LocalPrepared
from tests.integration.conftest import HOSTILE

runner = CliRunner()


def packer(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["packer", *args], env=env, input=stdin, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("target", "template"), [("aws", "amazon-ebs.pkr.hcl"), ("gcp", "googlecompute.pkr.hcl")])
def test_cloud_renders_pass_packer_validate(
    project_dir: Path, packer_env: dict[str, str], target: str, template: str, fake_clouds: Any
) -> None:
    out = project_dir / f"out-{target}"
    result = runner.invoke(app, ["render", "web", "--target", target, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / template).is_file()
    assert f"packer build {out}" in result.stdout
    checked = packer(["validate", str(out)], packer_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert_fmt_clean(out, packer_env)


def assert_fmt_clean(out: Path, env: dict[str, str]) -> None:
    """`packer fmt -check` passes on every HCL file render wrote (and so on its templates)."""
    files = sorted(str(p) for p in out.iterdir() if p.name.endswith((".pkr.hcl", ".pkrvars.hcl")))
    assert files
    for name in files:
        formatted = packer(["fmt", "-check", "-diff", name], env)
        assert formatted.returncode == 0, f"{name}:\n{formatted.stdout}{formatted.stderr}"


def _local_render(project_dir: Path, version: str = "1.6.6") -> Path:
    """Render the qemu template with stand-in boot files (no base disk is made here)."""
    project = config.load(project_dir / "images.yaml")
    eff = project.effective("web", "local")
    stand_ins = project_dir / "stand-ins"
    stand_ins.mkdir()
    for name in ("disk.qcow2", "vmlinuz", "initrd.img"):
        (stand_ins / name).write_text("x")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    (stand_ins / "key").write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    out = project_dir / "out-local"
    render.render(
        project,
        eff,
        version="1.0.0",
        packer_version=version,
        out=out,
        prepared=LocalPrepared(
            base="sha256:stand-in",
            base_dependency=None,
            base_disk=str(stand_ins / "disk.qcow2"),
            kernel=str(stand_ins / "vmlinuz"),
            initrd=str(stand_ins / "initrd.img"),
            kernel_cmdline="root=/dev/vda bakery.ssh_key=AAAA",
            ssh_private_key_file=str(stand_ins / "key"),
            accelerator="tcg",
            output_directory=str(out / "output"),
        ),
    )
    return out


def test_local_render_passes_packer_validate(project_dir: Path, packer_env: dict[str, str]) -> None:
    out = _local_render(project_dir)
    checked = packer(["validate", str(out)], packer_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not (out / "plugins.pkr.hcl").exists()  # Packer 1.6.6 rejects required_plugins
    assert_fmt_clean(out, packer_env)


def _hostile_project(project_dir: Path, *, gcp: bool = False) -> None:
    data = yaml.safe_load((project_dir / "images.yaml").read_text())
    web = data["images"]["web"]
    if not gcp:  # its tags do not fit GCP labels, which validate refuses (as the gcp test shows)
        web["targets"] = ["aws"]
        data["groups"] = {name: g for name, g in data.get("groups", {}).items() if g["target"] == "aws"}
    web["description"] = HOSTILE
    web["tags"] = {"note": HOSTILE, "odd key: ${k}": "v"}
    web["vars"] = {"page_title": HOSTILE}
    (project_dir / "images.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))


def console(out: Path, env: dict[str, str], expression: str) -> str:
    """What Packer itself evaluates `expression` to (one expression per run: console reads one)."""
    seen = packer(["console", str(out)], env, stdin=expression + "\n")
    assert seen.returncode == 0, seen.stderr
    return seen.stdout.removesuffix("\n")


def test_hostile_values_arrive_literally_in_packer_variables(
    project_dir: Path, packer_env: dict[str, str], fake_clouds: Any
) -> None:
    _hostile_project(project_dir)
    out = project_dir / "out-aws"
    result = runner.invoke(app, ["render", "web", "--target", "aws", "--out", str(out)])
    assert result.exit_code == 0, result.output
    described = console(out, packer_env, "var.image_description")
    assert described.startswith(HOSTILE + " [bakery:") and described.endswith("]")  # then the bake's mark
    assert console(out, packer_env, 'var.image_tags["note"]') == HOSTILE
    assert json.loads(console(out, packer_env, "jsonencode(var.image_tags)")) == {"note": HOSTILE, "odd key: ${k}": "v"}
    extra = json.loads(console(out, packer_env, "var.ansible_extra_vars"))
    assert extra["page_title"] == HOSTILE
    assert extra["bakery_description"] == HOSTILE


def test_gcp_render_refuses_a_tag_too_long_for_a_label(project_dir: Path) -> None:
    _hostile_project(project_dir, gcp=True)
    result = runner.invoke(app, ["render", "web", "--target", "gcp", "--out", str(project_dir / "out")])
    assert result.exit_code == 2
    assert "GCP label" in result.output and "limit 63" in result.output
    assert "Traceback" not in result.output


def test_hostile_values_parse_back_with_python_hcl2(project_dir: Path, fake_clouds: Any) -> None:
    _hostile_project(project_dir, gcp=True)
    data = yaml.safe_load((project_dir / "images.yaml").read_text())
    data["images"]["web"]["overrides"] = {"gcp": {"tags": {"note": "short"}}}
    del data["images"]["web"]["tags"]["odd key: ${k}"]
    (project_dir / "images.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    out = project_dir / "out-gcp"
    result = runner.invoke(app, ["render", "web", "--target", "gcp", "--out", str(out)])
    assert result.exit_code == 0, result.output
    values = render.hcl.loads_values((out / render.VARS_FILE).read_text())
    assert values["image_description"].startswith(HOSTILE)  # then the provenance known before the build
    assert json.loads(values["ansible_extra_vars"])["page_title"] == HOSTILE


def test_api_only_aws_target_renders_without_provisioners(
    project_dir: Path, packer_env: dict[str, str], fake_clouds: Any
) -> None:
    data = yaml.safe_load((project_dir / "images.yaml").read_text())
    data["targets"]["aws"]["communicator"] = "none"
    (project_dir / "images.yaml").write_text(yaml.safe_dump(data))
    out = project_dir / "out-aws-none"
    assert runner.invoke(app, ["render", "web", "--target", "aws", "--out", str(out)]).exit_code == 0
    text = (out / "amazon-ebs.pkr.hcl").read_text()
    assert "provisioner" not in text and 'post-processor "manifest"' in text
    assert console(out, packer_env, "var.communicator") == "none"
    checked = packer(["validate", str(out)], packer_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
