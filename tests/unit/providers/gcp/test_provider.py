"""The GCP provider's owner labels (bakery/providers/gcp/provider.py): who is baking an image, within GCP's
label rules."""

from __future__ import annotations

import re
import socket

import pytest

from bakery.core.debris import Owner
from bakery.providers.gcp import labels as gcp

LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")

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
