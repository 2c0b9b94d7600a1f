"""A local image's package database read from its finished disk, never booted nor mounted: a
small disk made as the local store makes its disks (basedisk.py's `mkfs.ext4 -d` of a root
directory, then qemu-img into qcow2: one ext4 filesystem, no partition table), read back
through qemu-img and debugfs (bakery/providers/local/packages.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from bakery.errors import BuildError
from bakery.progress import Silent
from bakery.providers.local.basedisk import convert_argv, mkfs_argv
from bakery.providers.local.packages import read_package_db
from bakery.providers.local.provider import LocalProvider
from bakery.sbom.dpkg import parse_os_release, parse_status
from bakery.workspace import Workspace
from tests.fakes.provider import DPKG, DPKG_QUERY


def make_disk(rootfs: Path, qcow2: Path) -> Path:
    raw = qcow2.with_suffix(".raw")
    qcow2.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(mkfs_argv(rootfs, raw, 16), check=True)
    subprocess.run(convert_argv(raw, qcow2), check=True)
    raw.unlink()
    return qcow2


def debian_root(root: Path) -> Path:
    """A root directory with Debian's package database and its os-release, linked as Debian
    links it (/etc/os-release -> ../usr/lib/os-release)."""
    (root / "var/lib/dpkg").mkdir(parents=True)
    shutil.copy(DPKG / "status", root / "var/lib/dpkg/status")
    (root / "usr/lib").mkdir(parents=True)
    shutil.copy(DPKG / "os-release", root / "usr/lib/os-release")
    (root / "etc").mkdir()
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    return root


def test_the_package_database_of_a_finished_disk_is_read_without_booting_it(tmp_path: Path) -> None:
    workdir = tmp_path / "bake"
    make_disk(debian_root(tmp_path / "rootfs"), workdir / "output" / "disk.qcow2")
    request = SimpleNamespace(workdir=workdir, log_path=tmp_path / "bake.log")
    db = LocalProvider(Workspace(tmp_path / ".bakery"), Silent()).package_db(request)  # type: ignore[arg-type]
    assert db.missing is None
    assert db.status == (DPKG / "status").read_bytes()
    assert db.os_release == (DPKG / "os-release").read_bytes()  # through the symlink's target
    assert db.read_from == f"{workdir / 'output' / 'disk.qcow2'} (debugfs)"
    assert [f"{p.name} {p.version}" for p in parse_status(db.status)] == DPKG_QUERY
    assert parse_os_release(db.os_release).pretty_name == "Debian GNU/Linux 12 (bookworm)"
    assert sorted(p.name for p in (workdir / "sbom").iterdir()) == []  # the raw copy is gone
    assert '$ debugfs -R \'dump "/var/lib/dpkg/status"' in (tmp_path / "bake.log").read_text()


def test_a_plain_etc_os_release_is_read_as_it_is(tmp_path: Path) -> None:
    root = debian_root(tmp_path / "rootfs")
    (root / "etc/os-release").unlink()
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="13"\n')
    db = read_package_db(make_disk(root, tmp_path / "disk.qcow2"), tmp_path / "scratch")
    assert db.os_release == b'ID=debian\nVERSION_ID="13"\n'


def test_a_disk_without_a_package_database_fails_the_read_by_name(tmp_path: Path) -> None:
    root = debian_root(tmp_path / "rootfs")
    (root / "var/lib/dpkg/status").unlink()
    with pytest.raises(BuildError) as failed:
        read_package_db(make_disk(root, tmp_path / "disk.qcow2"), tmp_path / "scratch")
    assert failed.value.message == "the image's disk has no /var/lib/dpkg/status: no package list for its SBOM"
    assert not (tmp_path / "scratch" / "disk.raw").exists()
