"""An advisory's severity as a feed gives it, rated on bakery's scale (config.scan_models.SEVERITIES).

A feed says it as a word (Debian's urgency, a database's severity, Ubuntu's priority), as a CVSS
base score, or as a CVSS vector (OSV `severity: [{type: CVSS_V2 | CVSS_V3 | CVSS_V4, score:
"CVSS:3.1/AV:N/..."}]`). A vector's base score is computed by the `cvss` library and rated with
its version's qualitative scale: v3 and v4 as their specifications rate them (none, low, medium,
high, critical), v2 as NVD does (low below 4.0, medium below 7.0, else high). A feed is untrusted
input: a vector that cannot be read, or a score that is not a base score (a finite number from 0
to 10: JSON readers take NaN and Infinity), stays `unknown`, and says why in a line of bounded,
printable text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from bakery.config.scan_models import SEVERITIES
from bakery.core.text import shown

MAX_VECTOR = 300  # characters: a CVSS v4 vector with every metric set is about 220
MAX_SEVERITIES = 16  # entries of one record's `severity` list read; OSV gives one per scoring system
_WORDS = {"low": "low", "moderate": "medium", "medium": "medium", "high": "high", "important": "high"}
_WORDS |= {"critical": "critical", "none": "none", "negligible": "unimportant", "unimportant": "unimportant"}
# A score given as text ("9.8"), or text a reader might take for a number ("99", "-1", "1e3", "NaN")
_NUMBER = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]?(nan|inf|infinity)", re.IGNORECASE)


@dataclass(frozen=True)
class Rated:
    severity: str  # one of SEVERITIES
    given: str  # what the feed said ("high", "9.8", "CVSS:3.1/AV:N/…", "not given")
    unreadable: str = ""  # why a vector it gave could not be read ('' when it could, or none was given)


def word(text: str) -> str:
    """A feed's severity word on bakery's scale; `unknown` for a word it does not use."""
    return _WORDS.get(text.lower(), "unknown")


def score_rating(score: float) -> str:
    """CVSS v3 qualitative rating of a base score."""
    if score <= 0:
        return "none"
    return "low" if score < 4 else "medium" if score < 7 else "high" if score < 9 else "critical"


def vector_rating(kind: str, vector: str) -> str:
    """The rating of `vector`'s base score, `kind` being its OSV type (CVSS_V2, CVSS_V3, CVSS_V4).
    Raises ValueError, saying why, for a vector that is not one of that version."""
    if len(vector) > MAX_VECTOR:
        raise ValueError(f"longer than {MAX_VECTOR} characters")
    try:
        if kind == "CVSS_V3":
            return str(CVSS3(vector).severities()[0]).lower()
        if kind == "CVSS_V4":
            return str(CVSS4(vector).severity).lower()
        if kind == "CVSS_V2":
            base = float(CVSS2(vector).scores()[0])
            return "low" if base < 4 else "medium" if base < 7 else "high"  # NVD's v2 scale
    except CVSSError as exc:
        raise ValueError(str(exc)) from None
    raise ValueError(f"bakery reads CVSS_V2, CVSS_V3 and CVSS_V4 vectors, not {kind or 'one without a type'}")


def osv(record: Mapping[str, Any], entry: Mapping[str, Any]) -> Rated:
    """The severity of an OSV `record` for one of its `affected` entries. A word of the
    distribution's (the entry's `ecosystem_specific` or `database_specific`, the record's
    `database_specific`) comes first: it is its triage for this release (`unimportant` where a CVSS
    score rates the upstream code high). Else the highest of the record's `severity` list that
    can be read; when none can, `unknown`, saying why the first vector could not be read."""
    said = ""
    for block in (entry.get("ecosystem_specific"), entry.get("database_specific"), record.get("database_specific")):
        if isinstance(block, dict):
            for key in ("urgency", "severity"):
                text = _text(block.get(key), 40).rstrip("*").strip()
                if text and word(text) != "unknown":
                    return Rated(word(text), text)
                said = said or text
    best: Rated | None = None
    failed: Rated | None = None
    listed = record.get("severity")
    for each in listed[:MAX_SEVERITIES] if isinstance(listed, list) else []:
        if not isinstance(each, dict):
            continue
        rated = _one(each)
        if rated.unreadable:
            failed = failed or rated
        elif rated.severity != "unknown" and (best is None or _rank(rated) > _rank(best)):
            best = rated
    return best or failed or Rated("unknown", said or "not given")


def _one(each: Mapping[str, Any]) -> Rated:
    kind, score = _text(each.get("type"), 40), each.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        return _scored(kind, score, _number(score))
    if not isinstance(score, str) or not score:
        return Rated("unknown", "not given")
    given = shown(score[:MAX_VECTOR])
    if kind == "Ubuntu":
        return Rated(word(score[:40]), given)
    if len(score) <= 40 and _NUMBER.fullmatch(score):
        return _scored(kind, float(score), given)
    try:
        return Rated(vector_rating(kind, score), given)
    except ValueError as exc:
        why = shown(str(exc)[:200])
        return Rated("unknown", given, f"its {shown(kind) or 'severity'} vector could not be read: {why}")


def _scored(kind: str, score: float, given: str) -> Rated:
    """A base score rated; one outside 0..10 (NaN and infinities included) is `unknown`, saying why."""
    if 0 <= score <= 10:  # false for NaN
        return Rated(score_rating(float(score)), given)
    return Rated("unknown", given, f"its {shown(kind) or 'severity'} score {given} is not a base score from 0 to 10")


def _number(score: float) -> str:
    """A number as shown: an integer of more digits than a score may have is not written out."""
    if isinstance(score, int) and not -(10**12) < score < 10**12:
        return "(an integer of more than 12 digits)"
    return str(score)


def _rank(rated: Rated) -> int:
    return SEVERITIES.index(rated.severity)


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
