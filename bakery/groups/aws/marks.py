"""What bakery writes where an AWS group lives, so that every machine reads the same story. Pure.

- A launch template version bakery makes says so in its VersionDescription (at most 255
  characters): `bakery r-0123456789ab: web@1.0.3 (ami-...) by alice@host`.
- While a rollout runs, the launch template carries `bakery:active` = the refresh (or blue-green
  group), the rollout, when, who and where: what a second rollout names when it refuses.
- Each rollout's history entry is one launch template tag, `bakery:history:<rollout id>`, whose
  value (at most 256 characters) holds the entry with its releases as version numbers, AMIs and
  image refs; the reason is shortened to fit. AWS allows 50 tags on a resource: the oldest
  entries give way (see HISTORY_ROOM).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from bakery.core.provenance import AWS_MAX_TAGS, AWS_MAX_VALUE
from bakery.errors import UsageError
from bakery.groups.base import HistoryEntry, Release

VERSION_PREFIX = "bakery "
VERSION_DESCRIPTION_MAX = 255
ACTIVE_TAG = "bakery:active"
HISTORY_PREFIX = "bakery:history:"
# Tags left for other uses on the launch template (the user's, bakery:active) before history gives way.
HISTORY_ROOM = AWS_MAX_TAGS - 5
_SEP = "|"
_FORMAT = "1"


def clean(text: str | None) -> str:
    """One line without the field separator."""
    return " ".join((text or "").replace(_SEP, "/").split())


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


# AWS names a failure's cause in CamelCase codes (InsufficientInstanceCapacity, ValidationError).
_CAUSE = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+(?:\.[A-Z][A-Za-z0-9]+)?\b")


def shorten_keeping_causes(text: str, limit: int) -> str:
    """`text` within `limit` characters, its beginning and, after an ellipsis, every cause code it
    names that the cut would lose (the whole reason is kept in the registry's rollout record)."""
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    lost = [c for c in dict.fromkeys(_CAUSE.findall(text)) if c not in head]
    if not lost:
        return head + "…"
    tail = "… " + ", ".join(lost)
    if len(tail) >= limit - 20:
        return shorten(", ".join(lost), limit)
    return text[: limit - len(tail)].rstrip() + tail


# --- launch template references -------------------------------------------------------------------


def template_label(template_id: str, version: int | str) -> str:
    """'lt-0abc:7': a Release's template."""
    return f"{template_id}:{version}"


def parse_template(label: str) -> tuple[str, int]:
    """'lt-0abc:7' -> ('lt-0abc', 7). UsageError for anything but a numbered version."""
    template_id, _, version = label.rpartition(":")
    if not template_id.startswith("lt-") or not version.isdigit():
        raise UsageError(f"'{label}' is not a numbered launch template version (lt-...:N)")
    return template_id, int(version)


# --- version descriptions -----------------------------------------------------------------------


def version_description(rollout_id: str, shown: str, ami: str, who: str) -> str:
    text = f"{VERSION_PREFIX}{rollout_id}: {clean(shown)} ({ami}) by {clean(who)}"
    return shorten(text, VERSION_DESCRIPTION_MAX)


def parse_version_description(text: str | None) -> tuple[str, str] | None:
    """(rollout id, who) of a version bakery made; None for any other version."""
    found = re.match(r"^bakery (r-[0-9a-f]{12}): .* by (.+)$", text or "")
    return (found.group(1), found.group(2)) if found else None


def made_by_bakery(text: str | None) -> bool:
    return parse_version_description(text) is not None


# --- the active mark ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """A rollout under way: `engine` is the instance refresh id ("" until it started) or
    "bg:<green ASG>" for a blue-green rollout."""

    engine: str
    rollout: str
    started: str
    who: str
    where: str
    to: str

    def encode(self) -> str:
        """The tag value (at most 256 characters). Fields are shortened one by one (where, to,
        who, then the engine, each to a floor) so that the separators always survive."""
        fields = [self.engine, self.rollout, compact(self.started), clean(self.who), clean(self.where), clean(self.to)]
        over = len(_SEP.join(fields)) - AWS_MAX_VALUE
        for index, floor in ((4, 16), (5, 24), (3, 24), (0, 40)):
            cut = min(max(0, over), max(0, len(fields[index]) - floor))
            if cut:
                fields[index] = shorten(fields[index], len(fields[index]) - cut)
                over -= cut
        return _SEP.join(fields)

    @property
    def green(self) -> str | None:
        """The green group of a blue-green rollout: its name, or (shortened, ending in "…")
        the start of it; None for an instance refresh."""
        return self.engine[3:] if self.engine.startswith("bg:") else None

    @classmethod
    def decode(cls, text: str | None) -> Mark | None:
        parts = (text or "").split(_SEP)
        if len(parts) != 6:
            return None
        return cls(parts[0], parts[1], expand(parts[2]), parts[3], parts[4], parts[5])


# --- history entries ----------------------------------------------------------------------------


def compact(stamp: str) -> str:
    """'2026-01-02T03:04:05Z' -> '20260102T030405Z' (room in a 256-character tag)."""
    return (
        stamp.replace("-", "").replace(":", "")
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
        else clean(stamp)
    )


def expand(stamp: str) -> str:
    found = re.fullmatch(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z", stamp)
    return "{}-{}-{}T{}:{}:{}Z".format(*found.groups()) if found else stamp


def _release_fields(release: Release | None) -> list[str]:
    if release is None:
        return ["", "", ""]
    version = release.template.rpartition(":")[2] if release.template else ""
    return [version if version.isdigit() else "", clean(release.image_id), clean(release.image)]


def _release(fields: list[str], template_id: str) -> Release | None:
    version, ami, image = fields
    if not ami:
        return None
    return Release(image or None, ami, template_label(template_id, version) if version else None)


def encode_entry(entry: HistoryEntry) -> str:
    """The tag value of a history entry (at most 256 characters: the reason, then who, shortened)."""
    head = [_FORMAT, entry.kind, compact(entry.started), compact(entry.finished or ""), entry.result, entry.strategy]
    tail = [*_release_fields(entry.from_), *_release_fields(entry.to)]
    who = clean(entry.who)
    fixed = len(_SEP.join([*head, "", *tail, ""]))
    who = shorten(who, max(20, AWS_MAX_VALUE - fixed - 40))
    room = AWS_MAX_VALUE - fixed - len(who)
    reason = shorten_keeping_causes(clean(entry.reason), max(0, room)) if entry.reason else ""
    return shorten(_SEP.join([*head, who, *tail, reason]), AWS_MAX_VALUE)


def decode_entry(rollout_id: str, text: str, template_id: str) -> HistoryEntry | None:
    """The entry a tag holds; None for a value bakery did not write (or a newer format)."""
    parts = text.split(_SEP, 13)
    if len(parts) != 14 or parts[0] != _FORMAT or parts[1] not in ("rollout", "rollback"):
        return None
    to = _release(parts[10:13], template_id)
    if to is None:
        return None
    kind = cast(Literal["rollout", "rollback"], parts[1])
    return HistoryEntry(
        id=rollout_id,
        kind=kind,
        started=expand(parts[2]),
        who=parts[6],
        from_=_release(parts[7:10], template_id),
        to=to,
        strategy=parts[5],
        result=parts[4],
        finished=expand(parts[3]) or None,
        reason=parts[13] or None,
    )
