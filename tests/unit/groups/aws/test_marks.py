"""The marks and history the AWS group driver keeps in tags and descriptions (bakery/groups/aws/marks.py),
within AWS's 256 and 255 characters."""

from __future__ import annotations

import pytest

from bakery.errors import UsageError
from bakery.groups.aws.bluegreen import green_name
from bakery.groups.aws.marks import (
    Mark,
    decode_entry,
    encode_entry,
    made_by_bakery,
    parse_template,
    parse_version_description,
    version_description,
)
from bakery.groups.base import HistoryEntry, Release


def entry(reason: str | None = None, who: str = "alice@laptop") -> HistoryEntry:
    return HistoryEntry(
        id="r-0123456789ab",
        kind="rollout",
        started="2026-03-01T10:00:00Z",
        who=who,
        from_=Release("web@1.0.0", "ami-0aaaaaaaaaaaaaaaa", "lt-0abc:1"),
        to=Release("web@1.0.1", "ami-0bbbbbbbbbbbbbbbb", "lt-0abc:2"),
        strategy="canary",
        result="rolled-back",
        finished="2026-03-01T10:05:00Z",
        reason=reason,
    )


def test_a_history_entry_round_trips_through_one_tag() -> None:
    original = entry("the gate failed: alarm web-5xx is ALARM")
    value = encode_entry(original)
    assert len(value) <= 256
    assert decode_entry("r-0123456789ab", value, "lt-0abc") == original


def test_a_long_reason_and_who_are_shortened_to_fit_awss_256_characters() -> None:
    value = encode_entry(entry("x" * 400, who="github:" + "y" * 300))
    assert len(value) == 256
    decoded = decode_entry("r-0123456789ab", value, "lt-0abc")
    assert decoded is not None and decoded.reason is not None and decoded.reason.endswith("…")
    assert decoded.to == Release("web@1.0.1", "ami-0bbbbbbbbbbbbbbbb", "lt-0abc:2")


def test_a_long_reason_from_aws_keeps_its_cause_within_the_tag() -> None:
    reason = (
        "instance refresh 0f1e2d3c-aaaa-bbbb-cccc-0123456789ab of web-asg failed at 50% after "
        + "waiting for its instances " * 6
        + "; Status reason: Instances failed to launch: InsufficientInstanceCapacity in eu-west-1a"
    )
    value = encode_entry(entry(reason))
    assert len(value) <= 256
    decoded = decode_entry("r-0123456789ab", value, "lt-0abc")
    assert decoded is not None and decoded.reason is not None
    assert decoded.reason.startswith("instance refresh 0f1e2d3c")
    assert decoded.reason.endswith("… InsufficientInstanceCapacity")


def test_an_entry_without_a_previous_release_and_foreign_values() -> None:
    first = HistoryEntry(
        "r-000000000001", "rollout", "2026-03-01T10:00:00Z", "a@b", None, Release(None, "ami-1"), "rolling", "running"
    )
    assert decode_entry("r-000000000001", encode_entry(first), "lt-0abc") == first
    assert decode_entry("r-1", "written by someone else", "lt-0abc") is None


def test_the_active_mark_round_trips_and_ignores_other_values() -> None:
    mark = Mark("3c1e-refresh", "r-0123456789ab", "2026-03-01T10:00:00Z", "alice@laptop", "laptop pid 42", "web@1.0.1")
    assert Mark.decode(mark.encode()) == mark
    assert Mark.decode("something else") is None and Mark.decode(None) is None


def test_the_active_mark_of_a_255_character_group_stays_readable_within_256_characters() -> None:
    green = "bg:" + green_name("w" * 255, "r-0123456789ab")
    mark = Mark(green, "r-0123456789ab", "2026-03-01T10:00:00Z", "github:" + "y" * 300, "h" * 200 + " pid 42", "x" * 99)
    value = mark.encode()
    assert len(value) == 256
    decoded = Mark.decode(value)
    assert decoded is not None
    assert (decoded.rollout, decoded.started) == ("r-0123456789ab", "2026-03-01T10:00:00Z")
    assert decoded.green is not None and decoded.green.endswith("…") and green.startswith("bg:" + decoded.green[:-1])
    assert decoded.who.startswith("github:yyy") and decoded.where.startswith("hhh") and decoded.to.startswith("xxx")


def test_templates_must_be_numbered_versions() -> None:
    assert parse_template("lt-0abc:7") == ("lt-0abc", 7)
    for alias in ("lt-0abc:$Default", "lt-0abc:$Latest", "web-lt:3"):
        with pytest.raises(UsageError, match="not a numbered launch template version"):
            parse_template(alias)


def test_version_descriptions_say_which_rollout_made_them_within_255_characters() -> None:
    text = version_description("r-0123456789ab", "web@1.0.1", "ami-0bbb", "alice@" + "h" * 400)
    assert len(text) <= 255 and text.startswith("bakery r-0123456789ab: web@1.0.1 (ami-0bbb) by alice@")
    assert parse_version_description(version_description("r-0123456789ab", "web@1.0.1", "ami-0bbb", "bob@ci")) == (
        "r-0123456789ab",
        "bob@ci",
    )
    assert not made_by_bakery("v2: new AMI") and not made_by_bakery(None)
