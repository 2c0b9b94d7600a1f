"""Text that people and clouds read: what bakery takes as input and what it prints back.

A reason, comment or name a user gives may not carry control characters (a newline that forges
an extra line of output, an ESC that repaints a terminal, a bidi override that reorders what a
reviewer reads): `clean` refuses them at input. Text read back from a registry or a cloud may
carry anything: `shown` escapes it for a terminal, `tag_value` keeps only what a cloud accepts.
"""

from __future__ import annotations

import re
import unicodedata

from bakery.errors import UsageError

# C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# What an EC2 tag value may hold everywhere (letters, digits, spaces and + - = . _ : / @);
# anything else is replaced so that every listing of the tag stays readable.
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x1b": "an escape"}
_AWS_TAG = re.compile(r"[^\w +\-=._:/@]", re.UNICODE)


def clean(value: str, *, what: str, fix: str = "") -> str:
    """`value` when it has no control or text-reordering character. Raises UsageError (exit 2)
    naming `what` (e.g. "--reason") and the first such character."""
    found = _CONTROL.search(value)
    if found is None:
        return value
    char = found.group()
    name = _NAMES.get(char) or unicodedata.name(char, "a control character")
    raise UsageError(
        f"{what} holds a control character ({name}, U+{ord(char):04X}) at position {found.start() + 1}",
        hint=fix or f"give {what} as plain text on one line",
    )


def shown(value: object) -> str:
    """`value` as text safe to print: control characters as \\xNN or \\uNNNN escapes."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


def tag_value(value: str, *, limit: int = 256) -> str:
    """`value` as an AWS tag value: characters EC2 does not take everywhere become '_', and the
    result is cut to `limit` characters."""
    return _AWS_TAG.sub("_", value)[:limit]
