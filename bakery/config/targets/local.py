"""The local kind's blocks of images.yaml (QEMU images in the local catalog, groups of VMs behind
HAProxy) and what `validate` checks for it; its provider and group driver live in
bakery/providers/local/ and bakery/groups/local/."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from bakery.config import aptsource
from bakery.config.kinds import GroupSettings, Kind, ProjectView, TargetSpec
from bakery.config.model_base import Int, Model
from bakery.config.models import MIRROR_PATTERN, MiB, parse_size_mib
from bakery.config.yamlload import Loc

Problem = tuple[Loc, str]


class LocalSource(Model):
    """A Debian bootstrap recipe: mmdebstrap makes the base disk from it."""

    suite: str = Field("bookworm", pattern=r"^[a-z][a-z0-9-]*$")
    # None: the Debian archive this machine's apt uses (bakery.aptsource), found when it is needed.
    mirror: str | None = Field(
        None,
        pattern=MIRROR_PATTERN,
        description="Debian archive to bootstrap from (http://, https:// or file://); "
        "by default the one this machine's apt uses",
    )
    packages: tuple[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.:=~-]*$")], ...] = ()


class LocalTarget(TargetSpec):
    kind: Literal["local"]
    memory: MiB = 1024
    cpus: Int = Field(1, ge=1, le=64)
    accelerator: Literal["auto", "kvm", "tcg"] = "auto"
    disk_size: MiB = 3072
    ssh_timeout: str = Field("20m", pattern=r"^[0-9]+[smh]$")

    @field_validator("memory", "disk_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size_mib(value)


class LocalGroup(GroupSettings):
    """`size` QEMU VMs from the local catalog behind HAProxy on 127.0.0.1:`port`."""

    size: Int = Field(2, ge=1, le=16)
    port: Int = Field(ge=1024, le=65535)
    memory: MiB = 512
    cpus: Int = Field(1, ge=1, le=64)

    @field_validator("memory", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size_mib(value)

    def planned_size(self) -> int:
        return self.size


def local_checks(project: ProjectView) -> list[Problem]:
    """What only local targets need: an apt source for recipes without `mirror:`, and one front
    port per local group."""
    # Recipes are found along lineages, which are only followed once they are known to end.
    return (_mirrors(project) if project.lineages_ok() else []) + _shared_ports(project)


def _mirrors(project: ProjectView) -> list[Problem]:
    """Local recipes without `mirror:` that a local target uses need this machine's apt source."""
    problems: list[Problem] = []
    for name, image in project.config.images.items():
        recipe = image.source.of("local", LocalSource) if image.source else None
        if recipe is None or recipe.mirror is not None or not _bakes_locally(project, name):
            continue
        if aptsource.debian_mirror(aptsource.ETC_APT, recipe.suite) is None:
            problems.append(
                (
                    ("images", name, "source", "local"),
                    "no 'mirror:' here, and this machine's apt sources "
                    f"({aptsource.ETC_APT}/sources.list, sources.list.d/) name no Debian archive: "
                    "add mirror: URL (http://, https:// or file:// of a Debian archive)",
                )
            )
    return problems


def _bakes_locally(project: ProjectView, root: str) -> bool:
    """Whether an image rooted at `root` bakes on a local target (and so needs its recipe)."""
    targets = project.config.targets
    return any(
        targets[t].kind == "local"
        for name in project.config.images
        if project.lineage(name)[-1] == root
        for t in project.targets_of(name)
        if t in targets
    )


def _shared_ports(project: ProjectView) -> list[Problem]:
    """Two local groups cannot listen on one front port."""
    problems: list[Problem] = []
    seen: dict[int, str] = {}
    for name, group in project.config.groups.items():
        local = group.block(LocalGroup)
        if local is None:
            continue
        other = seen.setdefault(local.port, name)
        if other != name:
            problems.append(
                (
                    ("groups", name, "local", "port"),
                    f"port {local.port} is already the front port of group '{other}'",
                )
            )
    return problems


KIND = Kind(
    name="local",
    target=LocalTarget,
    source=LocalSource,
    group=LocalGroup,
    builder="qemu",
    plugin=("github.com/hashicorp/qemu", ">= 1.0.9"),
    provider="bakery.providers.local.provider",
    driver="bakery.groups.local.driver",
    launcher="bakery.imagetest.local",
    group_example="local: {size: 2, port: 8080}",
    tags=False,  # a local image carries no tags
    checks=local_checks,
)
