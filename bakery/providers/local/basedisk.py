"""Local base disks from a Debian bootstrap recipe, cached by the recipe's digest.

mmdebstrap makes a rootfs (no loop devices, no partition table), `mkfs.ext4 -d` turns it into a
filesystem image and qemu-img into qcow2. The disk's own kernel and initrd are kept beside it
for direct kernel boot. A base disk has no SSH host keys, no machine-id and no key or password
for anyone; a bake's key reaches it on the kernel command line (see templates/base-overlay).
A recipe without `mirror:` bootstraps from the Debian archive this machine's apt uses; the
mirror used is part of the recipe's digest either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bakery import runner
from bakery.config import aptsource
from bakery.config.load import template_dirs
from bakery.config.targets.local import LocalSource
from bakery.core.digest import digest_json, sha256_hex
from bakery.errors import BuildError, ConfigError
from bakery.progress import Reporter

RECIPE_SCHEMA = "bakery.base/v1"
BASE_PACKAGES = (
    "linux-image-cloud-amd64",
    "systemd-sysv",
    "udev",
    "openssh-server",
    "python3",
    "python3-apt",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "ca-certificates",
    "e2fsprogs",
)
BASE_FS_MIB = 2048
OVERLAY = "base-overlay"
UNITS = ("bakery-ssh-hostkeys.service", "bakery-build-access.service")


@dataclass(frozen=True)
class BaseDisk:
    directory: Path
    recipe_digest: str
    recipe: LocalSource  # as made: its mirror is the one mmdebstrap used

    @property
    def disk(self) -> Path:
        return self.directory / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def sha256(self) -> str:
        return (self.directory / "disk.sha256").read_text().strip()


def overlay_dir(project_root: Path) -> Path:
    for directory in template_dirs(project_root):
        if (directory / OVERLAY).is_dir():
            return directory / OVERLAY
    raise BuildError(f"templates/{OVERLAY} is missing", hint="restore it from the bakery repository")


def mirror_of(recipe: LocalSource) -> str:
    """The recipe's mirror, else the Debian archive this machine's apt uses (for the recipe's
    suite). Raises ConfigError when there is neither; `validate` reports that first."""
    if recipe.mirror is not None:
        return recipe.mirror
    found = aptsource.debian_mirror(aptsource.ETC_APT, recipe.suite)
    if found is None:
        raise ConfigError(
            f"the local recipe has no 'mirror:' and this machine's apt sources ({aptsource.ETC_APT}) "
            "name no Debian archive",
            hint="add mirror: URL under source.local in images.yaml",
        )
    return found


def with_mirror(recipe: LocalSource) -> LocalSource:
    """The recipe with the mirror it bootstraps from written in (see mirror_of)."""
    return recipe if recipe.mirror is not None else recipe.model_copy(update={"mirror": mirror_of(recipe)})


def recipe_digest(recipe: LocalSource, overlay: Path) -> str:
    """The cache key of the base disk: the recipe (its mirror resolved), the overlay, the base."""
    recipe = with_mirror(recipe)
    files = {
        str(p.relative_to(overlay)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode & 0o777)
        for p in sorted(overlay.rglob("*"))
        if p.is_file()
    }
    recipe_doc = {**recipe.model_dump(mode="json"), "packages": sorted(set(recipe.packages))}
    doc = {
        "schema": RECIPE_SCHEMA,
        "recipe": recipe_doc,
        "base_packages": sorted(BASE_PACKAGES),
        "overlay": files,
        "fs_mib": BASE_FS_MIB,
    }
    return "sha256:" + sha256_hex(digest_json(doc))


def mmdebstrap_argv(recipe: LocalSource, rootfs: Path, overlay: Path) -> list[str]:
    mirror = mirror_of(recipe)
    packages = ",".join(sorted({*BASE_PACKAGES, *recipe.packages}))
    return [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={packages}",
        f"--customize-hook=sync-in {overlay} /",
        f'--customize-hook=chroot "$1" systemctl enable {" ".join(UNITS)}',
        # Nothing that would make two machines alike or let anyone in.
        '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_* "$1"/etc/resolv.conf "$1"/var/lib/dbus/machine-id',
        '--customize-hook=: > "$1"/etc/machine-id',
        '--customize-hook=passwd --root "$1" --lock root',
        recipe.suite,
        str(rootfs),
        mirror,
    ]


def mkfs_argv(rootfs: Path, raw: Path, size_mib: int) -> list[str]:
    return ["mkfs.ext4", "-q", "-F", "-L", "root", "-E", "root_owner=0:0", "-d", str(rootfs), str(raw), f"{size_mib}M"]


def convert_argv(raw: Path, qcow2: Path) -> list[str]:
    return ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)]


def ensure_base(
    recipe: LocalSource, *, cache: Path, project_root: Path, reporter: Reporter, log_path: Path
) -> tuple[BaseDisk, bool]:
    """The cached base disk for `recipe`, made if missing. Returns (disk, reused)."""
    recipe = with_mirror(recipe)
    overlay = overlay_dir(project_root)
    digest = recipe_digest(recipe, overlay)
    final = cache / digest.removeprefix("sha256:")[:32]
    if (final / "disk.sha256").is_file():
        return BaseDisk(final, digest, recipe), True
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        rootfs = staging / "rootfs"
        reporter.phase("base", f"bootstrapping Debian {recipe.suite} from {recipe.mirror} (about a minute)")
        runner.run(
            mmdebstrap_argv(recipe, rootfs, overlay),
            what="mmdebstrap",
            log_path=log_path,
            on_line=lambda line: reporter.line("mmdebstrap", line),
        )
        kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
        if not kernels:
            raise BuildError("the bootstrapped system has no kernel in /boot", log_path=str(log_path))
        release = kernels[-1].name.removeprefix("vmlinuz-")
        shutil.copyfile(kernels[-1], staging / "vmlinuz")
        shutil.copyfile(rootfs / "boot" / f"initrd.img-{release}", staging / "initrd.img")
        raw = staging / "disk.raw"
        runner.run(mkfs_argv(rootfs, raw, BASE_FS_MIB), what="mkfs.ext4", log_path=log_path)
        shutil.rmtree(rootfs)
        runner.run(convert_argv(raw, staging / "disk.qcow2"), what="qemu-img convert", log_path=log_path)
        raw.unlink()
        (staging / "recipe.json").write_text(
            json.dumps({"digest": digest, "recipe": recipe.model_dump(mode="json"), "kernel": release}, indent=2)
        )
        (staging / "disk.sha256").write_text(file_sha256(staging / "disk.qcow2") + "\n")
        try:
            os.replace(staging, final)
        except OSError:
            if not (final / "disk.sha256").is_file():  # a concurrent bake may have won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BaseDisk(final, digest, recipe), False


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
