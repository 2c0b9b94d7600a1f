"""The report's builder reads the estate from bakery's services (against the fake cloud and the
in-memory group driver): versions with their checks, heads, tests and approvals; groups with what
they run and their rollout history; SBOMs and findings only through the readers handed in."""

from __future__ import annotations

import pytest

from bakery.progress import Recording
from bakery.report import model
from bakery.report.build import Readers, build, version_anchor
from bakery.workspace import Workspace
from tests.unit.promote.conftest import as_key, as_myself
from tests.unit.promote.conftest import world as promote_world  # noqa: F401 (the fixtures this test builds on)
from tests.unit.promote.test_promote import passed_tests
from tests.unit.trust.conftest import World
from tests.unit.trust.conftest import world as trust_world  # noqa: F401


@pytest.fixture(autouse=True)
def fake_cloud(promote_world: World, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The builder reaches the fake cloud too (the world patches the services' own get_provider)."""
    monkeypatch.setattr("bakery.report.build.get_provider", lambda *a, **k: promote_world.fake)


def estate_of(world: World, readers: Readers | None = None) -> model.Estate:
    return build(world.project_dir.load(), Workspace(world.project_dir.home), Recording(), readers)


def test_the_estate_names_heads_tests_approvals_runners_history_and_revocations(
    promote_world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = promote_world
    first = world.bake()
    passed_tests(world, first)
    assert world.run("promote", first, "--to", "testing", "--target", "aws").exit_code == 0
    as_key(monkeypatch, world, "alice")
    assert world.run("approve", first, "--for", "stable", "--target", "aws", "--comment", "looked").exit_code == 0
    as_myself(monkeypatch)
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    second = world.bake(force=True)
    assert world.run("revoke", second, "--reason", "CVE-2026-1", "--target", "aws").exit_code == 0

    estate = estate_of(world)
    versions = {v.ref: v for v in estate.versions}
    one, two = versions[first], versions[second]
    assert (one.verified, one.tests.state, one.heads, one.untested) == (True, "passed", ("testing",), False)
    assert [(a.channel, a.key, a.comment) for a in one.approvals] == [("stable", "alice", "looked")]
    assert [(r.group, r.instances, r.anchor) for r in one.runs_on] == [("web-eu", 2, "group-web-eu")]
    assert one.provenance.builder and one.provenance.dependencies and one.provenance.digest.startswith("sha256:")
    assert two.revoked.startswith("revoked since ") and ": CVE-2026-1 (by " in two.revoked
    assert not two.verified and two.untested
    assert (one.sbom, one.findings) == (None, None)
    [web] = [g for g in estate.groups if g.name == "web-eu"]
    assert web.intended_anchor == version_anchor("aws", first) == one.anchor
    assert [(r.image, r.instances, r.anchor) for r in web.running] == [(first, 2, one.anchor)]
    [rolled] = web.history
    assert (rolled.kind, rolled.to, rolled.to_anchor, rolled.result) == ("rollout", first, one.anchor, "succeeded")
    [head] = [h for h in estate.heads if h.channel == "testing"]
    assert (head.version, head.anchor) == (first[4:], one.anchor)
    assert [(g.name, g.drift) for g in estate.groups] == [
        ("app-eu", ("the group is not running (bakery rollout brings it up)",)),
        ("web-eu", ()),
    ]
    assert estate.counts() == {
        "versions": 2,
        "revoked": 1,
        "untested": 1,
        "vulnerable": 0,
        "untrusted": 0,
        "drifting": 1,
    }


def test_sbom_and_findings_come_from_the_readers_handed_in(promote_world: World) -> None:  # noqa: F811
    ref = promote_world.bake()
    found = model.Findings("feed.json", "2026-12-05", (model.Finding("CVE-2026-9", "zlib", "1.2", "critical"),), True)
    readers = Readers(
        sbom=lambda record: model.Sbom(7) if record.ref == ref else None,
        findings=lambda record: found,
    )
    [v] = estate_of(promote_world, readers).versions
    assert (v.sbom, v.findings, v.vulnerable) == (model.Sbom(7), found, True)
