"""The estate report's SBOM and findings sections, read from the registry: a version whose stored
scan is over the policy of the channel it heads is marked vulnerable, its findings listed with the
allowance that lets one through; a stored scan or SBOM that cannot be trusted is shown as such,
with why (what `bakery status` says), never as "not scanned" / "no SBOM recorded"."""

from __future__ import annotations

import pytest

from bakery.progress import Recording
from bakery.registry.base import update
from bakery.report import graph, model, render
from bakery.report.build import build
from bakery.report.readers import registry_readers
from bakery.workspace import Workspace
from tests.unit.scan.conftest import NEWER
from tests.unit.scan.test_heads import running_head, trust_of
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


def put(world: World, key: str, data: bytes | None) -> None:
    store = trust_of(world).store
    if data is None:
        store.delete(key)
    else:
        update(store, key, lambda _there: data)


def page_of(world: World) -> tuple[model.Version, str, str]:
    found = estate(world)
    [version] = found.versions
    return version, render.page(found, "<svg></svg>"), graph.dot_source(found)


def test_a_stored_scan_put_back_deleted_or_broken_is_shown_untrusted_with_why_as_status_says(world: World) -> None:
    ref = running_head(world)
    key = "scan/aws/web/1.0.0.json"
    assert world.run("scan", "--heads").exit_code == 0
    first = trust_of(world).store.get(key)
    assert first is not None
    assert world.run("scan", "--heads", "--feed", str(NEWER)).exit_code == 1

    put(world, key, first.data)  # the older signed envelope, which verifies on its own
    [said] = [line for line in world.run("status", "web-eu").stdout.splitlines() if "cannot be trusted" in line]
    version, html, dot = page_of(world)
    why = said.split("whose stored scan cannot be trusted: ")[1]
    assert why.startswith(f"{key}: not the scan the signed audit log records last (event ")
    assert version.findings == model.Untrusted(why) and not version.vulnerable
    assert "not scanned" not in html and ">SCAN UNTRUSTED<" in html
    assert f'<p class="untrusted">a scan is stored, but it cannot be trusted: {why}</p>' in html
    assert f'label="{ref} (SCAN UNTRUSTED, untested)"' in dot and f'fillcolor="{graph.UNTRUSTED[0]}"' in dot

    put(world, key, None)
    version, html, _ = page_of(world)
    assert isinstance(version.findings, model.Untrusted) and "(deleted?)" in version.findings.why
    assert "not scanned" not in html
    put(world, key, b"{}")
    version, _, _ = page_of(world)
    assert isinstance(version.findings, model.Untrusted) and version.findings.why.startswith(f"{key} does not verify")
    assert estate(world).counts()["untrusted"] == 1


def test_an_sbom_that_does_not_verify_is_shown_untrusted_not_as_none_recorded(world: World) -> None:
    running_head(world)
    key = "sbom/aws/web/1.0.0.json"
    put(world, key, b'{"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}')
    version, html, dot = page_of(world)
    assert isinstance(version.sbom, model.Untrusted) and version.sbom.why.startswith(f"{key} does not verify: ")
    assert "no SBOM recorded" not in html and ">SBOM UNTRUSTED<" in html
    assert f'<p class="untrusted">an SBOM is stored, but it cannot be trusted: {version.sbom.why}</p>' in html
    assert "(SBOM UNTRUSTED, untested)" in dot
    put(world, key, None)  # the bake's audit event records the SBOM it stored: it was deleted
    version, html, _ = page_of(world)
    assert isinstance(version.sbom, model.Untrusted) and version.sbom.why.endswith(
        "the signed audit log records an SBOM (event 1), but the registry holds none (deleted?)"
    )
    assert "no SBOM recorded" not in html and ">SBOM UNTRUSTED<" in html


def test_with_no_provenance_that_verifies_a_stored_scan_and_sbom_are_bound_to_nothing_and_shown_so(
    world: World,
) -> None:
    running_head(world)
    assert world.run("scan", "--heads").exit_code == 0
    put(world, "attestations/aws/web/1.0.0.dsse.json", None)
    version, html, _ = page_of(world)
    nothing = "nothing binds it to the image, which has no provenance statement that verifies"
    assert version.findings == model.Untrusted(f"scan/aws/web/1.0.0.json: {nothing}")
    assert version.sbom == model.Untrusted(f"sbom/aws/web/1.0.0.json: {nothing}")
    assert "not scanned" not in html and "no SBOM recorded" not in html
