"""Proving a bake dead (bakery/core/debris.py): only then may a later bake remove what it left."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bakery.core import debris
from bakery.core.debris import LEASE, Leftover, Owner, boot_id, iso, judge, utc

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)
HERE = socket.gethostname()


def leftover(
    owner: Owner | None = None, *, heartbeat: str | None = None, created: str = "2026-03-04T11:59:00Z"
) -> Leftover:
    return Leftover(
        target="aws",
        image="web",
        version="1.0.3",
        invocation="0123456789ab",
        locations=("eu-west-1:ami-0abc",),
        created=created,
        owner=owner,
        heartbeat=heartbeat,
    )


def here(pid: int, started: datetime, *, boot: str | None = None) -> Owner:
    return Owner("0123456789ab", HERE, pid, boot or boot_id(), iso(started))


def elsewhere() -> Owner:
    return Owner("0123456789ab", f"not-{HERE}", 4242, "0ther0b00t00", "2026-03-04T11:58:00Z")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])  # the unit tier starts no program but Python
    child.wait()
    return child.pid


# --- on this host: the process and the boot decide ------------------------------------------------


def test_this_process_is_alive() -> None:
    owner = here(os.getpid(), datetime.now(UTC))
    verdict = judge(leftover(owner))
    assert not verdict.dead
    assert verdict.why == f"{owner.describe()} is still running"


def test_a_process_that_has_exited_is_dead_whatever_its_heartbeat() -> None:
    owner = here(dead_pid(), datetime.now(UTC))
    verdict = judge(leftover(owner, heartbeat=iso(datetime.now(UTC))))
    assert verdict.dead
    assert (
        verdict.why
        == f"the bake 0123456789ab started {owner.started} on {HERE} (pid {owner.pid}); that process has exited"
    )


def test_a_stopped_bake_whose_tools_still_run_is_alive() -> None:
    """bakery was killed, but a process of its bake (Packer, in a directory named after the
    invocation) still runs and may still create images."""
    owner = here(dead_pid(), datetime.now(UTC))
    mark = f"builds/web-aws-{owner.invocation}"
    tool = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", mark])
    try:
        deadline = time.monotonic() + 10  # until the new process shows its own command line
        while mark.encode() not in Path(f"/proc/{tool.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        verdict = judge(leftover(owner))
    finally:
        tool.kill()
        tool.wait()
    assert not verdict.dead
    assert verdict.why == f"{owner.describe()} was stopped, but its tools still run (pid {tool.pid})"
    assert judge(leftover(owner)).dead  # once they are gone too


def test_a_pid_now_held_by_a_newer_process_is_dead() -> None:
    """The owner's pid is this test's, but the owner started long before this process did."""
    owner = here(os.getpid(), datetime.now(UTC) - timedelta(days=30))
    verdict = judge(leftover(owner))
    assert verdict.dead
    assert verdict.why.endswith(f"; that process has exited (pid {os.getpid()} is another one now)")


def test_another_system_with_this_host_name_is_judged_by_its_heartbeat() -> None:
    """A reboot, or a container sharing this host name but not its pid namespace: a pid proves
    nothing there, so the heartbeat decides."""
    owner = here(os.getpid(), datetime.now(UTC), boot="000000000000")
    recent = iso(datetime.now(UTC) - timedelta(seconds=30))
    assert not judge(leftover(owner, heartbeat=recent)).dead
    stale = iso(datetime.now(UTC) - LEASE - timedelta(minutes=1))
    verdict = judge(leftover(owner, heartbeat=stale))
    assert verdict.dead and verdict.why.endswith(f"; its heartbeat stopped at {stale}")


# --- elsewhere: the heartbeat decides, then the creation time -----------------------------------------


@pytest.mark.parametrize(
    ("beat_ago", "dead"),
    [(timedelta(seconds=30), False), (LEASE, False), (LEASE + timedelta(seconds=1), True)],
    ids=["recent", "at-the-lease", "stale"],
)
def test_another_hosts_bake_lives_while_its_heartbeat_is_within_the_lease(beat_ago: timedelta, dead: bool) -> None:
    beat = iso(NOW - beat_ago)
    verdict = judge(leftover(elsewhere(), heartbeat=beat), now=NOW)
    assert verdict.dead is dead
    who = f"the bake 0123456789ab started 2026-03-04T11:58:00Z on not-{HERE} (pid 4242)"
    if dead:
        assert verdict.why == f"{who}; its heartbeat stopped at {beat}"
    else:
        assert verdict.why == f"{who} is still running (heartbeat {int(beat_ago.total_seconds())}s ago)"


def test_a_heartbeat_counts_in_any_time_form() -> None:
    """GCP writes offsets, AWS milliseconds: the same moment either way."""
    verdict = judge(leftover(elsewhere(), heartbeat="2026-03-04T13:59:30.000+02:00"), now=NOW)
    assert not verdict.dead and verdict.why.endswith("(heartbeat 30s ago)")


def test_no_owner_and_no_heartbeat_long_after_creation_is_dead() -> None:
    verdict = judge(leftover(created="2026-03-04T11:54:59Z"), now=NOW)
    assert verdict.dead
    assert verdict.why == (
        "the bake 0123456789ab; it never wrote a heartbeat after creating the image at 2026-03-04T11:54:59Z"
    )


def test_no_heartbeat_soon_after_creation_may_still_be_running() -> None:
    verdict = judge(leftover(created="2026-03-04T11:58:00Z"), now=NOW)
    assert not verdict.dead
    assert verdict.why == "the bake 0123456789ab created it at 2026-03-04T11:58:00Z and may still be running"


def test_an_unreadable_creation_time_is_never_proof_of_death() -> None:
    assert not judge(leftover(created="yesterday-ish"), now=NOW).dead


def test_an_owner_elsewhere_without_heartbeat_is_judged_by_creation_and_named() -> None:
    verdict = judge(leftover(elsewhere(), created="2026-03-04T11:00:00Z"), now=NOW)
    assert verdict.dead
    assert verdict.why.startswith(f"the bake 0123456789ab started 2026-03-04T11:58:00Z on not-{HERE} (pid 4242); ")


# --- owners and times as written on images ---------------------------------------------------------


def test_owner_fields_round_trip() -> None:
    owner = Owner.current("0123456789ab", "2026-03-04T11:58:00Z")
    assert (owner.host, owner.pid, owner.boot) == (HERE, os.getpid(), boot_id())
    assert owner.fields() == {
        "invocation": "0123456789ab",
        "host": HERE,
        "pid": str(os.getpid()),
        "boot": boot_id(),
        "started": "2026-03-04T11:58:00Z",
    }
    assert Owner.from_fields(owner.fields()) == owner


@pytest.mark.parametrize(
    "fields",
    [{}, {"invocation": "x", "host": "h", "pid": "not-a-pid", "boot": "b", "started": "s"}, {"invocation": "x"}],
    ids=["empty", "bad-pid", "partial"],
)
def test_an_unreadable_owner_is_none_not_an_error(fields: dict[str, str]) -> None:
    assert Owner.from_fields(fields) is None


def test_boot_id_names_this_boot_machine_and_pid_namespace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "boot_id"
    fake.write_text("6c7d1c8a-1f2e-4b3a-9c8d-7e6f5a4b3c2d\n")
    monkeypatch.setattr(debris, "_BOOT_ID", fake)
    first = boot_id()
    assert len(first) == 12 and first == boot_id()
    fake.write_text("00000000-1f2e-4b3a-9c8d-7e6f5a4b3c2d\n")  # rebooted
    assert boot_id() != first
    machine = tmp_path / "machine-id"
    machine.write_text("another machine\n")
    monkeypatch.setattr(debris, "_MACHINE_ID", machine)
    assert boot_id() not in (first,)


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-04T12:00:00Z",  # bakery
        "2026-03-04T12:00:00.000Z",  # AWS CreationDate
        "2026-03-04T04:00:00.000-08:00",  # GCP creationTimestamp
        "2026-03-04T12:00:00+00:00",
        "2026-03-04T12:00:00-00:00",
        "2026-03-04T12:00:00",  # no zone: UTC
        " 2026-03-04T12:00:00Z\n",
    ],
)
def test_utc_reads_the_time_forms_clouds_write(text: str) -> None:
    moment = utc(text)
    assert moment is not None and moment == NOW  # an aware moment: comparable with any other
    assert iso(moment) == "2026-03-04T12:00:00Z"


@pytest.mark.parametrize("text", [None, "", "soon", "2026-13-01T00:00:00Z"])
def test_utc_of_what_is_not_a_time_is_none(text: str | None) -> None:
    assert utc(text) is None


def test_iso_writes_utc_with_a_z() -> None:
    assert iso(datetime(2026, 3, 4, 13, 0, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-03-04T12:00:00Z"


def test_leftover_order_is_by_moment_then_invocation() -> None:
    early = Leftover("aws", "web", "1.0.3", "zzzz", (), "2026-03-04T12:59:00.000+01:00")
    late = Leftover("aws", "web", "1.0.3", "aaaa", (), "2026-03-04T12:00:00Z")
    tie = Leftover("aws", "web", "1.0.3", "bbbb", (), "2026-03-04T12:00:00.000Z")
    assert sorted([late, tie, early], key=Leftover.order) == [early, late, tie]
    assert early.ref == "web@1.0.3"
    assert Leftover("aws", "web", "", "x", (), "").ref == "web"
