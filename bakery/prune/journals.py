"""A removal's journal, read back: the record it was written for (the file is checked as
untrusted input) and whether the removal took anything away already."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError
from bakery.steps import Journal

_RECORD_FIELDS = {f.name for f in dataclasses.fields(ImageRecord)}

_DESTRUCTIVE = {"deregister", "snapshots", "remove"}  # steps that remove part of an image


def destroying(journal: Journal) -> bool:
    """Whether an interrupted removal removed anything already (or may have)."""
    return bool(journal.get("destroying")) or bool(_DESTRUCTIVE & set(journal.done))


def record_of(journal: Journal) -> ImageRecord:
    """The record a journal was written for; BakeryError if the file does not hold one."""
    return record_from(journal.data.get("record"), journal)


def record_from(data: Any, journal: Journal) -> ImageRecord:
    if not isinstance(data, dict) or not set(data) <= _RECORD_FIELDS or not isinstance(data.get("version"), str):
        raise BakeryError(f"the prune journal {journal.path} does not hold an image record", hint="move it away")
    if not re.fullmatch(r"\d+\.\d+\.\d+", data["version"]):
        raise BakeryError(f"the prune journal {journal.path} names version {data['version']!r}", hint="move it away")
    fields = {
        **data,
        "locations": tuple(data.get("locations", ())),
        "revoked_marks": tuple(data.get("revoked_marks", ())),
    }
    return ImageRecord(**fields)
