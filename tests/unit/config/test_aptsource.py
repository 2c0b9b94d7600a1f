"""Finding the Debian archive in a machine's apt sources (fake /etc/apt trees, never the real one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.config.aptsource import AptSource, debian_mirror, read_sources

DEB822 = """\
Types: deb
URIs: http://127.0.0.1:9/debian
Suites: bookworm bookworm-updates
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://127.0.0.1:9/debian-security
Suites: bookworm-security
Components: main
"""


def tree(root: Path, *, sources_list: str | None = None, **parts: str) -> Path:
    """An /etc/apt under `root`: sources.list and sources.list.d/<name> files."""
    etc = root / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    if sources_list is not None:
        (etc / "sources.list").write_text(sources_list)
    for name, text in parts.items():
        (etc / "sources.list.d" / name.replace("_", ".")).write_text(text)
    return etc


def test_deb822_archive_not_security_nor_updates(tmp_path):
    assert debian_mirror(tree(tmp_path, debian_sources=DEB822), "bookworm") == "http://127.0.0.1:9/debian"


def test_one_line_format_with_options_and_comments(tmp_path):
    etc = tree(
        tmp_path,
        sources_list=(
            "# deb http://127.0.0.1:1/commented bookworm main\n"
            "deb-src http://127.0.0.1:2/source bookworm main\n"
            "deb [arch=amd64 signed-by=/etc/apt/keyrings/d.gpg] http://127.0.0.1:9/security bookworm-security main\n"
            "deb [ signed-by=/etc/apt/keyrings/d.gpg ] https://127.0.0.1:9/debian bookworm main contrib # ok\n"
            "deb http://127.0.0.1:9/debian bookworm-updates main\n"
        ),
    )
    assert debian_mirror(etc, "bookworm") == "https://127.0.0.1:9/debian"


def test_the_recipes_suite_is_preferred(tmp_path):
    etc = tree(
        tmp_path,
        sources_list="deb http://127.0.0.1:9/vendor stable main\n",
        debian_list="deb file:///srv/mirror trixie main\n",
    )
    assert debian_mirror(etc, "trixie") == "file:///srv/mirror"
    assert debian_mirror(etc, "bookworm") == "http://127.0.0.1:9/vendor"  # no exact match: the first archive


def test_a_source_with_main_is_preferred(tmp_path):
    etc = tree(
        tmp_path, sources_list="deb http://127.0.0.1:9/extra bookworm contrib\ndeb file:/srv/mirror bookworm main\n"
    )
    assert debian_mirror(etc, "bookworm") == "file:///srv/mirror"  # apt's file:/path, as mirror: takes it


def test_sources_are_read_in_apts_order(tmp_path):
    etc = tree(
        tmp_path,
        sources_list="deb http://127.0.0.1:9/first bookworm main\n",
        b_list="deb http://127.0.0.1:9/third bookworm main\n",
        a_sources="Types: deb\nURIs: http://127.0.0.1:9/second\nSuites: bookworm\nComponents: main\n",
        z_txt="deb http://127.0.0.1:9/ignored bookworm main\n",
    )
    assert [s.uri for s in read_sources(etc)] == [
        "http://127.0.0.1:9/first",
        "http://127.0.0.1:9/second",
        "http://127.0.0.1:9/third",
    ]


def test_deb822_details(tmp_path):
    text = (
        "# a comment\n"
        "Types: deb deb-src\n"
        "URIs: http://127.0.0.1:9/a\n"
        "  http://127.0.0.1:9/b\n"  # a continuation line
        "suites: bookworm\n"  # field names are case-insensitive
        "Components: main\n"
        "\n"
        "Types: deb\nEnabled: no\nURIs: http://127.0.0.1:9/disabled\nSuites: bookworm\nComponents: main\n"
        "\n"
        "Types: deb-src\nURIs: http://127.0.0.1:9/src\nSuites: bookworm\n"
    )
    assert read_sources(tree(tmp_path, x_sources=text)) == [
        AptSource("http://127.0.0.1:9/a", ("bookworm",), ("main",)),
        AptSource("http://127.0.0.1:9/b", ("bookworm",), ("main",)),
    ]


@pytest.mark.parametrize(
    "sources_list",
    [
        None,
        "",
        "# deb http://127.0.0.1:9/debian bookworm main\n",
        "deb http://127.0.0.1:9/debian-security bookworm-security main\n",
        "deb http://127.0.0.1:9/debian bookworm/updates main\n",
        "deb http://127.0.0.1:9/flat ./\n",
        "deb cdrom:[Debian 12]/ bookworm main\n",
        "deb mirror+file:/etc/apt/mirrors.txt bookworm main\n",
        "deb-src http://127.0.0.1:9/debian bookworm main\n",
    ],
    ids=["no-file", "empty", "commented", "security", "old-security", "flat", "cdrom", "mirror-list", "deb-src"],
)
def test_no_archive_found(tmp_path, sources_list):
    assert debian_mirror(tree(tmp_path, sources_list=sources_list), "bookworm") is None


def test_no_apt_at_all(tmp_path):
    assert debian_mirror(tmp_path / "nowhere", "bookworm") is None


def _release(lists: Path, stem: str, suite: str, origin: str) -> None:
    lists.mkdir(exist_ok=True)
    (lists / f"{stem}_dists_{suite}_InRelease").write_text(f"Origin: {origin}\nLabel: {origin}\nSuite: {suite}\n")


def test_a_vendor_repository_listed_first_is_not_taken_for_debian(tmp_path):
    """A vendor's `bookworm main` before Debian's: apt's own Release files tell them apart."""
    etc = tree(
        tmp_path,
        sources_list=None,
        **{
            "archive_uri-vendor.list": "deb http://vendor.example/apt bookworm main\n",
            "debian.sources": "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n",
        },
    )
    lists = tmp_path / "lists"
    _release(lists, "vendor.example_apt", "bookworm", "Vendor Inc.")
    _release(lists, "mirror.example_debian", "bookworm", "Debian")
    assert debian_mirror(etc, "bookworm", lists) == "http://mirror.example/debian"
    # Without apt's lists (never updated), the order and components decide, as before.
    assert debian_mirror(etc, "bookworm", tmp_path / "no-lists") == "http://vendor.example/apt"
    # A source that is only a vendor's is no Debian archive at all.
    only_vendor = tree(tmp_path / "v", sources_list="deb http://vendor.example/apt bookworm main\n")
    assert debian_mirror(only_vendor, "bookworm", lists) is None
