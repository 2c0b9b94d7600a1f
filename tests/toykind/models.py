"""The toy kind's blocks of images.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bakery.config.kinds import GroupSettings, TargetSpec
from bakery.config.model_base import Int, Model


class ToyTarget(TargetSpec):
    """`kind: toy`: a shelf in the toy cloud, and an oven temperature that enters the bake key."""

    kind: Literal["toy"]
    shelf: str = Field("top", pattern=r"^[a-z]+$")
    oven: Int = Field(180, ge=100, le=300)


class ToySource(Model):
    """`source.toy`: the dough an image starts from."""

    dough: str = "plain"


class ToyGroup(GroupSettings):
    """`groups.<name>.toy`: how many instances the group runs."""

    size: Int = Field(2, ge=1, le=8)

    def planned_size(self) -> int:
        return self.size

    def gates(self) -> list[str]:
        return [f"{self.size} toy instances answer"]
