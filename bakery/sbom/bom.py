"""An image's packages as a CycloneDX 1.6 JSON document (cyclonedx-python-lib), and back.

Each package is a `library` component whose purl follows purl-spec's deb type:
`pkg:deb/<os id>/<name>@<version>?arch=<arch>&distro=<os id>-<version id>&upstream=<source>`
(`upstream=<source>@<source version>` when the source's version differs from the binary's),
with properties `bakery:deb:source`, `bakery:deb:source-version` and `bakery:deb:status` (dpkg's
state: `installed`, `config-files`, ...). The image itself is the BOM's metadata component
(type operating-system, its name and version), with its operating system as one more component.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bakery.sbom.dpkg import OsRelease, Package, PackageDbError

SPEC_VERSION = "1.6"
PROPERTY = "bakery:deb:"
MAX_COMPONENTS = 100_000


def purl_of(package: Package, os: OsRelease) -> str:
    from packageurl import PackageURL

    qualifiers = {"arch": package.arch} if package.arch else {}
    if os.version_id:
        qualifiers["distro"] = f"{os.id}-{os.version_id}"
    upstream = package.source
    if package.source_version and package.source_version != package.version:
        upstream += f"@{package.source_version}"
    qualifiers["upstream"] = upstream
    return str(
        PackageURL(
            type="deb", namespace=os.id, name=package.name, version=package.version or None, qualifiers=qualifiers
        )
    )


def build(
    packages: Iterable[Package], os: OsRelease, *, image: str, version: str, target: str, timestamp: datetime
) -> dict[str, Any]:
    """The CycloneDX 1.6 document (as JSON values) of an image with these packages (pure but for
    the library's own checks; its serial number is derived from the image and its packages)."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    listed = sorted(packages)
    seed = json.dumps([image, version, target, [list(vars(p).values()) for p in listed]])
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, "bakery-sbom:" + seed))
    bom.metadata.timestamp = timestamp
    root = Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=image,
        version=version,
        bom_ref=f"image:{target}/{image}@{version}",
        properties=[Property(name="bakery:target", value=target)],
    )
    bom.metadata.component = root
    system = Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=os.id,
        version=os.version_id or None,
        description=os.pretty_name,
        bom_ref=f"os:{os.id}@{os.version_id}",
    )
    bom.components.add(system)
    components = [system]
    for package in listed:
        purl = purl_of(package, os)
        component = Component(
            type=ComponentType.LIBRARY,
            name=package.name,
            version=package.version,
            purl=PackageURL.from_string(purl),
            bom_ref=purl,
            properties=[
                Property(name=PROPERTY + "source", value=package.source),
                Property(name=PROPERTY + "source-version", value=package.source_version),
                Property(name=PROPERTY + "status", value=package.status),
            ],
        )
        bom.components.add(component)
        components.append(component)
    bom.register_dependency(root, components)
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return document


def packages_of(document: Mapping[str, Any]) -> tuple[tuple[Package, ...], str]:
    """(the packages, the operating system's description) that a CycloneDX document read back
    from a registry lists: untrusted, so every field is checked. Raises PackageDbError."""
    from packageurl import PackageURL

    if document.get("bomFormat") != "CycloneDX" or document.get("specVersion") != SPEC_VERSION:
        raise PackageDbError(f"not a CycloneDX {SPEC_VERSION} document")
    components = document.get("components", [])
    if not isinstance(components, list) or len(components) > MAX_COMPONENTS:
        raise PackageDbError("its components are not a list (or too many)")
    packages, system = [], ""
    for component in components:
        if not isinstance(component, dict):
            raise PackageDbError("a component is not an object")
        if component.get("type") == "operating-system":
            system = str(component.get("description") or component.get("name") or "")
            continue
        name, version, purl = component.get("name"), component.get("version", ""), component.get("purl")
        if not isinstance(name, str) or not isinstance(version, str) or not isinstance(purl, str):
            raise PackageDbError("a component has no name, version or purl as text")
        try:
            parsed = PackageURL.from_string(purl)
        except ValueError as exc:
            raise PackageDbError(f"component {name}: purl {purl!r} does not parse ({exc})") from None
        if parsed.type != "deb" or parsed.name != name:
            raise PackageDbError(f"component {name}: purl {purl!r} is not the deb package {name}")
        qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
        props = _properties(component.get("properties", []), name)
        packages.append(
            Package(
                name=name,
                arch=str(qualifiers.get("arch", "")),
                version=version,
                source=props.get("source", name),
                source_version=props.get("source-version", version),
                status=props.get("status", "installed"),
            )
        )
    return tuple(sorted(packages)), system


def _properties(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, list):
        raise PackageDbError(f"component {name}: properties are not a list")
    found: dict[str, str] = {}
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise PackageDbError(f"component {name}: a property is not a name and a value")
        if item["name"].startswith(PROPERTY):
            found[item["name"].removeprefix(PROPERTY)] = item["value"]
    return found
