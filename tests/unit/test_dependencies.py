"""pyproject.toml declares exactly the third-party distributions bakery/ imports: an import of an
undeclared one works here (it came with another) and breaks a user's install the day that other
drops it; a declared one nothing imports is weight and attack surface for every user."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "bakery"

# Declared for what they install rather than for an import: bakery runs them as programs.
TOOLS = {
    "ansible-core": "ansible-playbook runs beside bakery (Packer's ansible provisioner); tools.py reads its version",
}

# Drift found when this test was written, for the lead to settle in pyproject.toml (add the
# imported ones, drop the unused ones); each mark turns into a failure once it is settled.
KNOWN_DRIFT: dict[str, str] = {}


def normalise(name: str) -> str:
    """PEP 503: 'PyYAML' and 'pyyaml', 'python_hcl2' and 'python-hcl2' are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(source: str) -> set[str]:
    """Absolute module paths a source imports (`from a.b import c` gives a.b and a.b.c: c may be
    a module of its own, as google.cloud.compute_v1 is)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


@cache
def _files_of(distribution: str) -> frozenset[str]:
    files = metadata.distribution(distribution).files or []
    return frozenset(str(f).replace("\\", "/") for f in files)


def distribution_of(module: str) -> str | None:
    """The installed distribution that provides `module`; None for the standard library and bakery.

    A namespace package (google.*) is shared by several distributions: the one whose files hold
    the deepest part of the module path is the one that provides it."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "bakery":
        return None
    candidates = metadata.packages_distributions().get(top, [])
    if len(set(candidates)) == 1:
        return normalise(candidates[0])
    parts = module.split(".")
    for depth in range(len(parts), 1, -1):
        path = "/".join(parts[:depth])
        owners = {
            normalise(d) for d in candidates if any(f.startswith(path + "/") or f == path + ".py" for f in _files_of(d))
        }
        if len(owners) == 1:
            return owners.pop()
    raise AssertionError(f"cannot tell which distribution provides {module} (candidates: {candidates or 'none'})")


def imported_distributions() -> dict[str, set[str]]:
    """Third-party distribution -> the bakery/ files that import it."""
    out: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for module in imported_modules(path.read_text(encoding="utf-8")):
            try:
                distribution = distribution_of(module)
            except AssertionError:
                if "." in module:  # `from a import name`: the name is not a module; a is judged alone
                    continue
                raise
            if distribution is not None:
                out.setdefault(distribution, set()).add(str(path.relative_to(REPO)))
    return out


def declared_distributions() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = set()
    for requirement in project["dependencies"]:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert match, requirement
        names.add(normalise(match.group(1)))
    return names


IMPORTED = imported_distributions()
DECLARED = declared_distributions()


def _mark(name: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=KNOWN_DRIFT[name])] if name in KNOWN_DRIFT else []


@pytest.mark.parametrize(
    "distribution", [pytest.param(d, marks=_mark(d)) for d in sorted(set(IMPORTED) | DECLARED | set(KNOWN_DRIFT))]
)
def test_declared_exactly_when_imported(distribution: str) -> None:
    imported = distribution in IMPORTED or distribution in TOOLS
    declared = distribution in DECLARED
    where = ", ".join(sorted(IMPORTED.get(distribution, ()))) or "nowhere"
    assert imported == declared, (
        f"{distribution} is imported by {where} but not declared in pyproject.toml's dependencies"
        if imported
        else f"{distribution} is declared in pyproject.toml's dependencies but imported nowhere in bakery/"
    )


def test_cryptography_is_declared_for_the_local_build_key() -> None:
    assert "bakery/providers/local/provider.py" in IMPORTED["cryptography"]
    assert "cryptography" in DECLARED


# --- the reading itself, on sources of our own ------------------------------------------------------


def test_imports_are_read_from_the_source_without_running_it() -> None:
    source = (
        "from __future__ import annotations\nimport os, yaml\nfrom . import sibling\n"
        "from google.cloud import compute_v1\nfrom pydantic import BaseModel\n"
        "def later():\n    import boto3\n"
    )
    modules = imported_modules(source)
    assert {"os", "yaml", "google.cloud", "google.cloud.compute_v1", "pydantic", "boto3"} <= modules
    assert not any(m.startswith("sibling") for m in modules)  # relative: bakery's own


@pytest.mark.parametrize(
    ("module", "distribution"),
    [
        ("yaml", "pyyaml"),
        ("hcl2", "python-hcl2"),
        ("google.cloud.compute_v1", "google-cloud-compute"),
        ("google.api_core.exceptions", "google-api-core"),
        ("google.auth", "google-auth"),
        ("json", None),
        ("bakery.config.models", None),
    ],
)
def test_modules_map_to_the_distribution_that_provides_them(module: str, distribution: str | None) -> None:
    assert distribution_of(module) == distribution
