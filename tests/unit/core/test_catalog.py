"""Versions and references: next PATCH, IMAGE@VERSION, and picking a record."""

from __future__ import annotations

import pytest

from bakery.core.catalog import ImageRecord, newest, next_version, parse_ref, select
from bakery.errors import UsageError


def rec(name: str, version: str, target: str = "local") -> ImageRecord:
    return ImageRecord(
        name=name,
        version=version,
        target=target,
        kind="local",
        inputs_digest="sha256:" + "0" * 64,
        created="2024-01-01T00:00:00Z",
        base="sha256:" + "1" * 64,
        locations=(f"/i/{version}",),
    )


@pytest.mark.parametrize(
    ("declared", "existing", "expected"),
    [
        ("1.0", [], "1.0.0"),
        ("1.0", ["1.0.0"], "1.0.1"),
        ("1.0", ["1.0.0", "1.0.1", "1.1.0"], "1.0.2"),
        ("1.1", ["1.0.0", "1.0.1", "1.1.0"], "1.1.1"),
        ("2.0", ["1.0.0", "1.0.1", "1.1.0"], "2.0.0"),
        ("1.0", ["1.0.0", "1.0.5"], "1.0.6"),
        ("1.0", ["1.0.9", "1.0.10"], "1.0.11"),
        ("1.1", ["1.10.0", "11.1.4", "1.1"], "1.1.0"),
        ("1.0", ["1.0.3", "1.0.1"], "1.0.4"),
    ],
)
def test_next_version(declared, existing, expected):
    assert next_version(declared, existing) == expected


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("web", ("web", None)),
        ("web@1.0.2", ("web", "1.0.2")),
        ("web@10.20.30", ("web", "10.20.30")),
    ],
)
def test_parse_ref(ref, parsed):
    assert parse_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["web@1.0", "web@1", "web@latest", "web@1.0.2.3", "web@v1.0.2"])
def test_parse_ref_refuses_partial_versions(ref):
    with pytest.raises(UsageError, match=r"MAJOR\.MINOR\.PATCH") as exc:
        parse_ref(ref)
    assert exc.value.exit_code == 2
    assert ref in exc.value.message


def test_select_picks_the_newest_version_numerically():
    records = [rec("web", "1.0.9"), rec("web", "1.0.10"), rec("web", "1.0.2"), rec("db", "9.9.9")]
    assert select(records, name="web", version=None).version == "1.0.10"
    assert newest(records[:3]).version == "1.0.10"


def test_select_a_given_version():
    records = [rec("web", "1.0.0"), rec("web", "1.0.1")]
    assert select(records, name="web", version="1.0.0") == records[0]


def test_select_nothing_is_a_usage_error():
    records = [rec("web", "1.0.0")]
    with pytest.raises(UsageError, match=r"no baked image web@1\.0\.7 in the catalog") as exc:
        select(records, name="web", version="1.0.7")
    assert exc.value.exit_code == 2
    with pytest.raises(UsageError, match="no baked image db in the catalog"):
        select(records, name="db", version=None)


def test_newest_of_nothing():
    assert newest([]) is None


def test_record_ref_and_dict():
    record = rec("web", "1.0.3")
    assert record.ref == "web@1.0.3"
    assert record.as_dict()["locations"] == ["/i/1.0.3"]
    assert record.as_dict()["name"] == "web"
