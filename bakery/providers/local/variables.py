"""The Packer variables of a qemu bake, and what the local provider prepares for them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bakery.config.kinds import TargetSpec, typed
from bakery.config.load import EffectiveImage
from bakery.config.targets.local import LocalTarget
from bakery.providers.base import BuildMarks, PackerVariables, Prepared, Preview, per_bake
from bakery.providers.local.qemu import KERNEL_CMDLINE

PREVIEW_KEY = "preview-build-key"
PREVIEW_BASE = "preview-base-not-built"


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


def preview(eff: EffectiveImage, spec: TargetSpec, out: Path) -> Preview:
    """Stand-ins for what a local build makes first, for an offline render: the base disk and its
    boot files are named in `out/preview-base-not-built/`, which is never made (a `packer build`
    of the preview stops at once), and a throwaway key is written (0600) for `packer validate` to
    read. Nothing is bootstrapped and no parent image is read."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    local = typed(spec, LocalTarget, f"target '{eff.target}'")
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    key = out / PREVIEW_KEY
    with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(pem)
    base = out / PREVIEW_BASE
    prepared = LocalPrepared(
        base="",
        base_dependency=None,
        base_disk=str(base / "disk.qcow2"),
        kernel=str(base / "vmlinuz"),
        initrd=str(base / "initrd.img"),
        kernel_cmdline=KERNEL_CMDLINE,
        ssh_private_key_file=str(key),
        accelerator="tcg" if local.accelerator == "auto" else local.accelerator,
        output_directory=str(out / "output"),
    )
    return Preview(prepared=prepared)
