"""Shared fixtures: a small bakery project in tmp_path, and the CLI invoked in-process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

REPO = Path(__file__).resolve().parents[1]

# No test may reach a real cloud, nor a metadata service: every SDK is pointed at a closed port
# on loopback unless a test hands in a client of its own (moto server, the fake GCE server).
_OFFLINE = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "BAKERY_GCP_ENDPOINT": "http://127.0.0.1:9",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_GCE_CHECK": "True",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "GOOGLE_APPLICATION_CREDENTIALS": str(REPO / "tests" / "integration" / "data" / "gcp-dummy-credentials.json"),
    "CHECKPOINT_DISABLE": "1",
}
os.environ.update(_OFFLINE)
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "BAKERY_CONFIG"):
    os.environ.pop(_name, None)

# A valid images.yaml. Tests that check line numbers derive their files from this text, so the
# line numbers in the comments are load-bearing: keep them right when editing.
VALID_YAML = """\
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
        ami: ami-0123456789abcdef0
      gcp:
        family: debian-12
        project: debian-cloud
    playbooks:
      - playbooks/base.yml
      - playbooks/web.yml
    vars:
      page_title: Hello
    tags:
      team: platform
groups:
  web-eu:
    image: web
    target: aws
    channel: stable
    aws: {asg: web-eu-asg, launch_template: web-eu}
channels:
  testing: {}
  stable:
    promote_from: testing
"""
# line 3: `    kind: local`, 14: `    version: "1.0"`, 22: `    playbooks:`,
# 24: `      - playbooks/web.yml`, 29: `groups:`, 32: `    target: aws`, 33: `    channel: stable`,
# 37: `  stable:`, 38: `    promote_from: testing`


# A Debian archive as the build machine's apt would name it: tests never depend on this machine's
# /etc/apt (CI's may list another mirror, or none). The e2e tests bake for real and use the real one.
MACHINE_MIRROR = "http://127.0.0.1:9/debian"


@pytest.fixture(autouse=True)
def machine_apt_sources(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if request.node.get_closest_marker("e2e"):
        yield
        return
    from bakery.config import aptsource

    etc = tmp_path_factory.mktemp("etc-apt")
    (etc / "sources.list").write_text(f"deb {MACHINE_MIRROR} bookworm main\n")
    saved, saved_env = aptsource.ETC_APT, os.environ.get("BAKERY_APT_DIR")
    aptsource.ETC_APT = etc
    os.environ["BAKERY_APT_DIR"] = str(etc)  # for the bakery processes a test starts
    try:
        yield
    finally:
        aptsource.ETC_APT = saved
        if saved_env is None:
            os.environ.pop("BAKERY_APT_DIR", None)
        else:
            os.environ["BAKERY_APT_DIR"] = saved_env


@dataclass
class ProjectDir:
    """A project directory (images.yaml, playbooks/, templates/) and the bakery home it uses."""

    root: Path
    home: Path

    @property
    def config(self) -> Path:
        return self.root / "images.yaml"

    def write(self, text: str) -> Path:
        self.config.write_text(text, encoding="utf-8")
        return self.config

    def load(self):  # -> bakery.config.Project
        from bakery.config import load as config

        return config.load(self.config)

    def nothing_written(self) -> bool:
        """Neither $BAKERY_HOME nor a .bakery beside images.yaml exists."""
        return not self.home.exists() and not (self.root / ".bakery").exists()


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProjectDir]:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "templates", root / "templates")
    home = tmp_path / ".bakery"
    monkeypatch.setenv("BAKERY_HOME", str(home))
    monkeypatch.delenv("BAKERY_CONFIG", raising=False)
    monkeypatch.chdir(root)
    project = ProjectDir(root=root, home=home)
    project.write(VALID_YAML)
    yield project


@pytest.fixture
def valid_yaml() -> str:
    return VALID_YAML


@pytest.fixture
def bakery_cli():
    """Invoke the typer app in-process: bakery_cli('validate', '-f', path) -> click Result."""
    from bakery.cli.app import app

    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke
