"""What images exist: records, versions, and the one catalog view across providers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from bakery.errors import UsageError


@dataclass(frozen=True)
class ImageRecord:
    """One baked image version on one target, wherever its copies live."""

    name: str
    version: str
    target: str
    kind: str
    inputs_digest: str
    created: str
    base: str
    parent: str | None = None
    locations: tuple[str, ...] = ()
    subject_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # What the image itself says of a revocation, as read from the cloud (a bakery:revoked tag, an
    # AMI or GCP deprecation, the local catalog's mark): checked against the registry, never trusted
    # to lift one.
    revoked_marks: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["locations"] = list(self.locations)
        return out


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def next_version(declared: str, existing: Iterable[str]) -> str:
    """images.yaml says MAJOR.MINOR; each bake takes the next PATCH after every one seen."""
    patches = [int(v.rsplit(".", 1)[1]) for v in existing if re.fullmatch(re.escape(declared) + r"\.\d+", v)]
    return f"{declared}.{max(patches) + 1 if patches else 0}"


def newest(records: Iterable[ImageRecord]) -> ImageRecord | None:
    ordered = sorted(records, key=lambda r: version_key(r.version))
    return ordered[-1] if ordered else None


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'web' -> ('web', None); 'web@1.0.2' -> ('web', '1.0.2')."""
    name, _, version = ref.partition("@")
    if version and not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise UsageError(f"'{ref}': a version is MAJOR.MINOR.PATCH, as in web@1.0.2")
    return name, version or None


def select(records: Iterable[ImageRecord], *, name: str, version: str | None, target: str = "") -> ImageRecord:
    """The record of `name` at `version` (newest when None) among `records` (of `target`, named in
    the error when given); UsageError naming what exists."""
    mine = [r for r in records if r.name == name]
    if version is not None:
        mine = [r for r in mine if r.version == version]
    chosen = newest(mine)
    if chosen is None:
        what = f"{name}@{version}" if version else name
        on = f" on {target}" if target else ""
        raise UsageError(f"no baked image {what}{on} in the catalog", hint="`bakery images` lists what exists")
    return chosen
