"""A channel's history read as heads (bakery/trust/channels.py), on verified moves made by hand:
promotions push, rollbacks and fall-backs pop back to the version they name, revoked heads are
skipped, and how long a version was the head is measured from the moves' times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bakery.trust.channels import Channel, Move, stamp

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def history(*moves: tuple[str, str | None, float]) -> Channel:
    """(action, version, hours after T0) for each move, in order."""
    made = tuple(
        Move(i, action, version, None, stamp(T0 + timedelta(hours=hours)), "a@h", "", "", "", f"d{i}", ("ops",))
        for i, (action, version, hours) in enumerate(moves, start=1)
    )
    return Channel("stable", "aws", "web", made)


def never(_ref: str, _provenance: str) -> str | None:
    return None


def test_promotions_push_and_rollbacks_pop_back_to_the_version_they_name() -> None:
    channel = history(
        ("promote", "1.0.0", 0), ("promote", "1.0.1", 1), ("promote", "1.0.2", 2), ("rollback", "1.0.1", 3)
    )
    assert (channel.stack, channel.head) == (("1.0.0", "1.0.1"), "1.0.1")
    assert channel.previous_good(never).version == "1.0.0"  # a second rollback goes further back, never to 1.0.2
    assert history(("promote", "1.0.0", 0), ("fallback", None, 1)).head is None


def test_a_revoked_head_is_skipped_to_the_newest_earlier_head_that_is_not() -> None:
    channel = history(("promote", "1.0.0", 0), ("promote", "1.0.1", 1), ("promote", "1.0.2", 2))
    revoked = {"web@1.0.2": "revoked since X", "web@1.0.1": "revoked since Y"}
    head = channel.effective(lambda ref, _provenance: revoked.get(ref))
    assert (head.ref, head.skipped) == ("web@1.0.0", ("web@1.0.2 (revoked since X)", "web@1.0.1 (revoked since Y)"))
    back = channel.previous_good(lambda ref, _provenance: revoked.get(ref))
    assert (back.version, back.skipped) == ("1.0.0", ("web@1.0.1 (revoked since Y)",))
    assert channel.effective(never).ref == "web@1.0.2" and not channel.effective(never).fell_back
    gone = channel.effective(lambda ref, _provenance: "revoked")
    assert (gone.ref, len(gone.skipped)) == (None, 3)


def test_how_long_a_version_was_the_head_counts_each_span_until_another_took_its_place() -> None:
    channel = history(("promote", "1.0.0", 0), ("promote", "1.0.1", 5), ("rollback", "1.0.0", 6))
    until = T0 + timedelta(hours=10)
    assert channel.spans("1.0.0", until) == [
        (T0, T0 + timedelta(hours=5)),
        (T0 + timedelta(hours=6), until),
    ]
    assert channel.spans("1.0.1", until) == [(T0 + timedelta(hours=5), T0 + timedelta(hours=6))]
    assert channel.spans("1.0.9", until) == []
