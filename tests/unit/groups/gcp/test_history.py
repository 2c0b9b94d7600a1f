"""The GCP group driver's history (bakery/groups/gcp/history.py): when a retired MIG last served."""

from __future__ import annotations

from bakery.groups.base import HistoryEntry, Release
from bakery.groups.gcp.history import Record, _served_until


def record(rollout_id: str, mig: str, finished: str) -> list[Record]:
    entry = HistoryEntry(
        rollout_id, "rollout", finished, "a", None, Release(None, "i"), "blue-green", "succeeded", finished
    )
    return [Record(entry, 1, "", mig)]


def test_a_retired_mig_is_dated_by_the_rollout_after_which_another_served() -> None:
    first, second = "r-00000000000a", "r-00000000000b"
    ordered = [
        record(first, "web-mig-" + first, "2026-03-01T10:00:00Z"),  # web-mig -> its successor
        record(second, "web-mig-" + first, "2026-03-02T10:00:00Z"),  # a failed swap: web-mig-<second> never served
    ]
    served = _served_until(ordered, "web-mig")
    assert {k: v.isoformat() for k, v in served.items()} == {
        "web-mig-" + second: "2026-03-02T10:00:00+00:00",
    }
    served = _served_until([[Record(ordered[0][0].entry, 1, "", "web-mig")], *ordered], "web-mig")
    assert served["web-mig"].isoformat() == "2026-03-01T10:00:00+00:00"
