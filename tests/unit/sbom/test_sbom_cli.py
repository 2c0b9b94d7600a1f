"""`bakery sbom` and `bakery diff` on images baked against the fake cloud, whose build VM has the
package database of tests/fakes/dpkg: what a user sees, and exit 1 whenever the SBOM or the
provenance it is bound to is not to be trusted."""

from __future__ import annotations

import base64
import json
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from bakery.progress import Recording
from bakery.providers.base import PackageDb
from bakery.trust.attestation import Attestations
from bakery.trust.context import TrustContext
from bakery.workspace import Workspace
from tests.fakes.provider import DPKG, DPKG_QUERY, fixture_db
from tests.unit.trust.conftest import World


def store(world: World) -> Any:
    project = world.project_dir.load()
    return TrustContext(project, Workspace(world.project_dir.home), Recording()).store


def provenance_digest(world: World, ref: str) -> str:
    result = world.run("verify", ref, "--target", "aws", "--json")
    return str(json.loads(result.stdout)["digest"])


def test_a_bake_keeps_an_sbom_that_lists_the_build_vms_packages(world: World) -> None:
    ref = world.bake()
    shown = world.run("sbom", ref, "--target", "aws")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "web@1.0.0 on aws: 8 packages (Debian GNU/Linux 12 (bookworm))"
    assert lines[1] == f"  signed by ops, bound to provenance {provenance_digest(world, ref)}"
    assert lines[3].split() == ["PACKAGE", "ARCH", "VERSION", "SOURCE", "STATE"]
    assert "libssl3                amd64  3.0.15-1~deb12u1  openssl     installed" in lines
    assert lines[-1].split() == ["vim-tiny", "amd64", "2:9.0.1378-2", "vim", "config-files"]

    as_json = json.loads(world.run("sbom", ref, "--target", "aws", "--json").stdout)
    assert as_json["kind"] == "sbom" and as_json["key"] == "sbom/aws/web/1.0.0.json"
    assert [f"{p['name']} {p['version']}" for p in as_json["packages"]] == DPKG_QUERY
    assert as_json["provenance"] == provenance_digest(world, ref)

    document = world.run("sbom", ref, "--target", "aws", "--format", "cyclonedx")
    assert document.exit_code == 0
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(document.stdout) is None
    assert json.loads(document.stdout)["metadata"]["component"]["name"] == "web"


def test_the_sbom_is_a_signed_statement_about_the_images_provenance(world: World) -> None:
    ref = world.bake()
    envelope = json.loads(store(world).get("sbom/aws/web/1.0.0.json").data)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    assert statement["subject"][0]["annotations"] == {
        "image": "web",
        "version": "1.0.0",
        "target": "aws",
        "provenance": provenance_digest(world, ref),
    }
    record = next(r for r in world.fake.images("aws", "web"))
    provenance = Attestations(TrustContext(world.project_dir.load(), Workspace(world.project_dir.home), Recording()))
    signed = json.loads(base64.b64decode(provenance.get(record)["payload"]))  # type: ignore[index]
    assert statement["subject"][0]["digest"] == signed["subject"][0]["digest"]


def test_an_sbom_of_another_version_or_a_changed_one_is_refused(world: World) -> None:
    world.bake()
    world.bake(force=True)
    registry = store(world)
    other = registry.get("sbom/aws/web/1.0.1.json")
    mine = registry.get("sbom/aws/web/1.0.0.json")
    registry.replace("sbom/aws/web/1.0.0.json", other.data, version=mine.version)
    moved = world.run("sbom", "web@1.0.0", "--target", "aws")
    assert moved.exit_code == 1
    assert "it is about version '1.0.1', not '1.0.0'" in moved.stderr
    assert "its subject is not this image's provenance" in moved.stderr

    envelope = json.loads(other.data)
    payload = base64.b64decode(envelope["payload"]).replace(b"3.0.15-1~deb12u1", b"3.0.99-1~deb12u1")
    envelope["payload"] = base64.b64encode(payload).decode()
    now = registry.get("sbom/aws/web/1.0.1.json")
    registry.replace("sbom/aws/web/1.0.1.json", json.dumps(envelope).encode(), version=now.version)
    changed = world.run("sbom", "web@1.0.1", "--target", "aws", "--json")
    assert changed.exit_code == 1
    assert "sbom/aws/web/1.0.1.json does not verify" in json.loads(changed.stdout)["error"]


def test_an_image_whose_provenance_does_not_verify_shows_no_sbom(world: World) -> None:
    ref = world.bake()
    world.fake.change(world.image_id(ref), b"someone else's disk")
    result = world.run("sbom", ref, "--target", "aws")
    assert result.exit_code == 1
    assert "web@1.0.0 on aws: its provenance does not verify: subject:" in result.stderr


def test_a_target_without_a_build_vm_bakes_without_sbom_and_says_why(world: World) -> None:
    world.fake.packages = PackageDb(missing="target 'aws' has communicator: none: no build VM ran")
    ref = world.bake()
    skipped = [e for e in world.audit() if e["action"] == "sbom"]
    assert [(e["result"], e["details"]["reason"]) for e in skipped] == [
        ("skipped", "target 'aws' has communicator: none: no build VM ran")
    ]
    result = world.run("sbom", ref, "--target", "aws")
    assert result.exit_code == 1
    assert "error: web@1.0.0 on aws: no SBOM at sbom/aws/web/1.0.0.json in" in result.stderr


def test_a_bake_that_fails_after_its_sbom_was_stored_leaves_none(world: World) -> None:
    world.fake.fail("publish")
    assert world.run("build", "web", "--target", "aws").exit_code != 0
    assert store(world).get("sbom/aws/web/1.0.0.json") is None
    assert store(world).get("attestations/aws/web/1.0.0.dsse.json") is None


def test_diff_names_the_changed_variable_and_the_upgraded_package(world: World) -> None:
    world.bake()
    world.bake(force=True)
    same = world.run("diff", "web@1.0.0", "web@1.0.1", "--target", "aws")
    assert same.exit_code == 0, same.output
    assert same.stdout.splitlines() == ["web@1.0.0 -> web@1.0.1 on aws", "packages: no change", "inputs: no change"]

    config = world.project_dir.config
    config.write_text(config.read_text().replace("page_title: Hello", "page_title: Bonjour"))
    status = (DPKG / "status").read_bytes().replace(b"Version: 3.0.15-1~deb12u1", b"Version: 3.0.16-1~deb12u1")
    world.fake.packages = fixture_db(status)
    world.bake()
    changed = world.run("diff", "web@1.0.1", "web@1.0.2", "--target", "aws")
    assert changed.exit_code == 0, changed.output
    assert changed.stdout.splitlines() == [
        "web@1.0.1 -> web@1.0.2 on aws",
        "packages: 0 added, 0 removed, 1 changed",
        "  ~ libssl3:amd64 3.0.15-1~deb12u1 -> 3.0.16-1~deb12u1 (upgraded)",
        "inputs: 1 changed",
        '  variable entry.vars.page_title: "Hello" -> "Bonjour"',
    ]
    as_json = json.loads(world.run("diff", "web@1.0.1", "web@1.0.2", "--target", "aws", "--json").stdout)
    assert as_json["packages"]["changed"] == [
        {
            "name": "libssl3",
            "arch": "amd64",
            "before": "3.0.15-1~deb12u1",
            "after": "3.0.16-1~deb12u1",
            "change": "upgraded",
        }
    ]


def test_usage_errors_exit_2() -> None:
    from typer.testing import CliRunner

    from bakery.cli.app import app

    both = CliRunner().invoke(app, ["sbom", "web@1.0.0", "--json", "--format", "cyclonedx"])
    assert both.exit_code == 2 and "--json and --format cyclonedx each print JSON: say one" in both.stderr
    wrong = CliRunner().invoke(app, ["sbom", "web@1.0.0", "--format", "spdx"])
    assert wrong.exit_code == 2 and "--format 'spdx': one of table, cyclonedx" in wrong.stderr
