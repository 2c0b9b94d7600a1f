"""Provenance: the in-toto/SLSA statement and the reversible GCP label encoding."""

from __future__ import annotations

import json
import re

import pytest

from bakery import __version__
from bakery.core.provenance import Dependency, decode_label, gcp_labels, statement
from bakery.errors import ConfigError


def make_statement():
    return statement(
        subject_name="web-1.0.0.qcow2",
        subject_digest={"sha256": "ab" * 32},
        external={"image": "web", "target": "local", "version": "1.0.0"},
        internal={"inputsDigest": "sha256:" + "cd" * 32},
        dependencies=[
            Dependency(name="git", uri="git+file:///src", digest={"gitCommit": "f" * 40}, annotations={"dirty": False}),
            Dependency(name="playbooks/web.yml", digest={"sha256": "12" * 32}),
        ],
        tool_versions={"bakery": __version__, "packer": "1.11.2", "ansible": "2.19.0"},
        invocation_id="0123456789ab",
        started="2024-01-01T00:00:00Z",
        finished="2024-01-01T00:05:00Z",
    )


def test_statement_is_in_toto_v1_with_slsa_v1_provenance():
    doc = make_statement()
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == "https://slsa.dev/provenance/v1"
    assert doc["subject"] == [{"name": "web-1.0.0.qcow2", "digest": {"sha256": "ab" * 32}}]
    run = doc["predicate"]["runDetails"]
    assert run["builder"]["id"] == f"https://bakery.dev/builder/bakery@v{__version__}"
    assert run["builder"]["version"] == {"bakery": __version__, "packer": "1.11.2", "ansible": "2.19.0"}
    assert run["metadata"] == {
        "invocationId": "0123456789ab",
        "startedOn": "2024-01-01T00:00:00Z",
        "finishedOn": "2024-01-01T00:05:00Z",
    }
    definition = doc["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {"image": "web", "target": "local", "version": "1.0.0"}
    assert definition["resolvedDependencies"] == [
        {"name": "git", "uri": "git+file:///src", "digest": {"gitCommit": "f" * 40}, "annotations": {"dirty": False}},
        {"name": "playbooks/web.yml", "digest": {"sha256": "12" * 32}},
    ]
    json.dumps(doc)  # serialisable as is


HOSTILE = ["platform", "Web Shop", "a_b", "é ✓", "🍞", 'q"uote', "${x}", "x\ny", "UPPER", "-dash-", "", "_5f"]


@pytest.mark.parametrize("value", HOSTILE)
def test_label_values_round_trip(value):
    labels = gcp_labels({"team": value})
    assert list(labels) == ["team"]
    encoded = labels["team"]
    assert re.fullmatch(r"[a-z0-9_-]*", encoded), encoded
    assert decode_label(encoded) == value


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("team", "team"),
        ("cost-center", "cost-center"),
        ("owner email", "owner_20email"),
        ("zé", "z_c3_a9"),
        ("k_1", "k_5f1"),
    ],
)
def test_label_keys_are_encoded_reversibly(key, encoded):
    assert gcp_labels({key: "v"}) == {encoded: "v"}
    assert decode_label(encoded) == key


def test_plain_labels_are_unchanged():
    plain = {"team": "platform", "cost-center": "web-01"}
    assert gcp_labels(plain) == plain


def test_distinct_values_stay_distinct():
    values = ["a_b", "a-b", "a b", "a_20b", "A b"]
    encoded = [gcp_labels({"k": v})["k"] for v in values]
    assert len(set(encoded)) == len(values)


@pytest.mark.parametrize("key", ["1team", "-team", "_team", "Team", ""])
def test_key_that_does_not_start_with_a_letter_is_refused(key):
    with pytest.raises(ConfigError, match="must start with a lowercase letter") as exc:
        gcp_labels({key: "v"})
    assert exc.value.exit_code == 2


def test_label_at_the_limit_is_kept_whole():
    labels = gcp_labels({"k" * 63: "v" * 63})
    assert labels == {"k" * 63: "v" * 63}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("team", "v" * 64),
        ("k" * 64, "v"),
        ("team", "é" * 11),  # 11 characters, 66 once encoded
        ("team", "é" * 10 + "abcd"),  # 14 characters, 64 once encoded
    ],
    ids=["long-value", "long-key", "long-once-encoded", "one-over-once-encoded"],
)
def test_too_long_label_is_refused_not_truncated(key, value):
    with pytest.raises(ConfigError, match=r"limit 63") as exc:
        gcp_labels({key: value})
    assert exc.value.exit_code == 2
    assert "shorten it" in exc.value.message


def test_encoded_label_of_exactly_63_is_kept():
    value = "é" * 10 + "abc"  # 60 + 3
    assert gcp_labels({"team": value}) == {"team": "_c3_a9" * 10 + "abc"}
