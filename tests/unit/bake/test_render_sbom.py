"""The cloud templates download the build VM's package database for the image's SBOM (Packer file
provisioners, direction = "download", into the rendered directory where CloudProvider.package_db
reads it), after Ansible and before the hygiene step; an API-only target (communicator: none) has
no such step."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakery.providers.base import DOWNLOADED_OS_RELEASE, DOWNLOADED_STATUS
from tests.unit.bake.test_render import BASE, do_render


def downloads(text: str) -> list[tuple[str, str]]:
    blocks = text.split('provisioner "file" {')[1:]
    found = []
    for block in blocks:
        body = block.split("\n  }\n", 1)[0]
        fields = dict(
            (line.split("=", 1)[0].strip(), line.split("=", 1)[1].strip().strip('"'))
            for line in body.splitlines()
            if "=" in line
        )
        found.append((fields["source"], fields["destination"]))
    return found


@pytest.mark.parametrize(("target", "template"), [("aws", "amazon-ebs.pkr.hcl"), ("gcp", "googlecompute.pkr.hcl")])
def test_the_package_database_is_downloaded_before_hygiene(
    project_dir: Any, tmp_path: Path, target: str, template: str
) -> None:
    project_dir.write(yaml.safe_dump(BASE, sort_keys=False))
    do_render(project_dir.load(), target, tmp_path / "out", packer_version="1.6.6")
    text = (tmp_path / "out" / template).read_text()
    assert downloads(text) == [
        ("/var/lib/dpkg/status", "${path.root}/" + DOWNLOADED_STATUS),
        ("/etc/os-release", "${path.root}/" + DOWNLOADED_OS_RELEASE),
    ]
    assert text.index('provisioner "ansible"') < text.index("/var/lib/dpkg/status") < text.index("hygiene.sh")


def test_an_api_only_target_downloads_nothing(project_dir: Any, tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["targets"]["aws"]["communicator"] = "none"
    project_dir.write(yaml.safe_dump(data, sort_keys=False))
    do_render(project_dir.load(), "aws", tmp_path / "out", packer_version="1.6.6")
    text = (tmp_path / "out" / "amazon-ebs.pkr.hcl").read_text()
    assert "/var/lib/dpkg/status" not in text and 'provisioner "file"' not in text
