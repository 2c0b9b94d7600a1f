"""The target kinds bakery knows, each described once and registered by name.

A kind (local, aws, gcp, or one registered from outside bakery) is a `Kind`: the models of its
`targets:` entry, of its image `source:` block and of its group block, the Packer builder its
template is named after, the modules of its provider and of its group driver (imported on first
use, so `bakery --help` loads no SDK), and the checks `validate` runs for it. Everything outside a
kind's own folders asks this registry instead of naming kinds.

    from bakery.config import kinds
    kinds.register(kinds.Kind(name="toy", target=ToyTarget, group=ToyGroup, ...))

The built-in kinds register themselves (bakery.config.builtin) the first time the registry is read.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from bakery.config.imagetests import TestsBlock
from bakery.config.model_base import Model
from bakery.config.yamlload import Loc
from bakery.errors import UsageError

Problem = tuple[Loc, str]

KIND_PATTERN = r"^[a-z][a-z0-9_]{0,19}$"
# A group's own keys: no kind may take one of them as its name (its block sits beside them).
GROUP_KEYS = ("image", "target", "channel", "strategy", "health", "rollback", "keep", "require_signed")
_BUILTIN = "bakery.config.builtin"  # registers local, aws and gcp


class ProjectView(Protocol):
    """What a kind's project checks read of a validated images.yaml (bakery.config.load.Project)."""

    @property
    def config(self) -> Any: ...  # the validated file: bakery.config.models.Config

    def lineage(self, name: str) -> tuple[str, ...]: ...

    def targets_of(self, name: str) -> tuple[str, ...]: ...

    def lineages_ok(self) -> bool: ...


class TargetSpec(Model):
    """What every `targets:` entry has: its kind. Each kind's model narrows `kind` to its name
    (a Literal: the discriminator of the targets' union) and adds its settings."""

    kind: str
    tests: TestsBlock | None = None  # defaults for the tests of every image baked here

    def provisions(self) -> bool:
        """False for a target that registers an image without running provisioners on a build VM."""
        return True


class GroupSettings(Model):
    """A group's block for its target's kind (`aws:`, `gcp:`, `local:`, ...). What the rollout
    service asks of every kind's block; the defaults suit a group the engine sizes itself."""

    def planned_size(self) -> int:
        """The group's size as images.yaml gives it, when the engine does not report one."""
        return 0

    def healthy_bounds(self) -> tuple[int | None, int | None]:
        """(min, max) percentage of healthy capacity a rolling plan keeps, when the engine has them."""
        return (None, None)

    def gates(self) -> list[str]:
        """What the engine checks beside the health gate, one phrase each (shown before a rollout)."""
        return []


S = TypeVar("S", bound=Model)


@dataclass(frozen=True)
class Kind:
    """One kind of target, as every room outside its own folders sees it."""

    name: str  # the `kind:` value in images.yaml, and the key of its source and group blocks
    target: type[TargetSpec]  # the `targets:` entry, with `kind: Literal[name]`
    group: type[GroupSettings]  # `groups.<name>.<kind>:`
    builder: str  # the Packer builder: the template is `<builder>.pkr.hcl`
    provider: str  # module with make(workspace, reporter, clients) -> Provider, and variables(...)
    driver: str  # module with make(workspace, reporter, clients) -> GroupDriver
    group_example: str  # shown when a group lacks its block: "aws: {asg: NAME, launch_template: NAME}"
    source: type[Model] | None = None  # `images.<name>.source.<kind>:`; None: the kind needs none
    plugin: tuple[str, str] | None = None  # Packer required_plugins: (source, version constraint)
    tags: bool = True  # whether an image's tags reach its images here (and so its bake key)
    # What `validate` refuses of an image on a target of this kind: (image name, the image's model
    # bakery.config.models.Image, target name) -> problems.
    limits: Callable[[str, Any, str], list[Problem]] | None = None
    # Checks of the whole project this kind needs (the local kind: apt mirrors, front ports).
    checks: Callable[[ProjectView], list[Problem]] | None = None
    # module with make(workspace, reporter, clients) -> Launcher (bakery.imagetest.base): boots a
    # test instance of an image; None: images of this kind cannot be tested (`tests:` is refused).
    launcher: str | None = None

    def module(self, job: Literal["provider", "driver", "launcher"]) -> Any:
        """The kind's provider, group-driver or test-launcher module, imported now (its `make` is
        typed by the Provider, GroupDriver and Launcher protocols of bakery.providers.base,
        bakery.groups.base and bakery.imagetest.base). UsageError for a kind without a launcher."""
        if job == "launcher":
            if self.launcher is None:
                raise UsageError(f"target kind '{self.name}' cannot boot an image to test it (it has no launcher)")
            return importlib.import_module(self.launcher)
        return importlib.import_module(self.provider if job == "provider" else self.driver)


_KINDS: dict[str, Kind] = {}
_generation = [0]  # bumped by every change, so models built from the registry are rebuilt
_loading = [False]


def _ensure() -> None:
    if not _loading[0] and not _KINDS:
        _loading[0] = True
        try:
            importlib.import_module(_BUILTIN)
        except BaseException:
            _KINDS.clear()  # never half the built-in kinds: the next read tries again, or fails the same way
            raise
        finally:
            _loading[0] = False


def register(kind: Kind) -> Kind:
    """Add `kind` (or replace the kind of that name). Raises UsageError for a name images.yaml
    cannot use as a key, or one that a group's own keys already take."""
    if not re.fullmatch(KIND_PATTERN, kind.name) or kind.name in GROUP_KEYS:
        raise UsageError(f"cannot register target kind {kind.name!r}: names match {KIND_PATTERN}, not {GROUP_KEYS}")
    _ensure()
    _KINDS[kind.name] = kind
    _generation[0] += 1
    return kind


def unregister(name: str) -> None:
    """Forget kind `name` (tests that register a kind of their own remove it again)."""
    _ensure()
    if _KINDS.pop(name, None) is not None:
        _generation[0] += 1


@contextmanager
def registered(kind: Kind) -> Iterator[Kind]:
    """`kind` registered for the duration of the block (the kind it replaced, if any, after)."""
    _ensure()
    before = _KINDS.get(kind.name)
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.name)
        if before is not None:
            register(before)


def generation() -> int:
    _ensure()
    return _generation[0]


def names() -> tuple[str, ...]:
    """Every kind's name, in the order they were registered."""
    _ensure()
    return tuple(_KINDS)


def all_kinds() -> tuple[Kind, ...]:
    _ensure()
    return tuple(_KINDS.values())


def get(name: str) -> Kind:
    """The kind `name`. Raises UsageError listing the known kinds."""
    _ensure()
    if name not in _KINDS:
        raise UsageError(f"unknown target kind '{name}'; valid kinds: {', '.join(sorted(_KINDS))}")
    return _KINDS[name]


def known(name: str) -> bool:
    _ensure()
    return name in _KINDS


def typed(value: object, model: type[S], what: str) -> S:
    """`value` as `model` (a kind's target or group block), else UsageError naming `what`."""
    if not isinstance(value, model):
        shown = getattr(value, "kind", None) or type(value).__name__
        raise UsageError(f"{what} is {shown}, not {model.__name__}")
    return value
