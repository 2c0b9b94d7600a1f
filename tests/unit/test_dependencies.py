"""pyproject.toml declares exactly the third-party distributions bakery/ imports: an import of an
undeclared one works here (it came with another) and breaks a user's install the day that other
drops it; a declared one nothing imports is weight and attack surface for every user.

The same holds for tests/ and the `dev` extra: what the tests import is declared there (or is a
runtime dependency already), and what the extra declares is imported by a test or is a tool."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "bakery"
TESTS = REPO / "tests"

# Declared for what they install rather than for an import: bakery runs them as programs.
TOOLS = {
    "ansible-core": "ansible-playbook runs beside bakery (Packer's ansible provisioner); tools.py reads its version",
}

# The dev extra's tools: run as programs or loaded as pytest plugins, never imported by a test.
DEV_TOOLS = {
    "mypy": "make lint",
    "ruff": "make lint",
    "import-linter": "make lint (lint-imports)",
    "types-pyyaml": "stubs read by mypy",
    "pytest-xdist": "make test-unit runs the unit tier on every core (-n)",
    "pytest-socket": "pyproject's addopts: loopback only (--allow-hosts)",
    "opentelemetry-sdk": "the traces extra, imported by bakery/traces.py in the tests of it",
    "opentelemetry-exporter-otlp-proto-http": "the traces extra, imported by bakery/traces.py in the tests of it",
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
def _packages_distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


@cache
def _paths_of(distribution: str) -> frozenset[str]:
    """The module paths a distribution's files provide: each directory ('google/cloud/compute_v1')
    and each .py file without its suffix ('six')."""
    paths: set[str] = set()
    for file in metadata.distribution(distribution).files or []:
        parts = str(file).replace("\\", "/").split("/")
        paths.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
        if parts[-1].endswith(".py"):
            paths.add("/".join(parts)[: -len(".py")])
    return frozenset(paths)


@cache
def distribution_of(module: str) -> str | None:
    """The installed distribution that provides `module`; None for the standard library and bakery.

    A namespace package (google.*) is shared by several distributions: the one whose files hold
    the deepest part of the module path is the one that provides it."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in ("bakery", "tests"):
        return None
    candidates = _packages_distributions().get(top, [])
    if len(set(candidates)) == 1:
        return normalise(candidates[0])
    parts = module.split(".")
    for depth in range(len(parts), 1, -1):
        path = "/".join(parts[:depth])
        owners = {normalise(d) for d in candidates if path in _paths_of(d)}
        if len(owners) == 1:
            return owners.pop()
    raise AssertionError(f"cannot tell which distribution provides {module} (candidates: {candidates or 'none'})")


def imported_distributions(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Third-party distribution -> the files under `root` (bakery/ unless told) that import it."""
    out: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
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


def declared_distributions(extra: str | None = None) -> set[str]:
    """The distributions of pyproject.toml's dependencies, or of one of its optional extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = set()
    for requirement in project["dependencies"] if extra is None else project["optional-dependencies"][extra]:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert match, requirement
        names.add(normalise(match.group(1)))
    return names


IMPORTED = imported_distributions()
# An optional feature's packages (the traces extra) are declared in its extra, imported only when it is on.
OPTIONAL = [
    e for e in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"] if e != "dev"
]
DECLARED = declared_distributions().union(*(declared_distributions(extra) for extra in OPTIONAL))
TESTS_IMPORT = imported_distributions(TESTS)
DEV = declared_distributions("dev")


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
        else f"{distribution} is declared in pyproject.toml's dependencies (or an extra) but unused in bakery/"
    )


@pytest.mark.parametrize("distribution", sorted(set(TESTS_IMPORT) | DEV))
def test_dev_extra_declares_what_the_tests_import_and_nothing_else(distribution: str) -> None:
    imported = distribution in TESTS_IMPORT or distribution in DEV_TOOLS
    where = ", ".join(sorted(TESTS_IMPORT.get(distribution, ()))) or "nowhere"
    if imported:
        assert distribution in DEV | DECLARED, (
            f"{distribution} is imported by {where} but declared neither in pyproject.toml's dev extra "
            "nor in its dependencies"
        )
    else:
        assert distribution not in DEV, f"{distribution} is declared in pyproject.toml's dev extra but used nowhere"


def test_the_tests_own_imports_are_read_too() -> None:
    assert "tests/fakes/gcs.py" in TESTS_IMPORT["google-crc32c"]
    assert "tests/fakes/moto_ebs.py" in TESTS_IMPORT["werkzeug"]
    assert "tests/unit/test_dependencies.py" in TESTS_IMPORT["pytest"]
    assert not any(name.startswith(("tests", "bakery")) for name in TESTS_IMPORT)


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
