"""The offline render (bakery/bake/preview.py): images.yaml alone, no provider made, a preview version
that is visible everywhere it is written, and a directory bakery refuses to build."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from bakery.bake import preview, render
from bakery.bake.build import run_packer
from bakery.config import kinds
from bakery.errors import ConfigError, UsageError
from bakery.progress import Recording
from bakery.providers import base
from bakery.workspace import Workspace

FAMILY = """\
targets:
  local:
    kind: local
  aws:
    kind: aws
    region: eu-west-1
  gcp:
    kind: gcp
    project: bakery-demo
    zone: europe-west1-b
images:
  web:
    description: the web image
    version: "1.0"
    source:
      local: {}
      aws:
        filter: {owners: ["136693071363"], name: debian-12-amd64-*}
      gcp: {family: debian-12, project: debian-cloud}
    playbooks: [playbooks/base.yml]
  api:
    version: "2.3"
    from: web
    playbooks: [playbooks/web.yml]
"""


@pytest.fixture()
def offline(project_dir: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The project above, where making any provider (and so any cloud client) fails the test."""

    def no_provider(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"an offline render made a provider: {args[:1]}")

    for kind in ("aws", "gcp", "local"):  # get_provider makes every provider through its kind's `make`
        monkeypatch.setattr(kinds.get(kind).module("provider"), "make", no_provider)
    monkeypatch.setattr(base.CloudProvider, "client", no_provider)
    project_dir.write(FAMILY)
    return project_dir


def rendered(project_dir: Any, image: str, target: str, out: Path | None = None) -> tuple[Any, dict[str, Any]]:
    project = project_dir.load()
    result = preview.render_offline(project, Workspace(project_dir.home), image, target, out, "1.6.6")
    values = render.hcl.loads_values((Path(result.directory) / render.VARS_FILE).read_text())
    return result, values


def test_aws_takes_the_declared_filter_and_a_preview_version(offline: Any) -> None:
    result, values = rendered(offline, "web", "aws")
    assert (result.version, result.preview, result.builder) == ("1.0-preview", True, "amazon-ebs")
    assert Path(result.directory) == offline.home / "render" / "web-aws-preview"
    assert values["source_ami"] == ""  # left to Packer: its source_ami_filter picks the newest match
    assert (values["source_ami_filter_name"], values["source_ami_filter_owners"]) == (
        "debian-12-amd64-*",
        ["136693071363"],
    )
    assert values["image_version"] == "1.0-preview" and values["ami_name"] == "web-1.0-preview"
    assert json.loads(values["ansible_extra_vars"])["bakery_version"] == "1.0-preview"
    # none of a bake's marks (invocation, state), no endpoint: what a hand build makes says "preview"
    assert values["build_tags"] == {"bakery:preview": "true"} and values["custom_endpoint_ec2"] == ""
    assert values["image_description"] == "the web image [bakery preview: not recorded]"
    manifest = json.loads((Path(result.directory) / preview.PREVIEW_FILE).read_text())
    assert manifest["preview"] is True and manifest["version"] == "1.0-preview"
    assert preview.PREVIEW_FILE in result.files and "amazon-ebs.pkr.hcl" in result.files


def test_gcp_takes_the_declared_family(offline: Any) -> None:
    _, values = rendered(offline, "web", "gcp")
    assert (values["source_image"], values["source_image_family"]) == ("", "debian-12")
    assert values["source_image_project_id"] == ["debian-cloud"]
    assert values["gcp_image_name"] == "web-1-0-preview"
    assert values["gcp_build_labels"] == {"bakery-preview": "true"}
    assert values["image_description"] == "the web image [bakery preview: not recorded]"


def test_a_child_starts_from_what_packer_finds_of_its_parent(offline: Any) -> None:
    _, aws = rendered(offline, "api", "aws")
    assert (aws["source_ami"], aws["source_ami_filter_name"], aws["source_ami_filter_owners"]) == (
        "",
        "web-*-aws-*",  # the name every bake of web on aws gives its AMI
        ["self"],
    )
    assert aws["ami_name"] == "api-2.3-preview"
    _, gcp = rendered(offline, "api", "gcp")
    assert (gcp["source_image_family"], gcp["source_image_project_id"]) == ("web", ["bakery-demo"])


@pytest.mark.parametrize("image", ["web", "api"])
def test_local_gets_stand_ins_and_a_key_of_its_own(offline: Any, image: str) -> None:
    result, values = rendered(offline, image, "local")
    out = Path(result.directory)
    assert values["base_disk"] == str(out / "preview-base-not-built" / "disk.qcow2")
    assert not (out / "preview-base-not-built").exists()  # nothing was bootstrapped
    key = Path(values["ssh_private_key_file"])
    assert key.parent == out and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert values["accelerator"] == "tcg" and values["output_directory"] == str(out / "output")


def test_a_second_preview_replaces_the_first_in_the_default_directory(offline: Any) -> None:
    first, _ = rendered(offline, "web", "aws")
    (Path(first.directory) / "stale.txt").write_text("from before")
    second, _ = rendered(offline, "web", "aws")
    assert second.directory == first.directory and not (Path(second.directory) / "stale.txt").exists()


def test_a_preview_refuses_a_directory_that_holds_a_packer_build(offline: Any, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "main.pkr.hcl").write_text("")
    with pytest.raises(ConfigError, match="already holds a Packer build"):
        rendered(offline, "web", "local", out)
    assert sorted(p.name for p in out.iterdir()) == ["main.pkr.hcl"]  # no key was left there


def test_an_unknown_image_or_target_is_a_usage_error(offline: Any) -> None:
    with pytest.raises(UsageError):
        rendered(offline, "nope", "aws")
    with pytest.raises(UsageError):
        rendered(offline, "web", "nope")


def test_bakery_never_builds_a_preview(offline: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = rendered(offline, "web", "aws", tmp_path / "out")
    log = tmp_path / "bake.log"
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # a packer started anyway would fail otherwise
    with pytest.raises(UsageError) as refused:
        run_packer(Path(result.directory), tmp_path, log, {}, Recording())
    assert refused.value.exit_code == 2
    assert "is a preview render" in refused.value.message and "does not build or record it" in refused.value.message
    assert not log.exists()  # refused before anything ran


def test_an_online_render_carries_no_preview_mark(project_dir: Any, tmp_path: Path) -> None:
    project_dir.write(FAMILY)
    project = project_dir.load()
    out = tmp_path / "out"
    render.render(project, project.effective("web", "aws"), version="1.0.0", packer_version="1.6.6", out=out)
    assert not os.path.lexists(out / preview.PREVIEW_FILE)
    preview.refuse_preview(out)  # nothing to refuse
