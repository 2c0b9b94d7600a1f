"""bakery's own labels on a GCP image, apart from its provenance: the state and invocation of the
bake that made it, the owner of a running bake (for debris.judge) and its heartbeat. Pure."""

from __future__ import annotations

import socket

from bakery.core import provenance
from bakery.core.debris import Owner
from bakery.errors import ProviderError

PREFIX = provenance.GCP_PREFIX
STATE_LABEL = PREFIX + "state"
INVOCATION_LABEL = PREFIX + "invocation"
HEARTBEAT_LABEL = PREFIX + "heartbeat"
# The owner of a running bake, a label a field (its invocation is the stamp's own).
OWNER_LABELS = {field: f"{PREFIX}owner-{field}" for field in ("host", "pid", "boot", "started")}
# The stamp's fields a catalog record cannot do without.
REQUIRED = ("image", "version", "target", "state", "inputs-digest")


def owner_labels(owner: Owner) -> dict[str, str]:
    """The owner of a running bake as labels (a host name too long for a label, as its digest)."""
    fields = owner.fields()
    return {label: provenance.gcp_value(fields[field]) for field, label in OWNER_LABELS.items()}


def owner_of(labels: dict[str, str], invocation: str) -> Owner | None:
    """The owner written by `owner_labels`, for debris.judge(). A host kept as its digest is known
    again when it is this host (all judge() asks of it); a field that cannot be read gives None,
    and judge() goes by the heartbeat."""
    fields = {"invocation": invocation}
    for field, label in OWNER_LABELS.items():
        if label not in labels:
            return None
        try:
            fields[field] = provenance.gcp_read_value(labels[label], [socket.gethostname()] if field == "host" else [])
        except ValueError:
            return None
    return Owner.from_fields(fields)


def mark_of(labels: dict[str, str]) -> str | None:
    """The invocation of the bake that made the image, from its labels."""
    return readable(labels.get(INVOCATION_LABEL))


def claim(labels: dict[str, str], where: str, invocation: str) -> None:
    """Refuse to stamp an image another bake made."""
    if mark_of(labels) != invocation:
        raise ProviderError(
            f"GCP: image {where} is not this bake's (it carries invocation {mark_of(labels) or 'none'}, "
            f"not {invocation}): bakery leaves it as it is"
        )


def readable(label: str | None) -> str | None:
    if label is None:
        return None
    try:
        return provenance.decode_label(label)
    except ValueError:
        return None
