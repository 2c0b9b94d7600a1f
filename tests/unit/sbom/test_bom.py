"""CycloneDX documents of an image's packages (bakery/sbom/bom.py): valid CycloneDX 1.6 by the
library's own schema check, purls as purl-spec's deb type writes them, and read back unchanged."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from bakery.sbom.bom import build, packages_of
from bakery.sbom.dpkg import PackageDbError, parse_os_release, parse_status
from tests.fakes.provider import DPKG

WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def document() -> dict[str, Any]:
    packages = parse_status((DPKG / "status").read_bytes())
    system = parse_os_release((DPKG / "os-release").read_bytes())
    return build(packages, system, image="web", version="1.0.3", target="aws", timestamp=WHEN)


def test_it_is_valid_cyclonedx_1_6_naming_the_image_and_its_system() -> None:
    bom = document()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is None
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    assert bom["metadata"]["component"]["name"] == "web" and bom["metadata"]["component"]["version"] == "1.0.3"
    assert bom["metadata"]["timestamp"].startswith("2026-03-01T12:00:00")
    assert document()["serialNumber"] == bom["serialNumber"]  # the same image and packages: the same document
    systems = [c for c in bom["components"] if c["type"] == "operating-system"]
    assert [(s["name"], s["version"], s["description"]) for s in systems] == [
        ("debian", "12", "Debian GNU/Linux 12 (bookworm)")
    ]


def test_each_package_has_a_deb_purl_with_arch_distro_and_its_source() -> None:
    purls = {c["purl"] for c in document()["components"] if c["type"] == "library"}
    assert "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12&upstream=glibc" in purls
    assert "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=i386&distro=debian-12&upstream=glibc" in purls
    assert "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12&upstream=base-files" in purls
    assert "pkg:deb/debian/vim-tiny@2:9.0.1378-2?arch=amd64&distro=debian-12&upstream=vim" in purls
    assert len(purls) == 8
    libssl = next(c for c in document()["components"] if c["name"] == "libssl3")
    assert {p["name"]: p["value"] for p in libssl["properties"]} == {
        "bakery:deb:source": "openssl",
        "bakery:deb:source-version": "3.0.15-1~deb12u1",
        "bakery:deb:status": "installed",
    }


def test_it_reads_back_the_packages_it_was_made_of() -> None:
    packages, system = packages_of(document())
    assert packages == parse_status((DPKG / "status").read_bytes())
    assert system == "Debian GNU/Linux 12 (bookworm)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(specVersion="1.4"), "not a CycloneDX 1.6 document"),
        (lambda d: d.update(components={"a": 1}), "its components are not a list"),
        (lambda d: d["components"][1].update(purl="pkg:npm/left-pad@1"), "is not the deb package"),
        (lambda d: d["components"][1].update(purl="not a purl"), "does not parse"),
        (lambda d: d["components"][1].update(version=3), "no name, version or purl as text"),
        (lambda d: d["components"][1].update(properties=[{"name": "bakery:deb:source"}]), "not a name and a value"),
    ],
)
def test_a_document_read_back_is_checked_field_by_field(change: Any, message: str) -> None:
    bom = copy.deepcopy(document())
    change(bom)
    with pytest.raises(PackageDbError, match=message):
        packages_of(bom)
