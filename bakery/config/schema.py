"""JSON Schema of images.yaml, for editors (yaml-language-server) and CI linters.

Generated from the models that `validate` uses, so the two accept the same types, forms, enums,
patterns and lengths. What the schema cannot say (references between sections, files on disk,
cloud limits that depend on the target, the machine's apt sources) `validate` adds.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from bakery.config.load import EXTENSION_PREFIX
from bakery.config.models import config_model


class _Generator(GenerateJsonSchema):
    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        """A map with a key pattern (image, target, group and channel names) refuses other keys:
        `propertyNames` + `additionalProperties`, where pydantic's `patternProperties` lets them by."""
        out = super().dict_schema(schema)
        patterns = out.pop("patternProperties", None)
        if patterns:
            ((pattern, value),) = patterns.items()
            out["propertyNames"] = {"pattern": pattern}
            out["additionalProperties"] = value
        return out


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of images.yaml."""
    schema = config_model().model_json_schema(by_alias=True, mode="validation", schema_generator=_Generator)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://bakery.dev/schemas/images.schema.json",
        "title": "bakery images.yaml",
        "description": "Images, targets, groups and channels baked and rotated by bakery.",
        **{k: v for k, v in schema.items() if k != "title"},
        "patternProperties": {f"^{EXTENSION_PREFIX}": {}},  # the file's own keys, e.g. anchors to merge
    }
