"""What a prune reads of a version's use (bakery/prune/facts.py): an instance a group's line credits
to a version is named once, by the group; an instance the group lists but could not tie to any
version (its launch template version deleted, another template) keeps the provider's own line,
so that the version it boots is never shown as removable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bakery.config.models import Prune
from bakery.core.catalog import ImageRecord
from bakery.groups.base import Instance
from bakery.providers.base import Usage
from bakery.prune import facts
from bakery.prune.decide import decide
from tests.fakes.driver import FakeDriver
from tests.unit.scan.test_heads import trust_of
from tests.unit.trust.conftest import World
from tests.unit.trust.conftest import world as world

OLD = "2026-01-01T00:00:00Z"
LINE = "instance i-0abc (running) in eu-west-1"


class Using:
    """A provider whose only answer is what uses each version: the cloud sees i-0abc boot 1.0.0."""

    def usage(self, records: Sequence[ImageRecord]) -> list[Usage]:
        return [Usage(uses=(LINE,) if r.version == "1.0.0" else ()) for r in records]


def verdicts(world: World, instance: Instance) -> dict[str, tuple[str, tuple[str, ...]]]:
    records = [
        ImageRecord("web", version, "aws", "aws", "sha256:x", OLD, "ami-base")
        for version in ("1.0.0", "1.0.1", "1.0.2")
    ]
    driver = FakeDriver()
    driver.group("web-eu").instances = [instance]
    trust = trust_of(world)
    found = facts.candidates(trust.project, trust, "aws", Using(), lambda: driver, records)
    policy = {"web": Prune(keep=1, older_than_days=30)}
    return {v.image: (v.action, v.reasons) for v in decide(found, policy, datetime(2026, 6, 1, tzinfo=UTC))}


def test_an_instance_the_group_credits_to_the_version_is_named_once_by_the_group(world: World) -> None:
    got = verdicts(world, Instance("i-0abc", "web@1.0.0", "ami-0123", "InService"))
    assert got["web@1.0.0"] == ("keep", ("in use: group web-eu's instance i-0abc",))
    assert got["web@1.0.1"][0] == "remove"


def test_an_instance_the_group_could_not_tie_to_a_version_keeps_the_version_the_provider_sees_it_boot(
    world: World,
) -> None:
    got = verdicts(world, Instance("i-0abc", None, "ami-0123", "InService"))  # its launch template version deleted
    assert got["web@1.0.0"] == ("keep", (f"in use: {LINE}",))
    assert got["web@1.0.1"][0] == "remove"
