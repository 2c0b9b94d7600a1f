"""The trust rooms' shared world: a project whose images are signed by a key of its own, baked by
Baker against the fake cloud (tests/fakes/provider.py) with a stand-in packer, and rolled by an
in-memory group driver (tests/fakes/driver.py); the CLI is called in-process.

And what the audit log's tests (test_audit*.py) share: a signing key `ops` (one a module), a log in
a local registry signed by it on a clock that ticks a minute a call, and the helpers that write,
find and edit its events."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import CryptoSigner

from bakery.bake import tools
from bakery.bake.service import Baker
from bakery.core.jcs import jcs_bytes
from bakery.progress import Recording
from bakery.registry.local import LocalStore
from bakery.trust.audit import AuditLog, Event
from bakery.trust.keys import generate
from bakery.trust.signing import PublicKey
from bakery.workspace import Workspace
from tests.conftest import VALID_YAML
from tests.fakes.driver import FakeDriver
from tests.fakes.packer import FakePacker
from tests.fakes.patching import everywhere
from tests.fakes.provider import FakeProvider

TRUST = """\
trust:
  keys:
    - {name: ops, public_key: keys/ops.key.pub}
  signing: {key_file: keys/ops.key}
"""
EXTRA = """\
  app:
    description: built on web
    version: "2.0"
    from: web
    targets: [aws]
    playbooks: [playbooks/web.yml]
"""
GROUPS = """\
groups:
  web-eu:
    image: web
    target: aws
    aws: {asg: web-eu-asg, launch_template: web-eu}
  app-eu:
    image: app
    target: aws
    aws: {asg: app-eu-asg, launch_template: app-eu}
"""


def project_yaml(trust: str = TRUST) -> str:
    head = VALID_YAML[: VALID_YAML.index("groups:")]
    return head + EXTRA + GROUPS + trust


@dataclass
class World:
    project_dir: Any
    fake: FakeProvider
    driver: FakeDriver
    cli: Any

    def bake(self, name: str = "web", *, force: bool = False) -> str:
        result = Baker(self.project_dir.load(), Workspace(self.project_dir.home), Recording(), provider=self.fake).bake(
            name, "aws", force=force
        )
        return result.record.ref

    def image_id(self, ref: str) -> str:
        name, version = ref.split("@")
        return next(i.id for i in self.fake.all_images() if i.name == name and i.version == version)

    def run(self, *args: str) -> Any:
        return self.cli(*args)

    def audit(self) -> list[dict[str, Any]]:
        result = self.cli("audit", "--json")
        assert result.exit_code == 0, result.output
        return list(json.loads(result.stdout)["events"])


@pytest.fixture()
def world(project_dir: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bakery_cli: Any) -> Iterator[World]:
    generate(project_dir.root / "keys" / "ops.key")
    project_dir.write(project_yaml())
    (project_dir.root / "playbooks" / "web.yml").touch()
    packer = FakePacker(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{packer.bin_dir}{os.pathsep}{os.environ['PATH']}")
    tools.packer_version.cache_clear()
    fake, driver = FakeProvider(inbox=tmp_path / "cloud"), FakeDriver()
    with (
        everywhere(monkeypatch, "bakery.providers.base", "get_provider", lambda *a, **k: fake),
        everywhere(monkeypatch, "bakery.groups.base", "get_driver", lambda *a, **k: driver),
    ):
        yield World(project_dir, fake, driver, bakery_cli)
    tools.packer_version.cache_clear()


# --- the audit log's tests ----------------------------------------------------------------------

START = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


def trusted(signer: CryptoSigner, name: str = "ops-2026") -> PublicKey:
    return PublicKey(name, signer.public_key.keyid, signer.public_key)


def ticking(start: datetime = START) -> Callable[[], datetime]:
    """A clock one minute later at each call."""
    ticks = iter(range(10**6))
    return lambda: start + timedelta(minutes=next(ticks))


@pytest.fixture(scope="module")
def ops() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def log(registry: Path, ops: CryptoSigner) -> AuditLog:
    return AuditLog(LocalStore(registry), signer=lambda: ops, keys=[trusted(ops)], clock=ticking())


def build(log: AuditLog, version: str, who: str = "alice@host") -> Event:
    return log.append(action="build", subject=f"web@{version} on local", result="ok", who=who)


def event_file(registry: Path, seq: int) -> Path:
    return registry / "audit" / "events" / f"{seq:012d}.json"


def edit_payload(data: bytes, **changes: Any) -> bytes:
    """A stored envelope with fields of its payload changed, still valid JSON and DSSE."""
    envelope = json.loads(data)
    document = json.loads(base64.b64decode(envelope["payload"]))
    envelope["payload"] = base64.b64encode(jcs_bytes({**document, **changes})).decode()
    return json.dumps(envelope).encode()


def problems(log: AuditLog) -> list[tuple[int, str]]:
    return [(p.seq, p.what) for p in log.verify().problems]
