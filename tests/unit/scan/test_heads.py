"""`bakery scan IMAGE` and `bakery scan --heads` (the scheduled job) against the fake cloud, and
what `bakery status` makes of the stored scans: a head rescanned with a newer feed that finds what
its channel's policy forbids makes status exit 3 and name the group; nothing is revoked unless
the policy says `revoke: true`."""

from __future__ import annotations

import base64
import json
from typing import Any

from bakery.progress import Recording
from bakery.trust.context import TrustContext
from bakery.trust.revocations import Revocations
from bakery.workspace import Workspace
from tests.unit.promote.conftest import json_of
from tests.unit.scan.conftest import NEWER, OSV, TRACKER, with_policy
from tests.unit.trust.conftest import World

NGINX = "CVE-2025-23419 nginx 1.22.1-9+deb12u1 (nginx-common:all) fixed in 1.22.1-9+deb12u2, severity high"
OPENSSL_ALLOWED = "[{id: CVE-2025-9230, until: '2099-12-31', reason: 'KEK unwrap unused'}]"


def running_head(world: World, revoke: bool = False) -> str:
    """web@1.0.0, promoted to testing (policy: medium, openssl's high finding allowed) and run by web-eu."""
    policy = f"{{max_severity: medium, allow: {OPENSSL_ALLOWED}{', revoke: true' if revoke else ''}}}"
    with_policy(world, policy)
    ref = world.bake()
    promoted = world.run("promote", ref, "--to", "testing", "--target", "aws")
    assert promoted.exit_code == 0, promoted.output
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    return ref


def test_scan_heads_with_a_newer_feed_makes_status_exit_3_naming_the_group(world: World) -> None:
    ref = running_head(world)
    first = world.run("scan", "--heads")
    assert first.exit_code == 0, first.output
    assert first.stdout == "testing web on aws: web@1.0.0: 4 finding(s), 2 not yet fixed; policy ok\n"
    assert world.run("status", "web-eu").exit_code == 0

    newer = world.run("scan", "--heads", "--feed", str(NEWER))
    assert newer.exit_code == 1, newer.output
    [head] = json_of(world.run("scan", "--heads", "--feed", str(NEWER), "--json"))["heads"]
    assert [f["id"] for f in head["scan"]["fixed"]] == ["CVE-2025-23419", "CVE-2025-9230", "CVE-2025-0395"]
    assert [(f["id"], f["source"]) for f in head["verdict"]["over"]] == [("CVE-2025-23419", "nginx")]
    assert newer.stdout.splitlines() == [
        "testing web on aws: web@1.0.0: 6 finding(s), 3 not yet fixed; policy VIOLATED",
        f"  over: {NGINX}",
    ]
    status = world.run("status")
    assert status.exit_code == 3, status.output
    [line] = [line for line in status.stdout.splitlines() if "over channel testing's policy" in line]
    assert line.startswith(f"  drift:     runs {ref}, whose scan of ") and line.endswith(NGINX)
    groups = {g["group"]: g for g in json_of(world.run("status", "--json"))["groups"]}
    assert groups["web-eu"]["drift"] is True and groups["web-eu"]["vulnerable"] == [line.split("drift:     ")[1]]
    assert groups["app-eu"]["vulnerable"] == []
    assert revocations(world) == {}  # the policy does not say revoke: true: nothing is revoked
    assert [e["subject"] for e in world.audit() if e["action"] == "scan"] == [f"{ref} on aws"] * 3


def test_revoke_true_revokes_a_head_over_its_policy_through_the_revoke_service(world: World) -> None:
    ref = running_head(world, revoke=True)
    result = world.run("scan", "--heads", "--feed", str(NEWER))
    assert result.exit_code == 1
    assert "policy VIOLATED; REVOKED (revoke: true)" in result.stdout
    assert {ref: r.reason for (_, ref), r in revocations(world).items()} == {
        ref: f"scan: over channel testing's policy: {NGINX}"
    }
    assert world.run("verify", ref, "--target", "aws").exit_code == 1


def test_scan_lists_fixed_and_not_yet_fixed_apart_and_stores_a_signed_vulns_statement(world: World) -> None:
    with_policy(world, "{max_severity: high}", feed=None)
    ref = world.bake()
    result = world.run("scan", ref, "--target", "aws", "--feed", str(TRACKER))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "web@1.0.0 on aws: 4 finding(s) (2 fixed upstream, 2 not yet fixed)"
    assert lines[2:9] == [
        "fixed (upgrade to the fixed version):",
        "  CVE-2025-9230 openssl 3.0.15-1~deb12u1 (libssl3:amd64) fixed in 3.0.17-1~deb12u3, severity high",
        "  CVE-2025-0395 glibc 2.36-9+deb12u7 (libc6:amd64, libc6:i386) fixed in 2.36-9+deb12u10, severity medium",
        "not yet fixed:",
        "  CVE-2010-4756 glibc 2.36-9+deb12u7 (libc6:amd64, libc6:i386) not yet fixed, severity unimportant",
        "  TEMP-0000000-7B5E38 glibc 2.36-9+deb12u7 (libc6:amd64, libc6:i386) not yet fixed, severity unimportant",
        "no channel policy judged it (it heads no channel with scan:)",
    ]
    statement = stored_statement(world)
    assert statement["predicateType"] == "https://in-toto.io/attestation/vulns/v0.2"
    verified = json_of(world.run("verify", ref, "--target", "aws", "--json"))
    assert statement["subject"][0]["annotations"]["provenance"] == verified["digest"]
    db = statement["predicate"]["scanner"]["db"]
    assert db["uri"] == str(TRACKER) and db["version"].startswith("sha256:")
    assert (db["advisories"], db["newest"]) == (7, None)  # a tracker export dates nothing
    assert [r["id"] for r in statement["predicate"]["scanner"]["result"]] == [
        "CVE-2025-9230", "CVE-2025-0395", "CVE-2010-4756", "TEMP-0000000-7B5E38",
    ]  # fmt: skip

    judged = world.run("scan", ref, "--target", "aws", "--feed", str(TRACKER), "--channel", "testing", "--json")
    assert judged.exit_code == 0
    [verdict] = json_of(judged)["verdicts"]
    assert (verdict["channel"], verdict["over"]) == ("testing", [])


def test_an_osv_feed_finds_the_same_and_an_allowance_by_cve_covers_its_debian_id(world: World) -> None:
    with_policy(world, f"{{max_severity: medium, allow: {OPENSSL_ALLOWED}}}", feed=OSV)
    ref = world.bake()
    result = world.run("scan", ref, "--target", "aws", "--channel", "testing", "--json")
    assert result.exit_code == 0, result.output
    body = json_of(result)
    assert [(f["id"], f["source"], f["fixed"]) for f in body["scan"]["fixed"]] == [
        ("DEBIAN-CVE-2025-9230", "openssl", "3.0.17-1~deb12u3"),
        ("DEBIAN-CVE-2025-0395", "glibc", "2.36-9+deb12u10"),
    ]
    assert [(f["id"], f["installed"], f["aliases"]) for f in body["scan"]["not_yet_fixed"]] == [
        ("DEBIAN-CVE-2010-4756", "2.36-9+deb12u7", ["CVE-2010-4756"])
    ]
    [verdict] = body["verdicts"]
    assert verdict["over"] == [] and [a["finding"]["id"] for a in verdict["allowed"]] == ["DEBIAN-CVE-2025-9230"]


def test_what_scan_cannot_do_is_said(world: World, tmp_path: Any) -> None:
    ref = world.bake()
    assert "say IMAGE@VERSION or --heads" in world.run("scan").stderr
    none = world.run("scan", ref, "--target", "aws")
    assert none.exit_code == 2
    assert "no vulnerability feed: name one with --feed FILE_OR_URL or in images.yaml" in none.stderr
    bad = tmp_path / "feed.json"
    bad.write_text("[1, 2")
    broken = world.run("scan", ref, "--target", "aws", "--feed", str(bad))
    assert broken.exit_code == 1 and f"feed {bad}: not JSON" in broken.stderr
    link = tmp_path / "link.json"
    link.symlink_to(TRACKER)
    linked = world.run("scan", ref, "--target", "aws", "--feed", str(link))
    assert linked.exit_code == 1 and "it is a symlink (not followed)" in linked.stderr
    assert "no channel 'nope'" in world.run("scan", ref, "--feed", str(TRACKER), "--channel", "nope").stderr


def test_a_feed_without_the_images_release_fails_the_scan_and_the_promote_gate(world: World, tmp_path: Any) -> None:
    wrong = tmp_path / "bullseye.json"
    wrong.write_text('{"openssl": {"CVE-2025-1": {"releases": {"bullseye": {"status": "open"}}}}}')
    with_policy(world, "{max_severity: high}", feed=wrong)
    ref = world.bake()
    said = f"feed {wrong} has no advisories for Debian 12 (bookworm): it holds 1 entry for bullseye"
    scanned = world.run("scan", ref, "--target", "aws")
    assert scanned.exit_code == 1 and said in scanned.stderr
    assert trust_of(world).store.get("scan/aws/web/1.0.0.json") is None  # nothing signed "0 findings"
    promoted = world.run("promote", ref, "--to", "testing", "--target", "aws")
    assert promoted.exit_code == 1 and said in promoted.output


def trust_of(world: World) -> TrustContext:
    return TrustContext(world.project_dir.load(), Workspace(world.project_dir.home), Recording())


def revocations(world: World) -> dict[tuple[str, str], Any]:
    return dict(Revocations(trust_of(world)).table())


def stored_statement(world: World) -> dict[str, Any]:
    store = trust_of(world).store
    envelope = json.loads(store.get("scan/aws/web/1.0.0.json").data)
    return dict(json.loads(base64.b64decode(envelope["payload"])))


def test_scan_heads_exits_1_when_a_head_could_not_be_scanned(world: World, tmp_path: Any) -> None:
    ref = running_head(world)
    wrong = tmp_path / "bullseye.json"
    wrong.write_text('{"openssl": {"CVE-2025-1": {"releases": {"bullseye": {"status": "open"}}}}}')
    result = world.run("scan", "--heads", "--feed", str(wrong))
    assert result.exit_code == 1, result.output
    assert result.stdout == (
        f"testing web on aws: {ref}: not scanned: feed {wrong} has no advisories for Debian 12 (bookworm): "
        "it holds 1 entry for bullseye\n"
    )
