"""Severities a feed gives only as a CVSS vector (OSV `severity: [{type: CVSS_V3, score:
"CVSS:3.1/…"}]`) are rated from the vector's base score, so that a medium one does not block a
channel whose policy is `max_severity: high` (an `unknown` would: it ranks above high), and
findings are ordered by what the vectors say. A vector that cannot be read stays `unknown`,
and the finding says why in a bounded line of printable text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bakery.scan import severity
from bakery.scan.attest import read
from tests.unit.scan.conftest import with_policy
from tests.unit.scan.test_heads import stored_statement, trust_of
from tests.unit.trust.conftest import World

V3_MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"  # 5.3
V3_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
V4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3
V4_LOW = "CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"
V2_TEN = "AV:N/AC:L/Au:N/C:C/I:C/A:C"  # 10.0: high on NVD's v2 scale, which has no critical
V2_LOW = "AV:L/AC:H/Au:M/C:P/I:N/A:N"
BROKEN = "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def rated(*severities: dict[str, Any], **entry: Any) -> severity.Rated:
    return severity.osv({"id": "DEBIAN-CVE-2099-1", "severity": list(severities)}, entry)


def test_a_vector_is_rated_by_its_versions_scale_and_the_highest_readable_one_counts() -> None:
    assert rated({"type": "CVSS_V3", "score": V3_MEDIUM}) == severity.Rated("medium", V3_MEDIUM)
    assert rated({"type": "CVSS_V3", "score": V3_CRITICAL}).severity == "critical"
    assert rated({"type": "CVSS_V4", "score": V4_CRITICAL}).severity == "critical"
    assert rated({"type": "CVSS_V4", "score": V4_LOW}).severity == "low"
    assert rated({"type": "CVSS_V2", "score": V2_TEN}) == severity.Rated("high", V2_TEN)
    assert rated({"type": "CVSS_V2", "score": V2_LOW}).severity == "low"
    several = rated(
        {"type": "CVSS_V3", "score": BROKEN},
        {"type": "CVSS_V4", "score": V4_LOW},
        {"type": "CVSS_V3", "score": V3_MEDIUM},
    )
    assert several == severity.Rated("medium", V3_MEDIUM)
    assert rated({"type": "CVSS_V3", "score": "7.5"}) == severity.Rated("high", "7.5")
    # the distribution's own triage comes first; a word it does not use gives way to the vector
    assert rated({"type": "CVSS_V3", "score": V3_CRITICAL}, ecosystem_specific={"urgency": "unimportant"}) == (
        severity.Rated("unimportant", "unimportant")
    )
    assert rated({"type": "CVSS_V3", "score": V3_CRITICAL}, ecosystem_specific={"urgency": "not yet assigned"}) == (
        severity.Rated("critical", V3_CRITICAL)
    )
    assert rated() == severity.Rated("unknown", "not given")


def test_a_vector_that_cannot_be_read_stays_unknown_and_says_why_in_bounded_printable_text() -> None:
    assert rated({"type": "CVSS_V3", "score": BROKEN}) == severity.Rated(
        "unknown", BROKEN, 'its CVSS_V3 vector could not be read: Unknown value "Q" in field "AV:Q"'
    )
    assert rated({"type": "CVSS_V2", "score": V3_CRITICAL}).unreadable.startswith(
        "its CVSS_V2 vector could not be read: "
    )
    assert rated({"type": "CVSS_V5", "score": "CVSS:5.0/AV:N"}).unreadable == (
        "its CVSS_V5 vector could not be read: bakery reads CVSS_V2, CVSS_V3 and CVSS_V4 vectors, not CVSS_V5"
    )
    hostile = rated({"type": "CVSS_V3\x1b[2J", "score": "CVSS:3.1/AV:N\n\x1b[31m" + "/AC:L" * 200})
    assert hostile.severity == "unknown"
    assert hostile.unreadable == "its CVSS_V3\\x1b[2J vector could not be read: longer than 300 characters"
    assert hostile.given.startswith("CVSS:3.1/AV:N\\n\\x1b[31m/AC:L") and len(hostile.given) <= 310


def test_a_score_that_is_not_a_base_score_stays_unknown_and_says_why() -> None:
    for score, given in [(float("nan"), "nan"), (float("inf"), "inf"), (99, "99"), (-1, "-1"), (10.01, "10.01")]:
        assert rated({"type": "CVSS_V3", "score": score}) == severity.Rated(
            "unknown", given, f"its CVSS_V3 score {given} is not a base score from 0 to 10"
        )
    for text in ("99", "NaN", "-Infinity", "1e3", "-0.5"):
        assert rated({"type": "CVSS_V3", "score": text}) == severity.Rated(
            "unknown", text, f"its CVSS_V3 score {text} is not a base score from 0 to 10"
        )
    assert rated({"type": "CVSS_V3\x1b", "score": 10**400}).unreadable == (
        "its CVSS_V3\\x1b score (an integer of more than 12 digits) is not a base score from 0 to 10"
    )
    # the scale's ends are scores, and a readable score beside an unreadable one counts
    assert rated({"type": "CVSS_V3", "score": 0}) == severity.Rated("none", "0")
    assert rated({"type": "CVSS_V3", "score": "10.0"}) == severity.Rated("critical", "10.0")
    assert rated({"type": "CVSS_V3", "score": float("nan")}, {"type": "CVSS_V3", "score": 5.0}) == (
        severity.Rated("medium", "5.0")
    )


def osv_record(ident: str, source: str, fixed: str, *severities: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": ident,
        "modified": "2026-11-01T00:00:00Z",
        "severity": [{"type": kind, "score": score} for kind, score in severities],
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": source},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }


def feed(tmp_path: Path, *records: dict[str, Any]) -> str:
    path = tmp_path / f"osv-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(list(records)))
    return str(path)


def test_scan_rates_vectors_so_a_medium_one_passes_a_high_policy_and_a_broken_one_is_named(
    world: World, tmp_path: Path
) -> None:
    with_policy(world, "{max_severity: high}", feed=None)
    ref = world.bake()
    within = feed(
        tmp_path,
        osv_record("DEBIAN-CVE-2099-0001", "nginx", "1.22.1-9+deb12u9", ("CVSS_V3", V3_MEDIUM)),
        osv_record("DEBIAN-CVE-2099-0002", "glibc", "2.36-9+deb12u99", ("CVSS_V2", V2_TEN)),
        osv_record("DEBIAN-CVE-2099-0003", "openssl", "3.0.99-1", ("CVSS_V3", BROKEN), ("CVSS_V4", V4_LOW)),
    )
    result = world.run("scan", ref, "--target", "aws", "--feed", within, "--channel", "testing")
    assert result.exit_code == 0, result.output
    assert [line for line in result.stdout.splitlines() if "DEBIAN-CVE" in line] == [
        f"  DEBIAN-CVE-2099-0002 glibc 2.36-9+deb12u7 (libc6:amd64, libc6:i386) fixed in 2.36-9+deb12u99, "
        f"severity high ({V2_TEN})",
        f"  DEBIAN-CVE-2099-0001 nginx 1.22.1-9+deb12u1 (nginx-common:all) fixed in 1.22.1-9+deb12u9, "
        f"severity medium ({V3_MEDIUM})",
        f"  DEBIAN-CVE-2099-0003 openssl 3.0.15-1~deb12u1 (libssl3:amd64) fixed in 3.0.99-1, severity low ({V4_LOW})",
    ]
    assert "channel testing (max_severity high): ok" in result.stdout

    over = feed(
        tmp_path,
        osv_record("DEBIAN-CVE-2099-0004", "openssl", "3.0.99-1", ("CVSS_V3", BROKEN)),
        osv_record("DEBIAN-CVE-2099-0005", "nginx", "1.22.1-9+deb12u9", ("CVSS_V4", V4_CRITICAL)),
    )
    result = world.run("scan", ref, "--target", "aws", "--feed", over, "--channel", "testing")
    assert result.exit_code == 1, result.output
    broken = (
        f"DEBIAN-CVE-2099-0004 openssl 3.0.15-1~deb12u1 (libssl3:amd64) fixed in 3.0.99-1, severity "
        f'unknown ({BROKEN}; its CVSS_V3 vector could not be read: Unknown value "Q" in field "AV:Q")'
    )
    assert [line for line in result.stdout.splitlines() if line.startswith("  over: ")] == [
        f"  over: DEBIAN-CVE-2099-0005 nginx 1.22.1-9+deb12u1 (nginx-common:all) fixed in 1.22.1-9+deb12u9, "
        f"severity critical ({V4_CRITICAL})",
        f"  over: {broken}",
    ]
    assert "Traceback" not in result.output
    # a score out of range, as JSON readers take it (NaN), does not rate critical
    nan = tmp_path / "osv-nan.json"
    nan.write_text(json.dumps([osv_record("DEBIAN-CVE-2099-0006", "nginx", "1.22.1-9+deb12u9", ("CVSS_V3", "X"))]))
    nan.write_text(nan.read_text().replace('"score": "X"', '"score": NaN'))
    result = world.run("scan", ref, "--target", "aws", "--feed", str(nan), "--channel", "testing")
    assert result.exit_code == 1, result.output
    assert [line for line in result.stdout.splitlines() if line.startswith("  over: ")] == [
        "  over: DEBIAN-CVE-2099-0006 nginx 1.22.1-9+deb12u1 (nginx-common:all) fixed in 1.22.1-9+deb12u9, "
        "severity unknown (nan; its CVSS_V3 score nan is not a base score from 0 to 10)"
    ]
    assert world.run("scan", ref, "--target", "aws", "--feed", over, "--channel", "testing").exit_code == 1
    # the stored, signed scan keeps why, and reads back with it
    [noted] = [r for r in stored_statement(world)["predicate"]["scanner"]["result"] if r["id"].endswith("0004")]
    assert noted["severity"] == [{"method": "osv", "score": BROKEN}]
    digest = json.loads(world.run("verify", ref, "--target", "aws", "--json").stdout)["digest"]
    stored = read(trust_of(world), "aws", "web", "1.0.0", digest)
    assert [f.line() for f in stored.findings][1] == broken
