"""The promotion rooms' world: the trust world (tests/unit/trust/conftest.py: a fake cloud, a
stand-in packer, an in-memory group driver) with three trusted keys (ops bakes, alice and bob
approve), channels with gates, and groups that follow them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bakery.trust import channels
from bakery.trust.keys import generate
from tests.unit.trust.conftest import World, project_yaml
from tests.unit.trust.conftest import world as trust_world  # noqa: F401 (the fixture this one builds on)

TRUST = """\
trust:
  keys:
    - {name: ops, public_key: keys/ops.key.pub}
    - {name: alice, public_key: keys/alice.key.pub}
    - {name: bob, public_key: keys/bob.key.pub}
  signing: {key_file: keys/ops.key}
"""
CHANNELS = """\
channels:
  testing: {}
  stable:
    promote_from: testing
    soak: 24h
    approvals: 2
    tests: passed
"""


class Clock:
    """The time channel moves are stamped with and soaks measured to (bakery.trust.channels.now)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at: datetime | None = None
        monkeypatch.setattr(channels, "now", lambda: self.at or datetime.now(UTC))

    def set(self, **delta: float) -> None:
        """From now on, the time is the real time moved by `delta` (days=, hours=)."""
        self.at = datetime.now(UTC) + timedelta(**delta)


@pytest.fixture()
def world(trust_world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:  # noqa: F811
    root = trust_world.project_dir.root
    for name in ("alice", "bob", "mallory"):
        generate(root / "keys" / f"{name}.key")
    text = project_yaml(TRUST).replace("    aws: {asg: web-eu-asg", "    channel: testing\n    aws: {asg: web-eu-asg")
    trust_world.project_dir.write(text + CHANNELS)
    yield trust_world


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def as_key(monkeypatch: pytest.MonkeyPatch, world: World, name: str) -> None:
    """This process signs with `name`'s key and acts as `name` from now on (as that person's CI
    job would: `who()` is 'github:NAME@org/infra#7')."""
    monkeypatch.setenv("BAKERY_SIGNING_KEY", str(world.project_dir.root / "keys" / f"{name}.key"))
    as_person(monkeypatch, name)


def as_person(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """`who()` is 'github:NAME@org/infra#7' from now on (the key signing stays what it was)."""
    for variable, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "7",
        "GITHUB_ACTOR": name,
        "GITHUB_REPOSITORY": "org/infra",
    }.items():
        monkeypatch.setenv(variable, value)


def as_myself(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back to this machine's own key and identity (user@host: the one who bakes in these tests)."""
    for variable in ("BAKERY_SIGNING_KEY", "GITHUB_ACTIONS", "GITHUB_RUN_ID", "GITHUB_ACTOR", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(variable, raising=False)


def json_of(result: Any) -> Any:
    import json

    return json.loads(result.stdout)
