"""The Packer variables of a qemu bake, and what the local provider prepares for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bakery.config.kinds import TargetSpec, typed
from bakery.config.load import EffectiveImage
from bakery.config.targets.local import LocalTarget
from bakery.providers.base import BuildMarks, PackerVariables, Prepared, per_bake


@dataclass(frozen=True, kw_only=True)
class LocalPrepared(Prepared):
    """Paths on this machine a build needs made first: the base disk with its kernel and initrd,
    the build's key, where the image is written, and the accelerator that boots here. Empty when
    only the bake key is wanted (plan); a build always has them."""

    base_disk: str = ""
    kernel: str = ""
    initrd: str = ""
    kernel_cmdline: str = ""
    ssh_private_key_file: str = ""
    accelerator: str = "tcg"
    output_directory: str = "output"


@dataclass(frozen=True, kw_only=True)
class LocalVariables(PackerVariables):
    # A local image carries no tags: they must not enter its bake key either.
    image_tags: Mapping[str, str] = field(default_factory=dict)
    base_disk: str = per_bake()
    kernel: str = per_bake()
    initrd: str = per_bake()
    kernel_cmdline: str = per_bake()  # carries the bake's own key
    ssh_private_key_file: str = per_bake()
    accelerator: str = per_bake()
    memory: int
    cpus: int
    disk_size: int
    ssh_timeout: str
    output_directory: str = per_bake()


def packer_variables(
    eff: EffectiveImage, spec: TargetSpec, version: str, prepared: Prepared | None, marks: BuildMarks | None
) -> LocalVariables:
    local = typed(spec, LocalTarget, f"target '{eff.target}'")
    found = prepared if isinstance(prepared, LocalPrepared) else LocalPrepared(base="", base_dependency=None)
    return LocalVariables(
        base_disk=found.base_disk,
        kernel=found.kernel,
        initrd=found.initrd,
        kernel_cmdline=found.kernel_cmdline,
        ssh_private_key_file=found.ssh_private_key_file,
        accelerator=found.accelerator,
        memory=local.memory,
        cpus=local.cpus,
        disk_size=local.disk_size,
        ssh_timeout=local.ssh_timeout,
        output_directory=found.output_directory,
    )
