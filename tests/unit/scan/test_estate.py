"""The estate report's SBOM and findings sections, read from the registry: a version whose stored
scan is over the policy of the channel it heads is marked vulnerable, its findings listed with the
allowance that lets one through."""

from __future__ import annotations

import pytest

from bakery.progress import Recording
from bakery.report.build import build
from bakery.report.readers import registry_readers
from bakery.workspace import Workspace
from tests.unit.scan.conftest import NEWER
from tests.unit.scan.test_heads import running_head
from tests.unit.trust.conftest import World


@pytest.fixture(autouse=True)
def fake_cloud(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder reaches the fake cloud too (the world patches the services' own get_provider)."""
    monkeypatch.setattr("bakery.report.build.get_provider", lambda *a, **k: world.fake)


def estate(world: World):  # -> bakery.report.model.Estate
    project, workspace = world.project_dir.load(), Workspace(world.project_dir.home)
    return build(project, workspace, Recording(), registry_readers(project, workspace, Recording()))


def test_the_report_shows_sbom_and_stored_findings_and_marks_a_version_over_its_channels_policy(world: World) -> None:
    ref = running_head(world)
    [unscanned] = estate(world).versions
    assert (unscanned.sbom.packages, unscanned.sbom.os) == (8, "Debian GNU/Linux 12 (bookworm)")  # type: ignore[union-attr]
    assert unscanned.findings is None and not unscanned.vulnerable

    assert world.run("scan", "--heads").exit_code == 0
    [within] = estate(world).versions
    assert within.findings is not None and not within.vulnerable
    [openssl] = [f for f in within.findings.findings if f.package == "openssl"]
    assert (openssl.id, openssl.version, openssl.fixed_in) == ("CVE-2025-9230", "3.0.15-1~deb12u1", "3.0.17-1~deb12u3")
    assert openssl.allowed == "testing: until 2099-12-31 (KEK unwrap unused)"

    assert world.run("scan", "--heads", "--feed", str(NEWER)).exit_code == 1
    [over] = estate(world).versions
    assert over.ref == ref and over.vulnerable
    assert over.findings is not None and over.findings.feed == str(NEWER)
    assert estate(world).counts()["vulnerable"] == 1
