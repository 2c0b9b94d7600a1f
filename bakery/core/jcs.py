"""Canonical JSON (RFC 8785, JCS): the exact bytes that are signed and digested, the same on every
machine whatever the key order or number formatting of the document they come from."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import rfc8785


def jcs_bytes(document: Mapping[str, Any] | list[Any]) -> bytes:
    """`document` in RFC 8785 canonical form. Raises ValueError for what JSON cannot hold
    exactly (floats such as NaN, integers beyond 2**53)."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise ValueError(f"not canonical JSON: {exc}") from None


def sha256(data: bytes) -> str:
    """'sha256:<hex>' of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest(document: Mapping[str, Any] | list[Any]) -> str:
    """'sha256:<hex>' of `document` in canonical JSON."""
    return sha256(jcs_bytes(document))
