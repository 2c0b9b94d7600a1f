"""What every images.yaml model shares: the frozen, strict base model, strict numbers and booleans,
the patterns several blocks use, and JSON Schema helpers (models.py and models_trust.py build on it)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict

ENDPOINT_PATTERN = r"^https?://[!-~]+$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"


class Model(BaseModel):
    """Frozen, and refuses unknown keys (config.py adds the 'did you mean')."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @classmethod
    def keys(cls) -> list[str]:
        """The keys images.yaml may use here (aliases where a field has one)."""
        return sorted(f.alias or name for name, f in cls.model_fields.items())


def _whole(value: Any) -> Any:
    """2.0 -> 2: JSON Schema counts a whole float as an integer, and so does validate."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int = Annotated[int, Strict(), BeforeValidator(_whole)]
Bool = Annotated[bool, Strict()]


def _given(*keys: str) -> dict[str, Any]:
    """JSON Schema: each of `keys` is present and not null (the models read null as absent)."""
    return {"required": list(keys), "properties": {k: {"not": {"type": "null"}} for k in keys}}


def exactly_one(a: str, b: str) -> dict[str, Any]:
    """JSON Schema for a model validator that wants exactly one of `a` and `b`."""
    return {"anyOf": [_given(a), _given(b)], "not": _given(a, b)}
