"""The prune decision: candidates and what uses them in, a verdict with its reasons out."""

from __future__ import annotations

from datetime import UTC, datetime

from bakery.config.models import Prune
from bakery.core.catalog import ImageRecord
from bakery.prune.decide import KEEP, REMOVE, Candidate, decide

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OLD = "2026-01-01T00:00:00Z"
POLICY = {"web": Prune(keep=1, older_than_days=30), "base": Prune(keep=1, older_than_days=30)}


def rec(name: str, version: str, *, created: str = OLD, parent: str | None = None, target: str = "aws") -> ImageRecord:
    return ImageRecord(name, version, target, "aws", "sha256:x", created, "ami-base", parent=parent)


def verdicts(
    *candidates: Candidate, policies: dict[str, Prune] | None = None
) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {v.image: (v.action, v.reasons) for v in decide(candidates, policies or POLICY, NOW)}


def test_old_unused_versions_go_and_the_newest_stays() -> None:
    got = verdicts(Candidate(rec("web", "1.0.0")), Candidate(rec("web", "1.0.1")), Candidate(rec("web", "1.0.10")))
    assert got["web@1.0.0"] == (REMOVE, ("older than 30 days, not among the newest 1, unused",))
    assert got["web@1.0.1"][0] == REMOVE
    assert got["web@1.0.10"] == (KEEP, ("among the newest 1",))  # version order, not text order


def test_every_kind_of_use_keeps_a_version_and_each_is_named() -> None:
    got = verdicts(
        Candidate(rec("web", "1.0.0"), uses=("launch template web-lt version 1 in eu-west-1",)),
        Candidate(rec("web", "1.0.1"), uses=("instance i-1 (running) in eu-west-1", "group web-aws's template lt:2")),
        Candidate(rec("web", "1.0.2"), heads=("head of channel stable",)),
        Candidate(rec("web", "1.0.3"), heads=("in the kept history of channel stable",)),
        Candidate(rec("web", "1.0.4"), shared_with=("210987654321 (ami-1 in eu-west-1)",)),
        Candidate(rec("web", "1.0.5")),
        Candidate(rec("web", "1.0.6", created="2026-05-20T00:00:00Z")),
        Candidate(rec("web", "1.0.7")),
    )
    assert got["web@1.0.0"] == (KEEP, ("in use: launch template web-lt version 1 in eu-west-1",))
    assert got["web@1.0.1"] == (
        KEEP,
        ("in use: instance i-1 (running) in eu-west-1", "in use: group web-aws's template lt:2"),
    )
    assert got["web@1.0.2"] == (KEEP, ("head of channel stable",))
    assert got["web@1.0.3"] == (KEEP, ("in the kept history of channel stable",))
    assert got["web@1.0.4"] == (KEEP, ("shared with 210987654321 (ami-1 in eu-west-1)",))
    assert got["web@1.0.5"][0] == REMOVE
    assert got["web@1.0.6"] == (KEEP, ("younger than 30 days (created 2026-05-20T00:00:00Z)",))
    assert got["web@1.0.7"] == (KEEP, ("among the newest 1",))


def test_a_shared_image_goes_when_the_policy_allows_it() -> None:
    got = verdicts(
        Candidate(rec("web", "1.0.0"), shared_with=("210987654321",)),
        Candidate(rec("web", "1.0.1")),
        policies={"web": Prune(keep=1, older_than_days=30, shared=True)},
    )
    assert got["web@1.0.0"] == (
        REMOVE,
        ("older than 30 days, not among the newest 1, unused, shared with 210987654321 (policy allows)",),
    )


def test_the_parents_of_a_kept_image_stay_up_the_ancestry_on_its_target_only() -> None:
    got = verdicts(
        Candidate(rec("base", "1.0.0")),
        Candidate(rec("base", "1.0.1")),
        Candidate(rec("base", "1.0.2")),
        Candidate(rec("mid", "1.0.0", parent="base@1.0.0")),
        Candidate(rec("web", "1.0.0", parent="mid@1.0.0"), uses=("instance i-1 (running) in eu-west-1",)),
        Candidate(rec("web", "1.0.1", parent="base@1.0.2")),
        Candidate(rec("web", "1.0.2", parent="base@1.0.1", target="other")),  # another target's base@1.0.1
        policies={**POLICY, "mid": Prune(keep=1, older_than_days=30)},
    )
    assert got["mid@1.0.0"] == (KEEP, ("among the newest 1", "parent of web@1.0.0, which stays"))
    assert got["base@1.0.0"] == (KEEP, ("parent of mid@1.0.0, which stays",))
    assert got["base@1.0.1"] == (REMOVE, ("older than 30 days, not among the newest 1, unused",))
    assert got["web@1.0.1"] == (KEEP, ("among the newest 1",))
    assert got["base@1.0.2"] == (KEEP, ("among the newest 1", "parent of web@1.0.1, which stays"))


def test_an_image_without_a_policy_or_a_creation_time_stays() -> None:
    got = verdicts(
        Candidate(rec("other", "1.0.0")),
        Candidate(rec("web", "1.0.0", created="")),
        Candidate(rec("web", "1.0.1")),
    )
    assert got["other@1.0.0"] == (KEEP, ("no prune policy",))
    assert got["web@1.0.0"] == (KEEP, ("creation time unknown (none recorded)",))
