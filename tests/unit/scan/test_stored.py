"""A stored scan is the newest one the signed audit log records: a scan with an older feed does not
replace it unless said (--replace-older), and `bakery status` does not read an older envelope put
back, a deleted scan, or a broken one as "nothing over the policy"; an image a group runs under a
channel with a scan policy and no stored scan is named "not scanned"."""

from __future__ import annotations

from pathlib import Path

from bakery.registry.base import update
from bakery.scan import attest
from bakery.scan.scanner import Scan, older
from bakery.trust.audit import AuditLog
from tests.unit.promote.conftest import json_of
from tests.unit.scan.conftest import NEWER, OSV, with_policy
from tests.unit.scan.test_heads import running_head, stored_statement, trust_of
from tests.unit.trust.conftest import World

KEY = "scan/aws/web/1.0.0.json"


def put(world: World, data: bytes | None) -> None:
    store = trust_of(world).store
    if data is None:
        store.delete(KEY)
    else:
        update(store, KEY, lambda _there: data)


def status_lines(world: World, code: int) -> list[str]:
    result = world.run("status", "web-eu")
    assert result.exit_code == code, result.output
    return [line for line in result.stdout.splitlines() if "scan" in line]


def test_status_names_an_image_not_scanned_and_refuses_a_scan_put_back_deleted_or_broken(world: World) -> None:
    ref = running_head(world)
    assert status_lines(world, 3) == [
        f"  drift:     runs {ref}, not scanned (no scan at {KEY} in {trust_of(world).store.where}): "
        "channel testing has a scan policy"
    ]
    group = json_of(world.run("status", "web-eu", "--json"))["groups"][0]
    assert len(group["unscanned"]) == 1 and group["scan_errors"] == [] and group["vulnerable"] == []

    assert world.run("scan", "--heads").exit_code == 0
    assert status_lines(world, 0) == []
    first = trust_of(world).store.get(KEY)
    assert first is not None
    assert world.run("scan", "--heads", "--feed", str(NEWER)).exit_code == 1  # over the policy: stored all the same
    [seq] = [e["seq"] for e in world.audit() if e["action"] == "scan"][-1:]

    put(world, first.data)  # the older signed envelope, which verifies on its own
    [line] = status_lines(world, 1)
    assert line == (
        f"  drift:     runs {ref}, whose stored scan cannot be trusted: {KEY}: not the scan the signed audit log "
        f"records last (event {seq}): an older one put back?"
    )
    assert json_of(world.run("status", "web-eu", "--json"))["groups"][0]["scan_errors"] == [line[13:]]
    put(world, None)
    assert status_lines(world, 1) == [
        f"  drift:     runs {ref}, whose stored scan cannot be trusted: {KEY} in {trust_of(world).store.where}: the "
        f"signed audit log records a scan (event {seq}), but the registry holds none (deleted?)"
    ]
    put(world, b"{}")
    [broken] = status_lines(world, 1)
    assert f"whose stored scan cannot be trusted: {KEY} does not verify" in broken


def test_a_scan_with_an_older_feed_is_refused_unless_replace_older_which_says_so(world: World, tmp_path: Path) -> None:
    with_policy(world, "{max_severity: high}", feed=None)
    ref = world.bake()
    assert world.run("scan", ref, "--target", "aws", "--feed", str(OSV)).exit_code == 0
    old = tmp_path / "osv-older.json"
    old.write_text(OSV.read_text().replace('"modified": "2025-10-01T00:00:00Z"', '"modified": "2025-01-01T00:00:00Z"'))

    refused = world.run("scan", ref, "--target", "aws", "--feed", str(old))
    why = "its feed's newest record is of 2025-01-01T00:00:00Z, the stored scan's of 2025-10-01T00:00:00Z"
    assert refused.exit_code == 1 and f"web@1.0.0 on aws: not stored: the stored scan ({KEY}) is newer: {why}" in (
        refused.stderr
    )
    assert stored_statement(world)["predicate"]["scanner"]["db"]["newest"] == "2025-10-01T00:00:00Z"

    replaced = world.run("scan", ref, "--target", "aws", "--feed", str(old), "--replace-older")
    assert replaced.exit_code == 0, replaced.output
    assert f"  WARNING: it replaced a scan made with a newer feed (--replace-older): {why}" in replaced.stdout
    assert stored_statement(world)["predicate"]["scanner"]["db"]["newest"] == "2025-01-01T00:00:00Z"
    assert [e["details"].get("replaced_newer") for e in world.audit() if e["action"] == "scan"] == [None, why]


def test_without_dates_to_compare_the_earlier_scan_is_the_older() -> None:
    def scan(newest: str | None, at: str) -> Scan:
        return Scan("web@1", "aws", "p", "Debian", "f", "d", "osv", "Debian:12", at, (), feed_newest=newest)

    def stored(newest: str | None, at: str) -> attest.StoredScan:
        return attest.StoredScan("present", "", KEY, scanned=at, feed_newest=newest)

    assert older(scan(None, "2026-01-01T00:00:00Z"), stored(None, "2026-01-02T00:00:00Z")) == (
        "it was made at 2026-01-01T00:00:00Z, the stored scan at 2026-01-02T00:00:00Z"
    )
    assert older(scan(None, "2026-01-03T00:00:00Z"), stored("2025-10-01T00:00:00Z", "2026-01-02T00:00:00Z")) == ""
    assert (
        older(
            scan("2025-11-01T00:00:00Z", "2026-01-01T00:00:00Z"), stored("2025-10-01T00:00:00Z", "2026-01-02T00:00:00Z")
        )
        == ""
    )


def test_while_the_audit_log_does_not_verify_a_deleted_scan_is_untrusted_not_unscanned(world: World) -> None:
    ref = running_head(world)
    assert world.run("scan", "--heads").exit_code == 0
    put(world, None)
    AuditLog(trust_of(world).store, signer=None, keys=[]).append(  # an event no key signed
        action="scan", subject=f"{ref} on aws", result="ok", who="someone@else"
    )
    where = trust_of(world).store.where
    result = world.run("status", "web-eu")
    assert result.exit_code == 1, result.output  # the channel is not to be trusted either
    assert "not scanned" not in result.stdout
    group = json_of(world.run("status", "web-eu", "--json"))["groups"][0]
    assert group["unscanned"] == [] and len(group["scan_errors"]) == 1
    assert (
        f"whose stored scan cannot be trusted: {KEY} in {where}: cannot be held to the signed audit log: "
        f"the audit log in {where} does not verify"
    ) in result.stdout
