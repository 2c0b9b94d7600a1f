"""Where a cloud bake's package database comes from (CloudProvider.package_db): the files the
template's Packer file provisioners downloaded from the build VM, or, on a target that runs no
build VM (communicator: none, as the moto bakes do), a stated reason and no SBOM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bakery.errors import BuildError
from bakery.progress import Recording
from bakery.providers.aws.provider import AwsProvider
from bakery.providers.base import DOWNLOADED_OS_RELEASE, DOWNLOADED_STATUS, PackageDb
from bakery.providers.gcp.provider import GcpProvider
from tests.conftest import VALID_YAML
from tests.unit.providers.test_base import bake_request

NO_CLIENTS = lambda *a: pytest.fail("package_db makes no API client")  # noqa: E731


@pytest.mark.parametrize(("provider", "target"), [(AwsProvider, "aws"), (GcpProvider, "gcp")])
def test_what_packer_downloaded_from_the_build_vm_is_read(
    provider: Any, target: str, project_dir: Any, tmp_path: Path
) -> None:
    request = bake_request(project_dir, target, "1.0.0", "inv1", tmp_path)
    rendered = request.workdir / "packer"
    rendered.mkdir()
    (rendered / DOWNLOADED_STATUS).write_bytes(b"Package: a\nStatus: install ok installed\n")
    (rendered / DOWNLOADED_OS_RELEASE).write_bytes(b"ID=debian\n")
    assert provider(Recording(), NO_CLIENTS).package_db(request) == PackageDb(
        b"Package: a\nStatus: install ok installed\n", b"ID=debian\n", f"{target}'s build VM (Packer)"
    )
    (rendered / DOWNLOADED_STATUS).unlink()
    with pytest.raises(BuildError) as missing:
        provider(Recording(), NO_CLIENTS).package_db(request)
    assert missing.value.message == (
        "Packer finished without downloading the build VM's package database (sbom-dpkg-status)"
    )


def test_a_target_without_a_build_vm_has_none_and_says_why(project_dir: Any, tmp_path: Path) -> None:
    project_dir.write(
        VALID_YAML.replace("    region: eu-west-1\n", "    region: eu-west-1\n    communicator: none\n", 1)
    )
    request = bake_request(project_dir, "aws", "1.0.0", "inv1", tmp_path)
    assert AwsProvider(Recording(), NO_CLIENTS).package_db(request) == PackageDb(
        missing="target 'aws' has communicator: none: no build VM ran to read packages from"
    )
