"""GCP label codecs (bakery/core/provenance.py's gcp_* functions). The owner labels are in
tests/unit/providers/gcp/test_provider.py, GCP error lines in tests/unit/providers/gcp/test_api.py."""

from __future__ import annotations

import re

import pytest

from bakery.core import provenance
from bakery.core.provenance import decode_label, gcp_read_value, gcp_stamp, gcp_stamp_labels, gcp_value, user_labels

LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
DIGEST = "sha256:" + "0f" * 32
LONG_BASE = "p" * 30 + "/" + "d" * 63  # a source image: project ids reach 30 characters, names 63


@pytest.mark.parametrize(
    ("label", "why"),
    [
        ("a_b", "not followed by two hex digits"),
        ("ab_", "not followed by two hex digits"),
        ("x_4", "not followed by two hex digits"),
        ("_zz", "not followed by two hex digits"),
        ("_AB", "not followed by two hex digits"),  # GCP labels are lowercase; so is the encoding
        ("_ff_fe", "not UTF-8"),
    ],
)
def test_decode_label_refuses_what_bakery_did_not_write(label: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        decode_label(label)


@pytest.mark.parametrize("value", ["1.0.0", "debian-cloud/debian-12", "web@1.2.3", "é ✓", "", "x" * 63])
def test_short_values_are_encoded_reversibly(value: str) -> None:
    label = gcp_value(value)
    assert LABEL.match(label) and not label.startswith(provenance.GCP_DIGEST_MARK)
    assert gcp_read_value(label) == value


@pytest.mark.parametrize("value", [LONG_BASE, "x" * 64, "é" * 11, "Web-Host." * 30])
def test_long_values_become_a_digest_never_truncated(value: str) -> None:
    label = gcp_value(value)
    assert LABEL.match(label), label
    assert label.startswith(provenance.GCP_DIGEST_MARK) and len(label) == 54
    assert gcp_read_value(label, ["something else", value]) == value  # found again by its digest
    with pytest.raises(ValueError, match="stands for a longer value"):
        gcp_read_value(label, ["something else"])
    assert gcp_value(value + "!") != label


def stamp(**changes: str) -> dict[str, str]:
    base = {
        "image": "web",
        "version": "1.0.3",
        "target": "gcp",
        "state": "complete",
        "inputs-digest": DIGEST,
        "base": "debian-cloud/debian-12-bookworm-v20260101",
        "parent": "base@1.0.0",
        "commit": "ab" * 20,
        "dirty": "false",
        "created": "2026-03-01T10:20:00Z",
        "invocation": "0123456789ab",
    }
    return {**base, **changes}


def test_stamp_labels_follow_gcp_rules_and_read_back() -> None:
    labels = gcp_stamp_labels(stamp())
    assert all(LABEL.match(k) and LABEL.match(v) and k[0].isalpha() for k, v in labels.items())
    assert gcp_stamp(labels) == (stamp(), {})


def test_a_long_base_is_kept_whole_in_the_provenance_and_a_digest_in_its_label() -> None:
    labels = gcp_stamp_labels(stamp(base=LONG_BASE))
    assert all(LABEL.match(v) for v in labels.values())
    found, problems = gcp_stamp(labels, {"base": LONG_BASE})  # the stamp of the provenance document
    assert found == stamp(base=LONG_BASE) and problems == {}
    found, problems = gcp_stamp(labels)  # without the provenance, it cannot be read: reported, not raised
    assert "base" not in found and "stands for a longer value" in problems["base"]


def test_unreadable_stamp_labels_are_reported_not_raised() -> None:
    labels = {
        **gcp_stamp_labels(stamp()),
        "bakery-version": "garbage_zz",
        "bakery-commit": "abc_def",
        "bakery-inputs-digest": "sha256-nope",
        "bakery-unknown-field": "_zz",  # not a stamp field: ignored
        "team": "a_b",  # not bakery's
    }
    found, problems = gcp_stamp(labels)
    assert sorted(problems) == ["commit", "inputs-digest", "version"]
    assert problems["version"].startswith("label bakery-version='garbage_zz': ")
    assert found["image"] == "web" and "version" not in found and "commit" not in found


def test_a_version_that_is_not_one_is_a_problem() -> None:
    _, problems = gcp_stamp({"bakery-version": "latest"})
    assert problems == {"version": "label bakery-version='latest': 'latest' is not a MAJOR.MINOR.PATCH version"}


def test_user_labels_made_by_hand_are_shown_as_they_are() -> None:
    labels = {**gcp_stamp_labels(stamp()), "owner": "ops_20team", "cost_center": "a_b", "env": "prod"}
    assert user_labels(labels) == {"owner": "ops team", "cost_center": "a_b", "env": "prod"}
