"""What changed between two images (pure): packages added, removed, up- and downgraded (Debian
version order, python-debian), and the inputs of their bakes that differ, read from both signed
provenance statements: files (playbooks, roles, templates), the images.yaml entry (variables,
playbooks, settings: one line per changed key), the base and parent, and the tool versions.

What every bake changes (its version, invocation, times, inputs digest) is left out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from debian.debian_support import Version

from bakery.sbom.dpkg import Package

Direction = Literal["upgraded", "downgraded", "changed"]
InputKind = Literal["file", "variable", "base", "tool", "git", "parent"]


@dataclass(frozen=True)
class PackageChange:
    name: str
    arch: str
    before: str
    after: str
    change: Direction  # "changed": the same version string with another source (or state)


@dataclass(frozen=True)
class InputChange:
    kind: InputKind
    name: str  # "playbooks/web.yml", "entry.vars.page_title", "packer", "base"
    before: Any  # None: it was not there
    after: Any  # None: it is not there now


@dataclass(frozen=True)
class PackageDiff:
    added: tuple[Package, ...]
    removed: tuple[Package, ...]
    changed: tuple[PackageChange, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def packages(before: Iterable[Package], after: Iterable[Package]) -> PackageDiff:
    """Packages by (name, arch): added, removed, and those whose version (or source) differs."""
    old = {(p.name, p.arch): p for p in before}
    new = {(p.name, p.arch): p for p in after}
    changed = []
    for key in sorted(old.keys() & new.keys()):
        a, b = old[key], new[key]
        if a == b:
            continue
        order = _compare(a.version, b.version)
        direction: Direction = "upgraded" if order < 0 else "downgraded" if order > 0 else "changed"
        changed.append(PackageChange(a.name, a.arch, a.version, b.version, direction))
    return PackageDiff(
        added=tuple(new[k] for k in sorted(new.keys() - old.keys())),
        removed=tuple(old[k] for k in sorted(old.keys() - new.keys())),
        changed=tuple(changed),
    )


def _compare(a: str, b: str) -> int:
    """Debian's version order (dpkg --compare-versions); an empty version sorts first."""
    if not a or not b:
        return (a > b) - (a < b)
    va, vb = Version(a), Version(b)
    return (va > vb) - (va < vb)


def inputs(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[InputChange, ...]:
    """The inputs that differ between two (verified) provenance statements."""
    a, b = _inputs(before), _inputs(after)
    return tuple(
        InputChange(kind, name, a.get((kind, name)), b.get((kind, name)))
        for kind, name in sorted(a.keys() | b.keys())
        if a.get((kind, name)) != b.get((kind, name))
    )


def _inputs(statement: Mapping[str, Any]) -> dict[tuple[InputKind, str], Any]:
    predicate = _get(statement, "predicate")
    definition = _get(predicate, "buildDefinition")
    internal = _get(definition, "internalParameters")
    found: dict[tuple[InputKind, str], Any] = {("base", "base"): internal.get("base")}
    if internal.get("parent"):
        found[("parent", "parent")] = internal.get("parent")
    for tool, version in _get(_get(_get(predicate, "runDetails"), "builder"), "version").items():
        found[("tool", str(tool))] = version
    deps = definition.get("resolvedDependencies")
    for dep in deps if isinstance(deps, list) else []:
        if not isinstance(dep, dict) or not isinstance(dep.get("name"), str):
            continue
        name, digest, notes = dep["name"], dep.get("digest") or {}, dep.get("annotations") or {}
        if name == "git":
            found[("git", "commit")] = digest.get("gitCommit") if isinstance(digest, dict) else None
        elif "#images." in name and isinstance(notes, dict):
            entry = notes.get("entry") or {}
            for path, value in _flatten(entry.get("entry") if isinstance(entry, dict) else {}, "entry"):
                found[("variable", path)] = value
        elif name.startswith(("base-disk:", "parent:")):
            found[("base", name.split(":", 1)[0])] = f"{name} {_digest_text(digest)}"
        else:
            found[("file", name)] = _digest_text(digest)
    return found


def _flatten(value: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _flatten(value[key], f"{path}.{key}")
    else:
        yield path, value


def _digest_text(digest: Any) -> str:
    if not isinstance(digest, dict):
        return str(digest)
    return ", ".join(f"{k}:{v}" for k, v in sorted(digest.items()))


def _get(value: Any, key: str) -> dict[str, Any]:
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else {}
