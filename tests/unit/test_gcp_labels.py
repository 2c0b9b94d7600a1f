"""GCP label codecs (bakery.provenance's gcp_* functions, the owner labels) and GCP error lines."""

from __future__ import annotations

import re
import socket

import pytest

from bakery.core import provenance
from bakery.core.debris import Owner
from bakery.core.provenance import decode_label, gcp_read_value, gcp_stamp, gcp_stamp_labels, gcp_value, user_labels
from bakery.providers.gcp import api as gcp_api
from bakery.providers.gcp import provider as gcp

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


# --- owner labels -----------------------------------------------------------------------------------


def owner(host: str) -> Owner:
    return Owner(invocation="0123456789ab", host=host, pid=4242, boot="d00dfeed1234", started="2026-03-01T10:00:00Z")


def test_owner_labels_read_back() -> None:
    written = owner("build-01.ci.example.com")
    labels = gcp.owner_labels(written)
    assert set(labels) == {"bakery-owner-host", "bakery-owner-pid", "bakery-owner-boot", "bakery-owner-started"}
    assert all(LABEL.match(k) and LABEL.match(v) for k, v in labels.items())
    assert gcp.owner_of(labels, "0123456789ab") == written


def test_a_long_host_name_is_a_digest_known_again_on_its_own_host(monkeypatch: pytest.MonkeyPatch) -> None:
    host = "a-very-long-build-host-name-" * 3 + ".ci.Example.COM"
    labels = gcp.owner_labels(owner(host))
    assert all(LABEL.match(v) for v in labels.values())
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    assert gcp.owner_of(labels, "0123456789ab") == owner(host)  # what judge() needs: is it this host?
    monkeypatch.setattr(socket, "gethostname", lambda: "elsewhere")
    assert gcp.owner_of(labels, "0123456789ab") is None  # another host's: judge() goes by the heartbeat


@pytest.mark.parametrize(
    "change",
    [
        {"bakery-owner-host": "bad_host"},
        {"bakery-owner-pid": "12x"},
        {"bakery-owner-boot": None},
    ],
)
def test_owner_labels_that_cannot_be_read_give_no_owner(change: dict[str, str | None]) -> None:
    labels: dict[str, str] = gcp.owner_labels(owner("build-01"))
    for key, value in change.items():
        if value is None:
            del labels[key]
        else:
            labels[key] = value
    assert gcp.owner_of(labels, "0123456789ab") is None


# --- errors as one line ------------------------------------------------------------------------------


class FakeApiError:
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message


def test_an_html_error_page_is_one_short_line() -> None:
    page = (
        "GET https://compute.googleapis.com/compute/v1/projects/p/global/images: <!DOCTYPE html>\n"
        "<html lang=en><title>Error 502 (Server Error)!!1</title>\n<p>The server encountered a temporary error"
    )
    assert (
        gcp_api.api_error(FakeApiError(502, page))
        == "502 an HTML page, not the API's answer (Error 502 (Server Error)!!1)"
    )


def test_an_api_error_keeps_its_status_and_message_without_the_url() -> None:
    error = FakeApiError(
        404, "GET http://127.0.0.1:1/compute/v1/projects/p/global/images/x: The resource was not found"
    )
    assert gcp_api.api_error(error) == "404 The resource was not found"


def test_one_line_is_short() -> None:
    assert gcp_api.one_line("\n\n  first   line \nsecond") == "first line"
    assert len(gcp_api.one_line("x" * 500)) == 160
