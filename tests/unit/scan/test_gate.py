"""The acceptance of the scan gate, through the CLI against the fake cloud: with the fixture feed,
an image carrying a vulnerable openssl is refused promotion to a channel whose policy forbids it,
naming the CVE and the package (exit 1, an audit event); an allowance with a reason lets it
through until its date, and no longer after it."""

from __future__ import annotations

from typing import Any

from tests.unit.promote.conftest import Clock, json_of
from tests.unit.scan.conftest import with_policy
from tests.unit.trust.conftest import World

OPENSSL = "CVE-2025-9230 openssl 3.0.15-1~deb12u1 (libssl3:amd64) fixed in 3.0.17-1~deb12u3, severity high"


def promote(world: World, ref: str) -> Any:
    return world.run("promote", ref, "--to", "testing", "--target", "aws")


def test_a_vulnerable_image_is_refused_naming_the_cve_and_package_and_the_refusal_is_audited(world: World) -> None:
    with_policy(world, "{max_severity: medium}")
    ref = world.bake()
    result = promote(world, ref)
    assert result.exit_code == 1, result.output
    assert "refusing to promote web@1.0.0 on aws to testing: scan failed" in result.stderr
    [gate] = [line for line in result.stderr.splitlines() if line.startswith("  - scan: ")]
    assert "1 finding(s) over max_severity medium of channel testing" in gate
    assert OPENSSL in gate
    assert "glibc" not in gate  # its findings are medium and unimportant: within the policy
    assert json_of(world.run("channels", "testing", "--json"))["channels"] == []
    [event] = [e for e in world.audit() if e["action"] == "promote"]
    assert event["result"] == "refused"
    [audited] = [g for g in event["details"]["gates"] if g["name"] == "scan"]
    assert audited["ok"] is False and OPENSSL in audited["saw"]


def test_within_the_policy_the_image_is_promoted_and_the_gate_says_what_it_saw(world: World) -> None:
    with_policy(world, "{max_severity: high}")
    ref = world.bake()
    result = world.run("promote", ref, "--to", "testing", "--target", "aws", "--json")
    assert result.exit_code == 0, result.output
    [gate] = [g for g in json_of(result)["gates"] if g["name"] == "scan"]
    assert gate["ok"] is True
    assert gate["saw"].startswith("scanned now with ") and "0 finding(s) over max_severity high" in gate["saw"]


def test_an_allowance_with_a_reason_lets_it_through_until_its_date_and_not_after(world: World, clock: Clock) -> None:
    allow = "[{id: CVE-2025-9230, until: 2030-01-31, reason: 'KEK unwrap unused: no CMS in our services'}]"
    with_policy(world, f"{{max_severity: medium, allow: {allow}}}")
    ref = world.bake()
    second = world.bake(force=True)
    clock.set(days=0)
    clock.at = clock.at.replace(year=2030, month=1, day=31)  # type: ignore[union-attr]
    result = world.run("promote", ref, "--to", "testing", "--target", "aws", "--json")
    assert result.exit_code == 0, result.output
    [gate] = [g for g in json_of(result)["gates"] if g["name"] == "scan"]
    assert f"allowed until 2030-01-31: {OPENSSL} (KEK unwrap unused: no CMS in our services)" in gate["saw"]

    clock.at = clock.at.replace(month=2, day=1)  # type: ignore[union-attr]
    refused = promote(world, second)
    assert refused.exit_code == 1, refused.output
    assert OPENSSL in refused.stderr
    assert (
        "allowance no longer counts: CVE-2025-9230 (allowed until 2030-01-31, expired: KEK unwrap unused: no CMS "
        "in our services)" in refused.stderr
    )


def test_without_a_feed_the_gate_judges_the_stored_scan_and_fails_when_there_is_none(world: World) -> None:
    from tests.unit.scan.conftest import TRACKER

    with_policy(world, "{max_severity: medium}", feed=None)
    ref = world.bake()
    none = promote(world, ref)
    assert none.exit_code == 1
    assert (
        "scan: nothing to judge by: no feed in images.yaml (scan: {feed: ...}) and no scan at scan/aws/web/1.0.0.json"
        in (none.stderr)
    )
    assert world.run("scan", ref, "--target", "aws", "--feed", str(TRACKER)).exit_code == 0
    stored = promote(world, ref)
    assert stored.exit_code == 1
    assert "scan: its scan of " in stored.stderr and OPENSSL in stored.stderr


def test_a_scan_policy_is_validated_with_file_and_line(world: World) -> None:
    with_policy(world, "{max_severity: severe, allow: [{id: CVE-2025-9230, until: '2030-02-30', reason: ''}]}")
    result = world.run("validate")
    assert result.exit_code == 2, result.output
    text = result.stderr
    assert "channels.testing.scan.max_severity" in text and "images.yaml:" in text
    assert "'2030-02-30' is no calendar date (YYYY-MM-DD)" in text
