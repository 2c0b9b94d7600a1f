"""JSON read back from a registry or a cloud: untrusted. `parse` refuses nesting deeper than
MAX_DEPTH (which would otherwise exhaust the stack of every recursive reader after it) and says
what is wrong in words, as a ValueError the caller names with its key."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # bakery's own documents nest a handful of levels


def parse(data: bytes | str) -> Any:
    """The JSON value in `data`. Raises ValueError: not JSON, or nested too deeply."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"it is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise ValueError(f"not JSON ({exc})") from None
    if isinstance(value, dict | list) and _too_deep(value):
        raise ValueError(f"it is nested deeper than {MAX_DEPTH} levels")
    return value


def parse_object(data: bytes | str) -> dict[str, Any]:
    """The JSON object in `data`. Raises ValueError (also when it is another JSON type)."""
    value = parse(data)
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


def _too_deep(value: dict[str, Any] | list[Any]) -> bool:
    """Whether containers nest deeper than MAX_DEPTH (iteratively: no recursion to exhaust)."""
    level: list[Any] = [value]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            return True
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below.extend(c for c in children if isinstance(c, dict | list))
        level = below
        depth += 1
    return False
