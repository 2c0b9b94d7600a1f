"""An image baked on the fake cloud (tests/unit/trust/conftest.py's world), its tests declared,
and a stand-in for its test instance: an HTTP server on 127.0.0.1 whose answers a test sets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bakery.imagetest.base import Reach
from tests.fakes.http_stand_in import serving
from tests.fakes.launcher import FakeLauncher
from tests.unit.trust.conftest import world  # noqa: F401 - the fixture, used by these tests

TESTS = """\
    tests:
      http:
        - {path: /healthz, port: 80, status: 200, body: "^ok"}
        - {path: /, port: 80, status: 200}
"""


@dataclass
class Page:
    """What the stand-in answers, per path (status, body); a test changes it."""

    answers: dict[str, tuple[int, str]] = field(default_factory=lambda: {"/healthz": (200, "ok web"), "/": (200, "hi")})
    port: int = 0


@pytest.fixture()
def page() -> Iterator[Page]:
    found = Page()
    with serving(lambda path: found.answers.get(path, (404, "not found"))) as port:
        found.port = port
        yield found


@pytest.fixture()
def launcher(page: Page) -> FakeLauncher:
    # The stand-in answers for the instance's port 80; no SSH (no playbooks in these tests).
    return FakeLauncher(Reach("127.0.0.1", ports={80: page.port}, local=True))


@pytest.fixture()
def tested_world(world: Any, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811 - the fixture above
    """The world, its web image declaring HTTP checks, the Tester's providers the fake cloud's."""
    text = world.project_dir.config.read_text()
    world.project_dir.write(
        text.replace("    tags:\n      team: platform\n", "    tags:\n      team: platform\n" + TESTS, 1)
    )
    monkeypatch.setattr("bakery.imagetest.service.get_provider", lambda *a, **k: world.fake)
    return world
