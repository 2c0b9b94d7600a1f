"""The toy kind's provider: the in-memory cloud of tests/fakes/provider.py (its images appear in a
directory under the workspace, where the stand-in packer drops them), one per bakery home so that
every CLI invocation of a test sees the same cloud, and the kind's Packer variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakery.config.kinds import TargetSpec, typed
from bakery.config.load import EffectiveImage
from bakery.progress import Reporter
from bakery.providers.base import BuildMarks, ClientFactory, PackerVariables, Prepared, per_bake
from bakery.workspace import Workspace
from tests.fakes.provider import FakeProvider
from tests.toykind.models import ToySource, ToyTarget

_CLOUDS: dict[Path, ToyProvider] = {}


class ToyProvider(FakeProvider):
    kind = "toy"


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> ToyProvider:
    """The toy cloud of this bakery home (its images in <home>/toy-cloud, a temp dir in tests)."""
    root = workspace.root.resolve()
    if root not in _CLOUDS:
        _CLOUDS[root] = ToyProvider(inbox=root / "toy-cloud")
    return _CLOUDS[root]


def forget() -> None:
    """Drop every toy cloud (a test's world ends with it)."""
    _CLOUDS.clear()


@dataclass(frozen=True, kw_only=True)
class ToyVariables(PackerVariables):
    shelf: str
    oven: int
    dough: str
    bake_id: str = per_bake()  # differs on every bake: never in the bake key


def packer_variables(
    eff: EffectiveImage, spec: TargetSpec, version: str, prepared: Prepared | None, marks: BuildMarks | None
) -> ToyVariables:
    toy = typed(spec, ToyTarget, f"target '{eff.target}'")
    source = eff.image.source.of("toy", ToySource) if eff.image.source else None
    mark: Any = marks.as_dict() if marks is not None else {}
    return ToyVariables(
        shelf=toy.shelf,
        oven=toy.oven,
        dough=source.dough if source else "plain",
        bake_id=str(mark.get("fake_mark", "")),
    )
