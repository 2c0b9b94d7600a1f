"""The audit log on a local registry: a hash chain of signed events, and `verify()` naming any event
changed, removed, reordered or signed by a key that is not trusted."""

from __future__ import annotations

import base64
import functools
import json
import multiprocessing
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

from bakery.core.jcs import jcs_bytes, sha256
from bakery.errors import BakeryError, Conflict, UsageError
from bakery.registry.base import Store
from bakery.registry.local import LocalStore
from bakery.trust.audit import AuditLog, Event, parse_since
from bakery.trust.signing import AUDIT_PAYLOAD_TYPE, sign
from tests.unit.trust.conftest import START, build, edit_payload, event_file, problems, ticking, trusted


@pytest.fixture
def three(log: AuditLog) -> list[Event]:
    return [build(log, f"1.0.{n}") for n in (1, 2, 3)]


def test_appends_form_a_contiguous_signed_chain(log: AuditLog, registry: Path, three: list[Event]) -> None:
    assert [e.seq for e in three] == [1, 2, 3]
    assert [e.prev for e in three] == ["", three[0].digest, three[1].digest]
    assert [e.time for e in three] == ["2026-11-27T05:00:00Z", "2026-11-27T05:01:00Z", "2026-11-27T05:02:00Z"]
    assert log.events() == three

    envelope = json.loads(event_file(registry, 2).read_bytes())
    payload = base64.b64decode(envelope["payload"])
    assert envelope["payloadType"] == AUDIT_PAYLOAD_TYPE
    assert [s["keyid"] for s in envelope["signatures"]] == [log.keys[0].keyid]
    assert payload == jcs_bytes(
        {
            "seq": 2,
            "prev": three[0].digest,
            "time": "2026-11-27T05:01:00Z",
            "who": "alice@host",
            "action": "build",
            "subject": "web@1.0.2 on local",
            "policy": "",
            "result": "ok",
            "details": {},
        }
    )
    assert sha256(payload) == three[1].digest

    report = log.verify()
    assert (report.ok, report.events, report.head, report.signatures_checked) == (True, 3, 3, True)


def test_events_since_a_time_or_a_duration(log: AuditLog, three: list[Event]) -> None:
    # three appends took 05:00, 05:01, 05:02; it is 05:03 now
    reader = AuditLog(log.store, signer=None, keys=[], clock=lambda: START + timedelta(minutes=3))
    assert [e.seq for e in reader.events(since="2026-11-27T05:01:00Z")] == [2, 3]
    assert [e.seq for e in reader.events(since="2026-11-27T06:01:00+01:00")] == [2, 3]
    assert [e.seq for e in reader.events(since="2m")] == [2, 3]
    assert [e.seq for e in reader.events(since="1d")] == [1, 2, 3]
    assert reader.events(since="2026-11-28") == []
    with pytest.raises(UsageError, match=r"--since must be an ISO time .* or a duration .*, not 'yesterday'"):
        reader.events(since="yesterday")


def test_since_is_read_in_utc() -> None:
    assert parse_since("2026-11-27T05:00:00", now=START) == "2026-11-27T05:00:00Z"
    assert parse_since("90m", now=START) == "2026-11-27T03:30:00Z"
    assert parse_since("1w", now=START) == "2026-11-20T05:00:00Z"


def test_details_and_policy_are_kept(log: AuditLog) -> None:
    event = log.append(
        action="override",
        subject="group web-local",
        result="allowed-unverified",
        policy="trust.require=on, threshold 1 of keys: ops-2026",
        details={"image": "web@1.0.2", "problems": ["no signature"]},
        who="bob@ci",
    )
    assert log.events() == [event]
    assert event.details == {"image": "web@1.0.2", "problems": ["no signature"]}
    assert log.verify().ok


def test_a_hand_edited_event_is_named(log: AuditLog, registry: Path, three: list[Event]) -> None:
    path = event_file(registry, 2)
    path.write_bytes(edit_payload(path.read_bytes(), who="mallory@host"))

    assert problems(log) == [
        (2, "event 2 (build web@1.0.2 on local by mallory@host) was changed: its signature by ops-2026 does not match"),
        (
            2,
            "event 2 (build web@1.0.2 on local by mallory@host) was changed after it was written:"
            " its digest no longer matches event 3's prev",
        ),
    ]


def test_a_hand_edited_newest_event_is_named_through_the_head(
    log: AuditLog, registry: Path, three: list[Event]
) -> None:
    path = event_file(registry, 3)
    path.write_bytes(edit_payload(path.read_bytes(), result="refused"))

    assert [seq for seq, _ in problems(log)] == [3, 3]
    assert problems(log)[1] == (
        3,
        "event 3 (build web@1.0.3 on local by alice@host) was changed after it was written:"
        " its digest no longer matches the one the head records",
    )


def test_a_removed_event_is_named(log: AuditLog, registry: Path, three: list[Event]) -> None:
    event_file(registry, 2).unlink()

    assert problems(log) == [(2, "event 2 is missing (removed?)")]
    assert log.verify().events == 2


def test_a_removed_newest_event_is_named_by_the_head(log: AuditLog, registry: Path, three: list[Event]) -> None:
    event_file(registry, 3).unlink()
    event_file(registry, 2).unlink()

    assert problems(log) == [(2, "events 2..3 were removed (the head records 3)")]


def test_swapped_events_are_named_as_out_of_order(log: AuditLog, registry: Path, three: list[Event]) -> None:
    second, third = event_file(registry, 2), event_file(registry, 3)
    second.rename(registry / "swap")
    third.rename(second)
    (registry / "swap").rename(third)

    assert problems(log) == [
        (
            2,
            "event 2 (build web@1.0.2 on local by alice@host) is out of order:"
            " it is stored as audit/events/000000000003.json, the place of event 3",
        ),
        (
            3,
            "event 3 (build web@1.0.3 on local by alice@host) is out of order:"
            " it is stored as audit/events/000000000002.json, the place of event 2",
        ),
    ]


def test_an_event_whose_prev_skips_its_predecessor_is_out_of_order(
    log: AuditLog, registry: Path, ops: CryptoSigner, three: list[Event]
) -> None:
    # What a writer that ignored the chain would leave: event 3 linked to event 1, signed.
    forked = {**three[2].document(), "prev": three[0].digest}
    event_file(registry, 3).write_text(json.dumps(sign(jcs_bytes(forked), AUDIT_PAYLOAD_TYPE, [ops])))

    assert problems(log) == [
        (3, "event 3 is out of order: its prev names event 1's digest, not event 2's"),
        (
            3,
            "event 3 (build web@1.0.3 on local by alice@host) was changed after it was written:"
            " its digest no longer matches the one the head records",
        ),
    ]


def test_an_event_signed_by_an_untrusted_key_is_named(log: AuditLog, registry: Path, three: list[Event]) -> None:
    mallory = CryptoSigner.generate_ed25519()
    other = AuditLog(LocalStore(registry), signer=lambda: mallory, keys=[], clock=ticking())
    other.append(action="rollout", subject="group web-local", result="ok", who="mallory@host")

    found = problems(log)
    assert found[0] == (
        4,
        f"event 4 (rollout group web-local by mallory@host) is signed by a key that is not trusted"
        f" ({mallory.public_key.keyid[:8]}…); trusted: ops-2026",
    )
    assert found[1][0] == 4
    assert found[1][1].startswith(
        "the head (audit/head.json) was changed or not signed by a trusted key: signed by key"
    )


def test_a_threshold_of_two_needs_two_trusted_signatures(registry: Path, ops: CryptoSigner, three: list[Event]) -> None:
    second = CryptoSigner.generate_ed25519()
    strict = AuditLog(LocalStore(registry), signer=None, keys=[trusted(ops), trusted(second, "ops-2027")], threshold=2)

    assert problems(strict)[0] == (
        1,
        "event 1 (build web@1.0.1 on local by alice@host) is signed by 1 trusted key(s) (ops-2026); 2 needed",
    )


def test_unsigned_events_still_chain_and_the_report_says_why_unchecked(registry: Path) -> None:
    unsigned = AuditLog(LocalStore(registry), signer=None, keys=[], clock=ticking())
    for n in (1, 2, 3):
        build(unsigned, f"1.0.{n}")
    report = unsigned.verify()
    assert (report.ok, report.signatures_checked) == (True, False)
    assert report.unchecked_why == "no trusted keys are configured (trust.keys in images.yaml)"
    assert json.loads(event_file(registry, 1).read_bytes())["signatures"] == []

    path = event_file(registry, 1)
    path.write_bytes(edit_payload(path.read_bytes(), action="nothing"))
    assert problems(unsigned) == [
        (
            1,
            "event 1 (nothing web@1.0.1 on local by alice@host) was changed after it was written:"
            " its digest no longer matches event 2's prev",
        )
    ]


def test_an_unsigned_event_in_a_signed_log_is_named(log: AuditLog, registry: Path, three: list[Event]) -> None:
    AuditLog(LocalStore(registry), signer=None, keys=[]).append(
        action="revoke", subject="web@1.0.1", result="ok", who="x@y"
    )

    assert problems(log)[0] == (4, "event 4 (revoke web@1.0.1 by x@y) is not signed")


def test_an_object_that_is_no_event_is_named(log: AuditLog, registry: Path, three: list[Event]) -> None:
    event_file(registry, 2).write_text("{not json")

    found = problems(log)
    assert found == [(2, found[0][1])]
    assert found[0][1].startswith("event 2 (audit/events/000000000002.json) is not a readable audit event: not JSON")
    with pytest.raises(BakeryError, match=r"audit/events/000000000002.json in .* is not a readable audit event"):
        log.events()


def test_a_lost_head_is_named_and_nothing_more_is_appended(log: AuditLog, registry: Path, three: list[Event]) -> None:
    (registry / "audit" / "head.json").unlink()
    expected = [
        (
            3,
            "the head (audit/head.json) is missing: it records the newest event, so removed newest events"
            " cannot be ruled out (nothing more is appended until it is restored)",
        )
    ]
    assert problems(log) == expected
    with pytest.raises(BakeryError, match=r"has 3 events but its head \(audit/head.json\) is gone"):
        build(log, "1.0.4")
    assert problems(log) == expected  # an append does not heal what it cannot vouch for


def test_removed_newest_events_stay_named_whatever_is_appended_after(
    log: AuditLog, registry: Path, three: list[Event]
) -> None:
    (registry / "audit" / "events" / f"{3:012d}.json").unlink()
    with pytest.raises(
        BakeryError, match="records event 3 in its head, but its newest event is 2: events were removed"
    ):
        build(log, "1.0.4")
    assert [p[1] for p in problems(log)] == ["event 3 was removed (the head records 3)"]


def test_a_head_behind_the_events_is_probed_forward(log: AuditLog, registry: Path, three: list[Event]) -> None:
    head = registry / "audit" / "head.json"
    stale = head.read_bytes()
    build(log, "1.0.4")
    head.write_bytes(stale)  # as if the writer of event 4 had stopped before moving the head

    fifth = build(log, "1.0.5")
    assert fifth.seq == 5
    assert log.verify().ok


class Contested:
    """A store where every create loses its race."""

    def __init__(self, store: Store) -> None:
        self.inner = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create(self, key: str, data: bytes) -> str:
        raise Conflict(f"{key} exists already")


def test_appending_gives_up_after_many_lost_races(
    registry: Path, ops: CryptoSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bakery.trust.audit.APPEND_ATTEMPTS", 3)
    contested = AuditLog(Contested(LocalStore(registry)), signer=lambda: ops, keys=[])  # type: ignore[arg-type]

    with pytest.raises(BakeryError) as caught:
        build(contested, "1.0.1")
    assert caught.value.message == (
        f"could not append to the audit log in {registry}/: other writers took the next entry 3 times in a row"
    )


# ------------------------------------------------------------------- several processes at once


def _writer(opener: Callable[[], Store], name: str, count: int, key_pem: bytes, start: Any) -> None:
    """One OS process appending `count` events to the log in `opener()`, once every writer is ready."""
    store = opener()
    signer = CryptoSigner(load_pem_private_key(key_pem, None))
    log = AuditLog(store, signer=lambda: signer, keys=[])
    start.wait(timeout=60)
    for n in range(count):
        log.append(action="build", subject=f"{name}-{n}", result="ok", who=name)


def append_at_once(opener: Callable[[], Store], key: CryptoSigner, *, writers: int, each: int) -> list[str]:
    """`writers` OS processes append `each` events each at the same moment to the log in the store
    `opener()` opens (a picklable callable: each process opens its own); the subjects they wrote,
    sorted."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no state shared with pytest's
    start = context.Barrier(writers)
    names = [f"writer-{w}" for w in range(writers)]
    processes = [context.Process(target=_writer, args=(opener, name, each, key.private_bytes, start)) for name in names]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.kill()  # stuck: the assertion below says so
    assert [p.exitcode for p in processes] == [0] * writers
    return sorted(f"{name}-{n}" for name in names for n in range(each))


def test_two_processes_appending_at_once_lose_and_fork_nothing(registry: Path, ops: CryptoSigner) -> None:
    written = append_at_once(functools.partial(LocalStore, registry), ops, writers=2, each=50)

    log = AuditLog(LocalStore(registry), signer=None, keys=[trusted(ops)])
    events = log.events()
    assert [e.seq for e in events] == list(range(1, 101))
    assert sorted(e.subject for e in events) == written
    report = log.verify()
    assert (report.problems, report.events, report.head) == ((), 100, 100)


def test_an_event_under_a_name_of_other_digits_is_not_taken_for_the_real_one(
    log: AuditLog, registry: Path, three: list[Event]
) -> None:
    """Unicode digits are digits to Python's \\d: a copy of event 2 under ٠٠٠٠٠٠٠٠٠٠٠٢.json must not
    stand in for a damaged 000000000002.json."""
    import shutil

    shutil.copy(event_file(registry, 2), registry / "audit" / "events" / ("\u0660" * 11 + "\u0662.json"))
    event_file(registry, 2).write_text('{"not": "an event"}')
    assert [seq for seq, _ in problems(log)][:1] == [2]
