"""The dpkg status file read as `dpkg-query -W` lists it (bakery/sbom/dpkg.py)."""

from __future__ import annotations

import pytest

from bakery.sbom.dpkg import OsRelease, Package, PackageDbError, parse_os_release, parse_status
from tests.fakes.provider import DPKG, DPKG_QUERY


def test_the_fixture_lists_what_dpkg_query_W_lists_and_no_purged_package() -> None:
    """`dpkg-query -W -f '${Package} ${Version}\\n'` on a system with this status file prints
    these lines (sorted by name, then arch): nano, purged (`not-installed`), is the one left out;
    vim-tiny (`config-files`) and tzdata (`deinstall ok installed`) stay, with their versions."""
    packages = parse_status((DPKG / "status").read_bytes())
    assert [f"{p.name} {p.version}" for p in packages] == DPKG_QUERY
    by_key = {(p.name, p.arch): p for p in packages}
    assert {arch for name, arch in by_key if name == "libc6"} == {"amd64", "i386"}  # Multi-Arch: same, twice
    assert by_key[("libc6", "amd64")] == Package(
        "libc6", "amd64", "2.36-9+deb12u7", "glibc", "2.36-9+deb12u7", "installed"
    )
    assert by_key[("libssl3", "amd64")].source == "openssl"  # Source: openssl (3.0.15-1~deb12u1)
    assert by_key[("base-files", "amd64")].source == "base-files"  # no Source: named like the binary
    assert by_key[("vim-tiny", "amd64")].status == "config-files"
    assert by_key[("nginx-common", "all")].arch == "all"


def test_a_source_with_its_own_version_and_an_entry_without_version() -> None:
    status = (
        b"Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\n"
        b"Source: foo (1.2-3)\nVersion: 1.2-3+b1\n\n"
        b"Package: half\nStatus: install reinstreq half-installed\nArchitecture: amd64\n"
    )
    assert parse_status(status) == (
        Package("half", "amd64", "", "half", "", "half-installed"),  # `${Version}` prints nothing
        Package("libfoo1", "amd64", "1.2-3+b1", "foo", "1.2-3", "installed"),
    )


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (b"Package: a\nVersion: 1\n", "entry 1 of the dpkg status file has no Package or no three-word Status"),
        (
            b"Package: a\nStatus: install ok installed\nSource: (x\n",
            "package a: Source '(x' is not 'NAME' or 'NAME (VERSION)'",
        ),
        (b"Package: \xff\nStatus: install ok installed\n", "the dpkg status file is not UTF-8"),
        (
            b"Package: a\nStatus: install ok installed\nVersion: 1\nPackage: b\nStatus: install ok installed\n",
            "line 4 of the dpkg status file repeats the field 'Package' of line 1 in one entry (dpkg refuses this; "
            "a blank line missing between two entries?)",
        ),
        (
            b"Package: a\nStatus: install ok installed\n\nPackage: b\nversion: 1\n Description: x\nVersion: 2\n",
            "line 7 of the dpkg status file repeats the field 'Version' of line 5 in one entry",
        ),
    ],
)
def test_a_status_file_that_is_not_one_is_refused_by_name(status: bytes, message: str) -> None:
    with pytest.raises(PackageDbError) as refused:
        parse_status(status)
    assert refused.value.message.startswith(message)


def test_os_release_values_are_unquoted() -> None:
    assert parse_os_release((DPKG / "os-release").read_bytes()) == OsRelease(
        "debian", "12", "Debian GNU/Linux 12 (bookworm)", "bookworm"
    )
    with pytest.raises(PackageDbError, match="names no ID"):
        parse_os_release(b'NAME="x"\n')
