"""The bake key: one sha256 over every input of a bake of one image on one target."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

DIGEST_SCHEMA = "bakery.bake.inputs/v1"


def digest_json(data: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inputs_digest(
    *,
    files: Mapping[str, str],
    variables: Mapping[str, Any],
    entry: Mapping[str, Any],
    base: str,
    parent_digest: str | None,
    tools: Mapping[str, str],
) -> str:
    """sha256 over the inputs of a bake. Any change in them is a different image.

    files: path -> sha256 of templates, scripts, playbooks and their roles.
    variables: the rendered Packer variables that do not change per bake.
    entry: the image's resolved images.yaml entry. base: the resolved base (disk digest, AMI id).
    parent_digest: the parent image's inputs digest. tools: packer and ansible versions.
    """
    document = {
        "schema": DIGEST_SCHEMA,
        "files": dict(files),
        "variables": dict(variables),
        "entry": dict(entry),
        "base": base,
        "parent": parent_digest,
        "tools": dict(tools),
    }
    return "sha256:" + sha256_hex(digest_json(document))
