"""`bakery report --out DIR` opened from disk in a real headless Chromium (Debian's, driven by
Playwright over its pipe: no browser download, no port): the page loads with no console error and
no request that is not file://, a click from a group to the version it runs lands on that
version's findings, a stored scan that cannot be trusted is shown so (not "not scanned") in its own
colour and marked in the graph, and screenshots are kept: under $BAKERY_REPORT_SCREENSHOTS when
set, else in the test's tmp dir (pytest's basetemp, test_..._group0/screenshots/)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Request, Route, expect, sync_playwright

from bakery.registry.base import update
from tests.unit.promote.conftest import json_of
from tests.unit.promote.conftest import world as promote_world  # noqa: F401 (the fixtures this test builds on)
from tests.unit.scan.conftest import TRACKER
from tests.unit.scan.test_heads import trust_of
from tests.unit.trust.conftest import World
from tests.unit.trust.conftest import world as trust_world  # noqa: F401

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def screenshots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("BAKERY_REPORT_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def estate(world: World) -> dict[str, str]:
    """web 1.0.0 promoted to testing, scanned with the fixture feed and rolled out on web-eu (which
    follows testing); web 1.0.1 baked and revoked; app (built on web) baked, scanned, its stored
    scan then broken, and rolled out on app-eu."""
    first = world.bake()
    assert world.run("promote", first, "--to", "testing", "--target", "aws").exit_code == 0
    assert world.run("scan", first, "--target", "aws", "--feed", str(TRACKER)).exit_code == 0
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    second = world.bake(force=True)
    app = world.bake("app")
    assert world.run("scan", app, "--target", "aws", "--feed", str(TRACKER)).exit_code == 0
    key = "scan/aws/" + app.replace("@", "/") + ".json"
    update(trust_of(world).store, key, lambda _there: b"{}")  # broken: its signature cannot be checked
    assert world.run("rollout", "app-eu", "--image", app, "--yes").exit_code == 0
    revoked = world.run("revoke", second, "--reason", "CVE-2026-1 <script>alert(1)</script>", "--target", "aws")
    assert revoked.exit_code == 0, revoked.output
    return {"first": first, "second": second, "app": app}


def test_the_report_opens_from_disk_with_no_request_out_and_a_group_leads_to_its_versions_findings(
    promote_world: World,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bakery.report.build.get_provider", lambda *a, **k: promote_world.fake)
    refs = estate(promote_world)
    out = tmp_path / "site"
    result = promote_world.run("report", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    written = json_of(result)
    assert written["index"] == str(out / "index.html")
    assert written["counts"] == {
        "versions": 3,
        "revoked": 2,
        "vulnerable": 0,
        "untested": 3,
        "untrusted": 1,
        "drifting": 1,
    }, written
    html = (out / "index.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    shots = screenshots(tmp_path)
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def refuse(route: Route) -> None:  # nothing leaves the file, even by mistake
                route.abort()

            page.route("http*://**", refuse)
            page.on("request", lambda r: requests.append(_url(r)))
            page.on("console", lambda m: errors.append(_console(m)) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.goto((out / "index.html").as_uri())
            expect(page.locator("h1")).to_have_text("The estate")
            expect(page.locator("#lineage svg")).to_be_visible()
            page.screenshot(path=str(shots / "report.png"), full_page=True)

            group = page.locator("#group-web-eu")
            expect(group).to_contain_text("Rollout history")
            link = group.locator("a.runs").first
            expect(link).to_have_text(refs["first"])
            link.click()
            anchor = page.evaluate("location.hash").removeprefix("#")
            assert anchor.startswith("version-aws-web-"), anchor
            assert page.evaluate("document.querySelector(':target').id") == anchor
            assert anchor == "version-aws-" + refs["first"].replace("@", "-")
            version = page.locator(f"[id='{anchor}']")
            expect(version.locator("h3")).to_contain_text(refs["first"])
            findings = page.locator(f"[id='{anchor}-findings']")
            expect(findings).to_be_visible()
            expect(findings).to_contain_text("4 findings")
            expect(findings.locator("tr", has_text="CVE-2025-9230")).to_contain_text("3.0.17-1~deb12u3")
            expect(version.locator(".sbom")).to_contain_text("8 packages on Debian GNU/Linux 12 (bookworm)")
            expect(version.locator(".tests")).to_contain_text("none")
            expect(version.locator("h3")).to_contain_text("head of testing")
            page.screenshot(path=str(shots / "report-after-click.png"))

            revoked = page.locator("article.version.revoked h3")
            expect(revoked.first).to_contain_text("REVOKED")

            app = page.locator("[id='version-aws-" + refs["app"].replace("@", "-") + "']")
            untrusted = app.locator(".findings p.untrusted")
            expect(untrusted).to_have_text(
                "a scan is stored, but it cannot be trusted: scan/aws/"
                + refs["app"].replace("@", "/")
                + ".json does not verify: the envelope is not DSSE JSON: no payload, payloadType, signatures"
            )
            expect(app.locator(".findings")).not_to_contain_text("not scanned")
            expect(app.locator("h3 .badge.untrusted")).to_have_text("SCAN UNTRUSTED")
            shown = untrusted.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
            none = page.locator("p.none").first.evaluate("e => getComputedStyle(e).color")
            assert shown == ["rgb(69, 39, 160)", "rgb(237, 231, 246)"] and none != shown[0], (shown, none)
            node = page.locator("#lineage svg [id='node-version-aws-" + refs["app"].replace("@", "-") + "']")
            expect(node).to_contain_text("SCAN UNTRUSTED")
            untrusted.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "report-untrusted-scan.png"))
        finally:
            browser.close()
    assert errors == []
    assert requests and all(url.startswith("file://") for url in requests), requests
    assert (shots / "report.png").stat().st_size > 10_000
    assert (shots / "report-after-click.png").exists()
    (shots / "requests.json").write_text(json.dumps(requests, indent=2))


def _url(request: Request) -> str:
    return request.url


def _console(message: ConsoleMessage) -> str:
    return f"console {message.type}: {message.text}"
