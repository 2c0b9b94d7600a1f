"""A local image's package database, read from its finished disk without booting or mounting it.

A local disk is one ext4 filesystem without a partition table (basedisk.py: mkfs.ext4 -d, then
qemu-img into qcow2), so `qemu-img convert -O raw` gives a filesystem image that e2fsprogs'
debugfs reads as it is: `dump` copies one file out. debugfs follows no symlink at the end of a
path, and Debian's /etc/os-release is one (to ../usr/lib/os-release): as os-release(5) says, a
reader falls back to /usr/lib/os-release when /etc/os-release gives nothing.
"""

from __future__ import annotations

from pathlib import Path

from bakery import runner
from bakery.errors import BuildError
from bakery.providers.base import PackageDb

STATUS = "/var/lib/dpkg/status"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")


def raw_argv(disk: Path, raw: Path) -> list[str]:
    return ["qemu-img", "convert", "-O", "raw", str(disk), str(raw)]


def dump_argv(raw: Path, inside: str, out: Path) -> list[str]:
    """debugfs copying the file `inside` the filesystem to `out` (debugfs reads its own quoting)."""
    if '"' in str(out):
        raise BuildError(f"cannot read the image's packages into {out}: the path holds a double quote")
    return ["debugfs", "-R", f'dump "{inside}" "{out}"', str(raw)]


def read_package_db(disk: Path, scratch: Path, *, log_path: Path | None = None) -> PackageDb:
    """The dpkg status file and os-release of the qcow2 `disk`, copied out through a raw copy in
    `scratch` (removed afterwards). Raises BuildError when the disk holds no dpkg status file."""
    scratch.mkdir(parents=True, exist_ok=True)
    raw = scratch / "disk.raw"
    try:
        runner.run(raw_argv(disk, raw), what="qemu-img convert (for the SBOM)", log_path=log_path)
        status = _dump(raw, STATUS, scratch / "status", log_path)
        if status is None:
            raise BuildError(f"the image's disk has no {STATUS}: no package list for its SBOM")
        os_release = b""
        for path in OS_RELEASE:
            os_release = _dump(raw, path, scratch / "os-release", log_path) or b""
            if os_release.strip():
                break
        return PackageDb(status=status, os_release=os_release, read_from=f"{disk} (debugfs)")
    finally:
        raw.unlink(missing_ok=True)


def _dump(raw: Path, inside: str, out: Path, log_path: Path | None) -> bytes | None:
    """The file's bytes, or None when it is not there (debugfs says so and still exits 0)."""
    out.unlink(missing_ok=True)
    runner.run(dump_argv(raw, inside, out), what=f"debugfs dump {inside}", log_path=log_path)
    if not out.is_file():
        return None
    data = out.read_bytes()
    out.unlink()
    return data
