"""The shape of images.yaml as frozen pydantic models.

Only shape lives here (types, ranges, mutually exclusive keys). Cross-references (an image's
`from:`, a group's target, files on disk) are checked in config.py, which knows the whole file.

`bakery schema` is generated from these models, so each rule is written once for both: patterns
use ASCII classes (`[0-9]`, not `\\d`, which means more in Python and in pydantic's regex than in
JSON Schema), numbers and booleans are strict (YAML's "2" is text, not a number), and a value
validated by code (sizes, batch sizes) declares the schema of exactly what it accepts.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union

from pydantic import (
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bakery.config import kinds
from bakery.config.imagetests import TestsBlock
from bakery.config.kinds import GroupSettings, TargetSpec
from bakery.config.model_base import Bool, Int, Model, _whole, exactly_one
from bakery.config.scan_models import ChannelScan, ScanSettings
from bakery.config.trust_models import LocalRegistry, Registry, Trust

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
VERSION_PATTERN = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"
SIZE_PATTERN = r"^([1-9][0-9]*)([MmGg]i?[Bb]?)?$"
PERCENT_PATTERN = r"^([1-9][0-9]?|100)%$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MIRROR_PATTERN = r"^(https?|file)://[!-~]+$"
NAME_HINT = "lowercase letters, digits and '-', starting with a letter, at most 40 characters"
M = TypeVar("M", bound=Model)


def parse_size_mib(value: Any) -> int:
    """'4G', '512M', '4096' or 4096 (MiB) -> MiB. Raises ValueError for anything else."""
    value = _whole(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(SIZE_PATTERN, value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a size such as 4096 (MiB), '512M' or '4G', got {value!r}")
    number, unit = int(match.group(1)), (match.group(2) or "M")[0].upper()
    return number * 1024 if unit == "G" else number


MiB = Annotated[
    int,
    Field(ge=1),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": SIZE_PATTERN}],
            "description": "MiB: a number such as 4096, or text such as '512M' or '4G'",
        }
    ),
]


# --- sources: where an image starts (each kind's block is in bakery/config/targets/) ----------


class SourcesBase(Model):
    """An image's `source:`: one block per kind of target (the fields come from bakery.config.kinds)."""

    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in kinds.names() if getattr(self, kind, None) is not None)

    def of(self, kind: str, model: type[M]) -> M | None:
        """The block for `kind`, as `model` (the kind's source model), or None when not given."""
        block = getattr(self, kind, None)
        return block if isinstance(block, model) else None


# --- images -----------------------------------------------------------------------------------


class TargetOverride(Model):
    """Per-target changes to an image: vars and tags merge, playbooks replace."""

    playbooks: tuple[str, ...] | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    tests: TestsBlock | None = None  # laid over the image's own tests on this target


class Prune(Model):
    """What `bakery prune` may remove of an image's versions: never the newest `keep`, never one
    younger than `older_than_days`, never one shared with other accounts unless `shared`. On GCP an
    image is DEPRECATED (with its replacement) at that age, OBSOLETE `obsolete_after_days` later and
    deleted `delete_after_days` after that."""

    keep: Int = Field(3, ge=1, le=1000)
    older_than_days: Int = Field(30, ge=0, le=36500)
    shared: Bool = False  # True: an image shared with other accounts or projects may go too
    obsolete_after_days: Int = Field(7, ge=0, le=36500)
    delete_after_days: Int = Field(7, ge=0, le=36500)


class ImageBase(Model):
    model_config = ConfigDict(json_schema_extra=exactly_one("source", "from"))

    description: str = ""
    version: str = Field(pattern=VERSION_PATTERN)
    source: SourcesBase | None = None
    parent: str | None = Field(None, alias="from")
    playbooks: tuple[str, ...] = ()
    vars: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, Annotated[str, Field(pattern=ENV_PATTERN)]] = Field(default_factory=dict)
    targets: tuple[str, ...] | None = None
    overrides: dict[str, TargetOverride] = Field(default_factory=dict)
    tests: TestsBlock | None = None  # what boots the finished image and checks it (bakery.config.imagetests)
    prune: Prune = Field(default_factory=Prune)  # what `bakery prune` may remove (bakery.prune)

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise PydanticCustomError(
                "version_not_string",
                'write the version as a quoted string such as "1.0" (YAML reads {value} as a number)',
                {"value": value},
            )
        if not isinstance(value, str) or not re.fullmatch(VERSION_PATTERN, value):
            raise PydanticCustomError(
                "version_form",
                "expected MAJOR.MINOR such as \"1.0\" (bakery adds the PATCH), got '{value}'",
                {"value": value},
            )
        return value

    @model_validator(mode="after")
    def _source_or_parent(self) -> ImageBase:
        if self.parent is None and self.source is None:
            raise ValueError("an image needs a 'source' (where it starts) or 'from' (a parent image)")
        if self.parent is not None and self.source is not None:
            raise ValueError("'source' and 'from' exclude each other: a child starts from its parent")
        return self

    def override_for(self, target: str) -> TargetOverride:
        return self.overrides.get(target, TargetOverride())


# --- targets: TargetSpec (bakery.config.kinds) and each kind's model in bakery/config/targets/ --


# --- groups: the fleets that run images, and how they move onto a new one ---------------------

Percent = Annotated[
    int | str,
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": PERCENT_PATTERN}]}),
]
SurgeValue = Annotated[
    int | str,
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": PERCENT_PATTERN}]}),
]


def count_or_percent(value: Any, *, minimum: int, what: str) -> Any:
    value = _whole(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    if isinstance(value, str) and re.fullmatch(PERCENT_PATTERN, value):
        return value
    raise PydanticCustomError(
        what,
        f'expected a number of instances ({minimum} or more) or a percentage such as "25%" (1-100%), got {{value}}',
        {"value": repr(value)},
    )


class Health(Model):
    """The gate every new instance passes: `healthy_threshold` consecutive 200s from GET `path`
    on `port`, within `timeout_seconds`, checked from `grace_seconds` after it started."""

    path: str = Field("/healthz", pattern=r"^/[!-~]*$")
    port: Int = Field(80, ge=1, le=65535)
    grace_seconds: Int = Field(60, ge=0)
    timeout_seconds: Int = Field(300, ge=1)
    healthy_threshold: Int = Field(2, ge=1)
    interval_seconds: Int = Field(2, ge=1, le=300)


class Strategy(Model):
    type: Literal["rolling", "canary", "blue-green"] = "rolling"
    batch_size: Percent = 1
    canary_size: Percent = 1
    # How long a canary is held, its gate still green, before the rest follows.
    bake_seconds: Int = Field(60, ge=0)
    pause_seconds: Int = Field(0, ge=0)  # between batches
    # blue-green: how long the old group is kept (scaled to zero, or stopped) so that rollback is immediate.
    retention_seconds: Int = Field(3600, ge=0)

    @field_validator("batch_size", "canary_size", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return count_or_percent(value, minimum=1, what="batch_size")


class GroupBase(Model):
    image: str
    target: str
    channel: str | None = None
    strategy: Strategy = Field(default_factory=Strategy)
    health: Health = Field(default_factory=Health)
    rollback: Bool = True  # a failed gate returns the group to the exact previous image
    keep: Int = Field(3, ge=1, le=50)  # templates of the last N rollouts are never deleted
    require_signed: Bool | None = None  # refuse images that do not verify; default: trust.require
    # and one optional block per kind of target (aws:, gcp:, local:, ...): see bakery.config.kinds

    def blocks(self) -> dict[str, GroupSettings]:
        """The kind blocks given, by kind (load.py checks that there is exactly the target's)."""
        given = {kind: getattr(self, kind, None) for kind in kinds.names()}
        return {kind: block for kind, block in given.items() if isinstance(block, GroupSettings)}

    def settings(self) -> GroupSettings | None:
        """The block of the group's kind (load.py checks that it matches the target's kind)."""
        return next(iter(self.blocks().values()), None)

    def block(self, model: type[G]) -> G | None:
        """The group's block if it is a `model` (the driver's own kind), else None."""
        found = self.settings()
        return found if isinstance(found, model) else None


DURATION_PATTERN = r"^([1-9][0-9]*)(s|m|h|d|w)$"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> int:
    """'30m', '24h', '7d' -> seconds. Raises ValueError for anything else."""
    match = re.fullmatch(DURATION_PATTERN, text)
    if not match:
        raise ValueError(f"expected a duration such as '30m', '24h' or '7d', got {text!r}")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


class Channel(Model):
    """A channel images are promoted through (`bakery promote`), and the gates a version passes on
    the way in: every one of them is checked by `promote`, and a refusal names each that failed."""

    description: str = ""
    # The version was a head of that channel (same image and target) before it comes here.
    promote_from: str | None = None
    # It was the head of `promote_from` this long, and every group following that channel ran it
    # healthy this long (the registry's rollout records say when each rollout finished).
    soak: Annotated[str, Field(pattern=DURATION_PATTERN)] | None = None
    approvals: Int = Field(0, ge=0, le=20)  # distinct trusted keys, neither the builder's nor the promoter's
    tests: Literal["passed"] | None = None  # a signed test-result attestation says PASSED
    # Every tested bake is promoted here by `bakery build` (the promote-after-build hook).
    auto: Bool = False
    # No finding of the scan feed above its severity, unless allowed (bakery/scan).
    scan: ChannelScan | None = None

    def soak_seconds(self) -> int:
        return duration_seconds(self.soak) if self.soak else 0


G = TypeVar("G", bound=GroupSettings)

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class ConfigBase(Model):
    images: dict[Name, ImageBase]
    targets: dict[Name, TargetSpec]
    groups: dict[Name, GroupBase] = Field(default_factory=dict)
    channels: dict[Name, Channel] = Field(default_factory=dict)
    registry: Registry = Field(default_factory=LocalRegistry)
    trust: Trust = Field(default_factory=Trust)
    scan: ScanSettings | None = None  # the vulnerability feed `bakery scan` and the scan gate read


# --- the models of the whole file, built from the registered kinds ------------------------------


@functools.cache
def _built(generation: int) -> dict[str, Any]:
    registered = kinds.all_kinds()
    here = __name__
    given = {k.name: (k.source | None, None) for k in registered if k.source}
    sources = create_model("Sources", __base__=SourcesBase, __module__=here, **given)  # type: ignore[call-overload]
    source: Any = (sources | None, None)
    image = create_model("Image", __base__=ImageBase, __module__=here, source=source)
    # A group's kind blocks come in the order of their names (the schema has always listed them so).
    blocks: dict[str, Any] = {k.name: (k.group | None, None) for k in sorted(registered, key=lambda k: k.name)}
    group = create_model("Group", __base__=GroupBase, __module__=here, **blocks)
    members: Any = Union[tuple(k.target for k in registered)]  # noqa: UP007 (built from a tuple)
    # One kind alone is no union to discriminate: its `kind: Literal[...]` refuses the others.
    target: Any = Annotated[members, Field(discriminator="kind")] if len(registered) > 1 else members
    config = create_model(
        "Config",
        __base__=ConfigBase,
        __module__=here,
        images=(dict[Name, image], ...),
        targets=(dict[Name, target], ...),
        groups=(dict[Name, group], Field(default_factory=dict)),
    )
    return {"Sources": sources, "Image": image, "Group": group, "Config": config, "Target": target}


def config_model() -> type[ConfigBase]:
    """The model of images.yaml for the kinds registered now."""
    model: type[ConfigBase] = _built(kinds.generation())["Config"]
    return model


if TYPE_CHECKING:
    Sources = SourcesBase
    Image = ImageBase
    Group = GroupBase
    Config = ConfigBase
else:

    def __getattr__(name: str) -> Any:
        """Sources, Image, Group, Config and Target: the models for the kinds registered now; and,
        by their class names, the models of the registered kinds (`from bakery.config.models import
        AwsTarget`, where they were defined before each kind got its own module)."""
        if name.startswith("__"):  # the import system asks for __path__, __spec__...: never the registry
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        if name in ("Sources", "Image", "Group", "Config", "Target"):
            return _built(kinds.generation())[name]
        for kind in kinds.all_kinds():
            for model in (kind.target, kind.source, kind.group):
                if model is not None and model.__name__ == name:
                    return model
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
