"""Base disks: the mmdebstrap/mkfs/qemu-img command lines and the recipe digest (no tool runs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bakery.config import aptsource
from bakery.config.models import LocalSource
from bakery.errors import ConfigError
from bakery.providers.local import basedisk as local_base
from bakery.providers.local.basedisk import convert_argv, mkfs_argv, mmdebstrap_argv, recipe_digest

REPO = Path(__file__).resolve().parents[4]
MACHINE_MIRROR = "file:///srv/mirror"


@pytest.fixture(autouse=True)
def machine_apt(tmp_path, monkeypatch) -> Path:
    """The build machine's apt uses a local Debian archive (tests never read the real /etc/apt)."""
    etc = tmp_path / "etc-apt"
    etc.mkdir()
    (etc / "sources.list").write_text(f"deb {MACHINE_MIRROR} bookworm main\n")
    monkeypatch.setattr(aptsource, "ETC_APT", etc)
    return etc


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    path = tmp_path / "base-overlay"
    shutil.copytree(REPO / "templates" / "base-overlay", path)
    return path


def test_mmdebstrap_argv():
    recipe = LocalSource(suite="trixie", mirror="http://127.0.0.1:9/debian", packages=("vim", "curl"))
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
        "http://127.0.0.1:9/debian",
    ]


def test_mmdebstrap_argv_defaults_and_duplicate_packages():
    argv = mmdebstrap_argv(LocalSource(packages=("python3", "nginx", "nginx")), Path("/r"), Path("/o"))
    include = next(a for a in argv if a.startswith("--include="))
    packages = include.removeprefix("--include=").split(",")
    assert packages == sorted(set(packages))
    assert packages.count("python3") == 1 and packages.count("nginx") == 1
    assert set(local_base.BASE_PACKAGES) <= set(packages)
    assert argv[-3:] == ["bookworm", "/r", MACHINE_MIRROR]  # no mirror: the one this machine's apt uses


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
        LocalSource(mirror="http://127.0.0.1:9/debian"),
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


# --- the mirror: the recipe's, else the build machine's ------------------------------------------


def test_without_mirror_the_machines_apt_source_is_used(machine_apt):
    (machine_apt / "sources.list").write_text(
        "deb http://127.0.0.1:9/debian-security trixie-security main\ndeb http://127.0.0.1:9/debian trixie main\n"
    )
    recipe = LocalSource(suite="trixie")
    assert local_base.mirror_of(recipe) == "http://127.0.0.1:9/debian"
    assert mmdebstrap_argv(recipe, Path("/r"), Path("/o"))[-1] == "http://127.0.0.1:9/debian"
    assert local_base.with_mirror(recipe) == LocalSource(suite="trixie", mirror="http://127.0.0.1:9/debian")


def test_the_recipes_mirror_wins_over_the_machines():
    recipe = LocalSource(mirror="http://127.0.0.1:9/debian")
    assert local_base.mirror_of(recipe) == "http://127.0.0.1:9/debian"
    assert local_base.with_mirror(recipe) is recipe


def test_the_resolved_mirror_is_part_of_the_digest(overlay, machine_apt):
    # Same base whether the mirror is written or found; another machine mirror, another base.
    implicit = recipe_digest(LocalSource(), overlay)
    assert implicit == recipe_digest(LocalSource(mirror=MACHINE_MIRROR), overlay)
    (machine_apt / "sources.list").write_text("deb http://127.0.0.1:9/debian bookworm main\n")
    assert recipe_digest(LocalSource(), overlay) != implicit


def test_no_mirror_anywhere_is_a_config_error(overlay, machine_apt):
    (machine_apt / "sources.list").unlink()
    with pytest.raises(ConfigError, match="no 'mirror:'") as exc:
        recipe_digest(LocalSource(), overlay)
    assert exc.value.exit_code == 2
    assert exc.value.hint is not None and "mirror: URL" in exc.value.hint
    with pytest.raises(ConfigError):
        mmdebstrap_argv(LocalSource(), Path("/r"), overlay)
