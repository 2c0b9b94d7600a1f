"""The kinds bakery ships: one registration each (bakery.config.kinds reads this module first).

Their models live in bakery.config.models, their cloud limits in bakery.config.limits, their
providers and group drivers in bakery/providers/<kind>/ and bakery/groups/<kind>/.
"""

from __future__ import annotations

from bakery.config import aptsource, limits
from bakery.config.kinds import Kind, ProjectView, register
from bakery.config.models import (
    AwsGroup,
    AwsSource,
    AwsTarget,
    GcpGroup,
    GcpSource,
    GcpTarget,
    LocalGroup,
    LocalSource,
    LocalTarget,
)
from bakery.config.yamlload import Loc

Problem = tuple[Loc, str]


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


register(
    Kind(
        name="local",
        target=LocalTarget,
        source=LocalSource,
        group=LocalGroup,
        builder="qemu",
        plugin=("github.com/hashicorp/qemu", ">= 1.0.9"),
        provider="bakery.providers.local.provider",
        driver="bakery.groups.local.driver",
        group_example="local: {size: 2, port: 8080}",
        tags=False,  # a local image carries no tags
        checks=local_checks,
    )
)
register(
    Kind(
        name="aws",
        target=AwsTarget,
        source=AwsSource,
        group=AwsGroup,
        builder="amazon-ebs",
        plugin=("github.com/hashicorp/amazon", ">= 1.2.8"),
        provider="bakery.providers.aws.provider",
        driver="bakery.groups.aws.driver",
        group_example="aws: {asg: NAME, launch_template: NAME}",
        limits=limits.aws_problems,
    )
)
register(
    Kind(
        name="gcp",
        target=GcpTarget,
        source=GcpSource,
        group=GcpGroup,
        builder="googlecompute",
        plugin=("github.com/hashicorp/googlecompute", ">= 1.1.4"),
        provider="bakery.providers.gcp.provider",
        driver="bakery.groups.gcp.driver",
        group_example="gcp: {mig: NAME, zone: ZONE} (or region: REGION)",
        limits=limits.gcp_problems,
    )
)
