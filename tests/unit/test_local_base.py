"""Base disks: the mmdebstrap/mkfs/qemu-img command lines and the recipe digest (no tool runs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bakery.models import LocalSource
from bakery.providers import local_base
from bakery.providers.local_base import convert_argv, mkfs_argv, mmdebstrap_argv, recipe_digest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    path = tmp_path / "base-overlay"
    shutil.copytree(REPO / "templates" / "base-overlay", path)
    return path


def test_mmdebstrap_argv():
    recipe = LocalSource(suite="trixie", mirror="http://mirror.example/debian", packages=("vim", "curl"))
    assert mmdebstrap_argv(recipe, Path("/c/rootfs"), Path("/t/base-overlay")) == [
        "mmdebstrap",
        "--variant=minbase",
        "--include=ca-certificates,curl,e2fsprogs,ifupdown,iproute2,isc-dhcp-client,linux-image-cloud-amd64,"
        "openssh-server,python3,python3-apt,systemd-sysv,udev,vim",
        "--customize-hook=sync-in /t/base-overlay /",
        '--customize-hook=chroot "$1" systemctl enable bakery-ssh-hostkeys.service bakery-build-access.service',
        '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_* "$1"/etc/resolv.conf "$1"/var/lib/dbus/machine-id',
        '--customize-hook=: > "$1"/etc/machine-id',
        '--customize-hook=passwd --root "$1" --lock root',
        "trixie",
        "/c/rootfs",
        "http://mirror.example/debian",
    ]


def test_mmdebstrap_argv_defaults_and_duplicate_packages():
    argv = mmdebstrap_argv(LocalSource(packages=("python3", "nginx", "nginx")), Path("/r"), Path("/o"))
    include = next(a for a in argv if a.startswith("--include="))
    packages = include.removeprefix("--include=").split(",")
    assert packages == sorted(set(packages))
    assert packages.count("python3") == 1 and packages.count("nginx") == 1
    assert set(local_base.BASE_PACKAGES) <= set(packages)
    assert argv[-3:] == ["bookworm", "/r", "http://deb.debian.org/debian"]


def test_mkfs_argv():
    assert mkfs_argv(Path("/s/rootfs"), Path("/s/disk.raw"), 2048) == [
        "mkfs.ext4",
        "-q",
        "-F",
        "-L",
        "root",
        "-E",
        "root_owner=0:0",
        "-d",
        "/s/rootfs",
        "/s/disk.raw",
        "2048M",
    ]


def test_convert_argv():
    assert convert_argv(Path("/s/disk.raw"), Path("/s/disk.qcow2")) == [
        "qemu-img",
        "convert",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "/s/disk.raw",
        "/s/disk.qcow2",
    ]


# --- recipe digest: the cache key of a base disk -------------------------------------------------


def test_recipe_digest_is_stable(overlay):
    recipe = LocalSource(packages=("vim",))
    first = recipe_digest(recipe, overlay)
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    assert recipe_digest(LocalSource(packages=("vim",)), overlay) == first


def test_recipe_digest_does_not_depend_on_where_the_overlay_is(overlay, tmp_path):
    moved = tmp_path / "elsewhere" / "overlay"
    shutil.copytree(overlay, moved)
    assert recipe_digest(LocalSource(), moved) == recipe_digest(LocalSource(), overlay)


def test_recipe_digest_does_not_depend_on_mtimes(overlay):
    before = recipe_digest(LocalSource(), overlay)
    os.utime(overlay / "etc/hostname", (1_000_000, 1_000_000))
    assert recipe_digest(LocalSource(), overlay) == before


@pytest.mark.parametrize(
    "changed",
    [
        LocalSource(suite="trixie"),
        LocalSource(mirror="http://mirror.example/debian"),
        LocalSource(packages=("vim",)),
        LocalSource(packages=("vim", "curl")),
    ],
    ids=["suite", "mirror", "one-package", "two-packages"],
)
def test_recipe_digest_changes_with_the_recipe(overlay, changed):
    assert recipe_digest(changed, overlay) != recipe_digest(LocalSource(), overlay)


def test_recipe_digest_changes_with_overlay_content(overlay):
    before = recipe_digest(LocalSource(), overlay)
    (overlay / "etc/hostname").write_text("other\n")
    assert recipe_digest(LocalSource(), overlay) != before


def test_recipe_digest_changes_with_a_new_overlay_file(overlay):
    before = recipe_digest(LocalSource(), overlay)
    (overlay / "etc/motd").write_text("hello\n")
    assert recipe_digest(LocalSource(), overlay) != before


def test_recipe_digest_changes_with_overlay_file_mode(overlay):
    # sync-in copies modes: an executable bit is part of the disk
    before = recipe_digest(LocalSource(), overlay)
    (overlay / "etc/hostname").chmod(0o755)
    assert recipe_digest(LocalSource(), overlay) != before


def test_recipe_digest_ignores_package_order_and_repeats(overlay):
    # Same --include, same disk: the cache key should not differ.
    a = LocalSource(packages=("vim", "curl"))
    b = LocalSource(packages=("curl", "vim", "vim"))
    assert mmdebstrap_argv(a, Path("/r"), overlay) == mmdebstrap_argv(b, Path("/r"), overlay)
    assert recipe_digest(a, overlay) == recipe_digest(b, overlay)


def test_overlay_dir_prefers_the_project_templates(tmp_path):
    (tmp_path / "templates" / "base-overlay").mkdir(parents=True)
    assert local_base.overlay_dir(tmp_path) == tmp_path / "templates" / "base-overlay"
