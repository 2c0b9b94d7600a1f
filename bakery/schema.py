"""JSON Schema of images.yaml, for editors (yaml-language-server) and CI linters."""

from __future__ import annotations

from typing import Any

from bakery.models import Config


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://bakery.dev/schemas/images.schema.json",
        "title": "bakery images.yaml",
        "description": "Images, targets, groups and channels baked and rotated by bakery.",
        **schema,
    }
