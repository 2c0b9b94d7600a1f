"""What changed between two images (bakery/sbom/diff.py): packages in Debian version order, and
the inputs two provenance statements differ in."""

from __future__ import annotations

import copy
from typing import Any

from bakery.sbom.diff import InputChange, PackageChange, inputs, packages
from bakery.sbom.dpkg import Package


def pkg(name: str, version: str, arch: str = "amd64", source: str = "") -> Package:
    return Package(name, arch, version, source or name, version, "installed")


def test_packages_added_removed_and_moved_in_debian_version_order() -> None:
    before = [pkg("a", "1.0~rc1"), pkg("b", "2.0"), pkg("c", "1:0.9"), pkg("gone", "1"), pkg("same", "1")]
    after = [pkg("a", "1.0"), pkg("b", "10.0"), pkg("c", "2.0"), pkg("new", "3", "i386"), pkg("same", "1")]
    found = packages(before, after)
    assert found.added == (pkg("new", "3", "i386"),)
    assert found.removed == (pkg("gone", "1"),)
    assert found.changed == (
        PackageChange("a", "amd64", "1.0~rc1", "1.0", "upgraded"),  # ~ sorts before the release
        PackageChange("b", "amd64", "2.0", "10.0", "upgraded"),  # numerically, not as text
        PackageChange("c", "amd64", "1:0.9", "2.0", "downgraded"),  # the epoch wins
    )
    assert packages(before, before).empty


def test_the_same_name_on_another_arch_is_another_package() -> None:
    found = packages([pkg("libc6", "2.36")], [pkg("libc6", "2.36"), pkg("libc6", "2.36", "i386")])
    assert found.added == (pkg("libc6", "2.36", "i386"),) and not found.changed


def statement(page_title: str, web_sha: str = "aa", packer: str = "1.6.6") -> dict[str, Any]:
    entry = {"image": "web", "entry": {"version": "1.0", "vars": {"page_title": page_title}, "playbooks": ["p.yml"]}}
    return {
        "predicate": {
            "buildDefinition": {
                "externalParameters": {"image": "web", "target": "aws", "version": "1.0.0"},
                "internalParameters": {"inputsDigest": "sha256:1", "base": "ami-1", "parent": None},
                "resolvedDependencies": [
                    {"name": "git", "digest": {"gitCommit": "c1"}},
                    {"name": "playbooks/web.yml", "digest": {"sha256": web_sha}},
                    {"name": "images.yaml#images.web", "digest": {"sha256": "e"}, "annotations": {"entry": entry}},
                ],
            },
            "runDetails": {
                "builder": {"version": {"bakery": "0.1", "packer": packer}},
                "metadata": {"invocationId": "x", "startedOn": "t0", "finishedOn": "t1"},
            },
        }
    }


def test_inputs_name_the_variable_file_and_tool_that_changed_and_nothing_every_bake_changes() -> None:
    after = statement("Bonjour", web_sha="bb", packer="1.7.0")
    after["predicate"]["buildDefinition"]["externalParameters"]["version"] = "1.0.1"
    after["predicate"]["buildDefinition"]["internalParameters"]["inputsDigest"] = "sha256:2"
    after["predicate"]["runDetails"]["metadata"] = {"invocationId": "y", "startedOn": "t2", "finishedOn": "t3"}
    assert inputs(statement("Hello"), after) == (
        InputChange("file", "playbooks/web.yml", "sha256:aa", "sha256:bb"),
        InputChange("tool", "packer", "1.6.6", "1.7.0"),
        InputChange("variable", "entry.vars.page_title", "Hello", "Bonjour"),
    )
    assert inputs(statement("Hello"), copy.deepcopy(statement("Hello"))) == ()


def test_a_file_or_variable_that_appears_is_named_with_nothing_before() -> None:
    after = statement("Hello")
    deps = after["predicate"]["buildDefinition"]["resolvedDependencies"]
    deps.append({"name": "playbooks/extra.yml", "digest": {"sha256": "cc"}})
    deps[2]["annotations"]["entry"]["entry"]["vars"]["port"] = 8080
    assert inputs(statement("Hello"), after) == (
        InputChange("file", "playbooks/extra.yml", None, "sha256:cc"),
        InputChange("variable", "entry.vars.port", None, 8080),
    )
