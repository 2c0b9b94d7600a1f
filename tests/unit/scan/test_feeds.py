"""Feeds as the untrusted input they are: the two shapes parsed into advisories per source package,
matched by source package and Debian version order, judged by a channel's policy; a file or URL
read within its limits, a symlink never followed."""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import re
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bakery.config.scan_models import Allowance, ChannelScan
from bakery.sbom.dpkg import Package
from bakery.scan import formats, source
from bakery.scan.match import match
from bakery.scan.policy import judge
from bakery.scan.source import FeedError, Raw
from tests.unit.scan.conftest import OSV, TRACKER


def raw(data: bytes, where: str = "feed.json") -> Raw:
    return Raw(where, data, "sha256:x")


def parsed(path: Path) -> formats.Feed:
    return formats.parse(raw(path.read_bytes(), path.name), codename="bookworm", number="12")


def package(name: str, version: str, src: str, src_version: str | None = None, status: str = "installed") -> Package:
    return Package(name, "amd64", version, src, src_version or version, status)


def test_the_tracker_export_gives_bookworms_advisories_per_source_fixed_and_not_yet_fixed() -> None:
    feed = parsed(TRACKER)
    assert (feed.format, feed.release) == ("debian-security-tracker", "bookworm")
    openssl = {a.id: (a.fixed, a.severity) for a in feed.advisories["openssl"]}
    assert openssl == {"CVE-2024-5535": ("3.0.14-1~deb12u1", "low"), "CVE-2025-9230": ("3.0.17-1~deb12u3", "high")}
    glibc = {a.id: (a.fixed, a.severity, a.given) for a in feed.advisories["glibc"]}
    assert glibc["CVE-2010-4756"] == (None, "unimportant", "unimportant")
    assert glibc["CVE-2024-33599"] == ("2.36-9+deb12u7", "unknown", "not yet assigned")


def test_osv_records_of_debian_12_only_with_their_cve_as_alias() -> None:
    feed = parsed(OSV)
    assert (feed.format, feed.release) == ("osv", "Debian:12")
    [advisory] = [a for a in feed.advisories["openssl"] if a.id == "DEBIAN-CVE-2025-9230"]
    assert (advisory.fixed, advisory.severity, advisory.aliases) == ("3.0.17-1~deb12u3", "high", ("CVE-2025-9230",))
    assert not any(a.id == "DSA-5678-1" for a in feed.advisories["openssl"])  # Debian:11's


def test_osv_ranges_introduced_fixed_and_never_fixed_and_a_zip_of_records() -> None:
    record = {
        "id": "DEBIAN-CVE-2099-0001",
        "severity": [{"type": "CVSS_V3", "score": "9.8"}],
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "nginx"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "1.22.1-9"},
                            {"fixed": "1.22.1-9+deb12u2"},
                            {"introduced": "1.24.0-1"},
                        ],
                    }
                ],
            }
        ],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("DEBIAN-CVE-2099-0001.json", json.dumps(record))
    feed = formats.parse(raw(buffer.getvalue(), "all.zip"), codename="bookworm", number="12")
    spans = [(a.introduced, a.fixed, a.severity) for a in feed.advisories["nginx"]]
    assert spans == [("1.22.1-9", "1.22.1-9+deb12u2", "critical"), ("1.24.0-1", None, "critical")]
    old = match([package("nginx-common", "1.22.1-8", "nginx")], feed)[0]
    vulnerable = match([package("nginx-common", "1.22.1-9+deb12u1", "nginx")], feed)[0]
    newest = match([package("nginx-common", "1.26.0-1", "nginx")], feed)[0]
    assert (old, [f.fixed for f in vulnerable], [f.fixed for f in newest]) == ((), ["1.22.1-9+deb12u2"], [""])


def test_matching_is_by_source_and_debian_version_order_installed_packages_only() -> None:
    feed = parsed(TRACKER)
    packages = [
        package("libssl3", "3.0.17-1~deb12u3", "openssl"),  # the fixed version itself: not vulnerable
        package("libc6", "2.36-9+deb12u7", "glibc"),
        package("vim-tiny", "2:9.0.1378-2", "vim", status="config-files"),  # not installed: no code that runs
    ]
    findings, skipped = match(packages, feed)
    assert [(f.id, f.source, f.fixed) for f in findings] == [
        ("CVE-2025-0395", "glibc", "2.36-9+deb12u10"),
        ("CVE-2010-4756", "glibc", ""),
        ("TEMP-0000000-7B5E38", "glibc", ""),
    ]
    assert skipped == ()
    tilde = match([package("libssl3", "3.0.17-1~deb12u2", "openssl")], feed)[0]
    assert [f.id for f in tilde] == ["CVE-2025-9230"]  # ~deb12u2 sorts before ~deb12u3
    epoch = match([package("vim", "2:9.0.1378-2+deb12u1", "vim")], feed)[0]
    assert epoch == ()


def test_a_policy_counts_an_allowance_until_its_date_and_says_when_it_expired() -> None:
    findings, _ = match([package("libssl3", "3.0.15-1~deb12u1", "openssl")], parsed(TRACKER))
    allow = Allowance(id="CVE-2025-9230", until="2026-06-30", reason="not reachable")
    policy = ChannelScan(max_severity="medium", allow=(allow,))
    inside = judge("stable", policy, findings, dt.date(2026, 6, 30))
    after = judge("stable", policy, findings, dt.date(2026, 7, 1))
    assert (inside.ok, [a.finding.id for a in inside.allowed]) == (True, ["CVE-2025-9230"])
    assert (after.ok, [f.id for f in after.over]) == (False, ["CVE-2025-9230"])
    assert after.expired == ("CVE-2025-9230 (allowed until 2026-06-30, expired: not reachable)",)
    assert judge("stable", ChannelScan(max_severity="high"), findings, dt.date(2026, 1, 1)).ok


def test_what_is_not_a_feed_is_refused() -> None:
    with pytest.raises(FeedError, match="neither a Debian Security Tracker export nor OSV records"):
        formats.parse(raw(b'"text"'), codename="bookworm", number="12")
    with pytest.raises(FeedError, match="is not a source package with its advisories"):
        formats.parse(raw(b'{"openssl": [1]}'), codename="bookworm", number="12")
    with pytest.raises(FeedError, match="nested deeper"):
        formats.parse(raw(b"[" * 100 + b"]" * 100), codename="bookworm", number="12")


def test_a_file_feed_is_bounded_and_never_a_symlink_or_a_directory(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    with pytest.raises(FeedError, match="2048 bytes, more than the 1024 allowed"):
        source.read("big.json", base=tmp_path, timeout=5, max_bytes=1024)
    (tmp_path / "link.json").symlink_to(big)
    with pytest.raises(FeedError, match="symlink"):
        source.read("link.json", base=tmp_path, timeout=5, max_bytes=4096)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(FeedError, match="not a regular file"):
        source.read("dir.json", base=tmp_path, timeout=5, max_bytes=4096)
    assert source.read("big.json", base=tmp_path, timeout=5, max_bytes=4096).data == b" " * 2048


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/redirect-file", "/redirect-ftp"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd" if self.path == "/redirect-file" else "ftp://127.0.0.1/x")
            self.end_headers()
            return
        if self.path in ("/cut", "/cut-chunked"):  # the connection closes before the body's end
            self.send_response(200)
            chunked = self.path == "/cut-chunked"
            self.send_header(*(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", "5000")))
            self.end_headers()
            self.wfile.write(b"64\r\n" + b"x" * 100 + b"\r\n" if chunked else b"x" * 100)
            return
        body = TRACKER.read_bytes() if self.path == "/feed.json" else b"x" * 5000
        self.send_response(200 if self.path != "/gone" else 404)
        if self.path != "/unsized":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_url_feed_is_fetched_once_within_its_size_and_redirects_only_to_http(server: str, tmp_path: Path) -> None:
    got = source.read(f"{server}/feed.json", base=tmp_path, timeout=5, max_bytes=1 << 20)
    assert got.data == TRACKER.read_bytes() and got.where == f"{server}/feed.json"
    with pytest.raises(FeedError, match="5000 bytes, more than the 1024 allowed"):
        source.read(f"{server}/big", base=tmp_path, timeout=5, max_bytes=1024)
    with pytest.raises(FeedError, match="more than the 1024 bytes allowed"):
        source.read(f"{server}/unsized", base=tmp_path, timeout=5, max_bytes=1024)
    with pytest.raises(FeedError, match="the server answered 404"):
        source.read(f"{server}/gone", base=tmp_path, timeout=5, max_bytes=1 << 20)
    with pytest.raises(FeedError, match=re.escape("Redirection to url 'file:///etc/passwd' is not allowed")):
        source.read(f"{server}/redirect-file", base=tmp_path, timeout=5, max_bytes=1 << 20)
    with pytest.raises(FeedError, match=re.escape("redirected to 'ftp://127.0.0.1/x', which is not http(s)")):
        source.read(f"{server}/redirect-ftp", base=tmp_path, timeout=5, max_bytes=1 << 20)


def test_a_feed_with_no_advisory_for_the_images_release_is_refused_naming_what_it_holds() -> None:
    """An empty or wrong-release feed would scan clean: it is refused, naming what it holds."""
    old = {"bullseye": {"status": "resolved", "fixed_version": "1"}}
    bullseye = {
        "openssl": {"CVE-2025-1": {"releases": {"bullseye": {"status": "open"}}}, "CVE-2025-2": {"releases": old}}
    }
    osv11 = {"id": "DSA-1-1", "modified": "2025-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "Debian:11", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1"}]}]}]}  # fmt: skip
    cases = {
        b"{}": "it holds no entries at all",
        b"[]": "it holds no entries at all",
        json.dumps(bullseye).encode(): "it holds 2 entries for bullseye",
        json.dumps(osv11).encode(): "it holds 1 entry for Debian:11",
    }
    for data, held in cases.items():
        with pytest.raises(FeedError) as caught:
            formats.parse(raw(data, "wrong.json"), codename="bookworm", number="12")
        assert caught.value.message == f"feed wrong.json has no advisories for Debian 12 (bookworm): {held}"


def test_an_osv_feed_knows_its_newest_record_and_a_tracker_export_has_no_date() -> None:
    assert parsed(OSV).newest == "2025-10-01T00:00:00Z"
    assert parsed(TRACKER).newest is None


def test_a_url_feed_cut_short_is_refused_and_https_never_redirects_to_http(server: str, tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="the connection closed after 100 of its 5000 bytes"):
        source.read(f"{server}/cut", base=tmp_path, timeout=5, max_bytes=1 << 20)
    with pytest.raises(FeedError, match="the connection closed before the end of its body"):
        source.read(f"{server}/cut-chunked", base=tmp_path, timeout=5, max_bytes=1 << 20)
    handler = source._HttpOnlyRedirects()
    request = urllib.request.Request("https://feeds.example/feed.json")
    with pytest.raises(FeedError, match=re.escape("redirected from https to 'http://127.0.0.1/feed.json'")):
        handler.redirect_request(request, None, 302, "Found", {}, "http://127.0.0.1/feed.json")
    assert handler.redirect_request(request, None, 302, "Found", {}, "https://mirror.example/f.json") is not None
