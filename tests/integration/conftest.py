from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.integration.aws_groups import asg_world  # noqa: F401 (fixture)
from tests.integration.aws_world import aws_project, fake_clouds, moto, moto_endpoint  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]
HOSTILE = 'say "hi" \\ back ${x} %{y} $${z}\nline two é ✓ 🍞'


@pytest.fixture()
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's project files (images.yaml, playbooks/, templates/)."""
    for name in ("images.yaml",):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("playbooks", "templates"):
        shutil.copytree(REPO / name, tmp_path / name)
    monkeypatch.setenv("BAKERY_HOME", str(tmp_path / ".bakery"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def packer_env() -> dict[str, str]:
    """Environment for running packer by hand: dummy credentials, ansible-playbook on PATH, no cloud."""
    gcp_key = Path(__file__).parent / "data" / "gcp-dummy-credentials.json"
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/root"),
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_EC2_METADATA_DISABLED": "true",
        "GOOGLE_APPLICATION_CREDENTIALS": str(gcp_key),
        "CHECKPOINT_DISABLE": "1",
    }
