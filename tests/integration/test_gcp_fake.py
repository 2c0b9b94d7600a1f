"""GCP through the fake compute REST server, driven by the real google-cloud-compute client.

Packer 1.6.6's googlecompute builder has no endpoint override, so the Packer run itself is covered
by render + `packer validate` (test_packer_validate.py). Here a stand-in plays Packer's part the way
googlecompute does it: it creates the image named in the rendered variables, with the rendered
description and labels. Everything else is bakery's real code: resolving the family, the bake key,
the pending and final labels with their fingerprint, the catalog, show and plan.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bakery import hcl, packer, provenance
from bakery.build import Baker
from bakery.cli import app
from tests.fakes.gce import FakeGce

REPO = Path(__file__).resolve().parents[2]
PROJECT = "bakery-test"
HOSTILE = 'Ops "team" \\ ${x} %{y} é'
LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
runner = CliRunner()


@pytest.fixture()
def gce(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGce]:
    with FakeGce() as fake:
        fake.add_image(
            "debian-cloud",
            "debian-12-bookworm-v20260101",
            family="debian-12",
            creation_timestamp="2026-01-01T00:00:00.000-00:00",
        )
        monkeypatch.setenv("BAKERY_GCP_ENDPOINT", fake.endpoint)
        yield fake


@pytest.fixture()
def gcp_project(tmp_path: Path, gce: FakeGce, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "playbooks", tmp_path / "playbooks")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    config = {
        "targets": {"gcp": {"kind": "gcp", "project": PROJECT, "zone": "europe-west1-b"}},
        "images": {
            "base": {
                "version": "1.0",
                "playbooks": ["playbooks/base.yml"],
                "tags": {"owner": HOSTILE},
                "source": {"gcp": {"family": "debian-12", "project": "debian-cloud"}},
            },
            "web": {"version": "3.2", "from": "base", "playbooks": ["playbooks/web.yml"]},
        },
    }
    (tmp_path / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BAKERY_HOME", str(tmp_path / ".bakery"))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


@pytest.fixture()
def packer_stand_in(gce: FakeGce, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the `packer build` run with what googlecompute would do to the API."""
    made: list[dict[str, Any]] = []

    def fake_packer(
        self: Baker, directory: Path, workdir: Path, log_path: Path, secrets: dict[str, str]
    ) -> list[packer.Event]:
        values = hcl.loads_values((directory / "bakery.auto.pkrvars.hcl").read_text())
        labels = {**values["image_tags"], **values["gcp_build_labels"]}
        image = gce.add_image(
            values["project_id"],
            values["gcp_image_name"],
            family=values["image_family"],
            labels=labels,
            description=values["image_description"],
        )
        made.append(image)
        log_path.write_text("stand-in for packer build\n")
        return [packer.Event("1", "googlecompute.image", "artifact", ("0", "id", values["gcp_image_name"]))]

    monkeypatch.setattr(Baker, "_packer", fake_packer)
    return made


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_bake_labels_catalog_and_show(gcp_project: Path, gce: FakeGce, packer_stand_in: list[dict[str, Any]]) -> None:
    built = bakery("build", "base", "-t", "gcp", "--json")
    assert built.exit_code == 0, built.output
    result = json.loads(built.stdout)
    assert result["record"]["base"] == "debian-cloud/debian-12-bookworm-v20260101"
    stored = gce.image(PROJECT, "base-1-0-0")
    labels = stored["labels"]
    assert all(LABEL.match(k) and LABEL.match(v) and k[0].isalpha() for k, v in labels.items())
    assert provenance.gcp_stamp(labels)["state"] == "complete"
    assert provenance.gcp_stamp(labels)["inputs-digest"] == result["inputs_digest"]  # full digest, not truncated
    assert provenance.user_labels(labels) == {"owner": HOSTILE}  # encoded reversibly

    listed = bakery("images", "-t", "gcp", "--json")
    assert listed.exit_code == 0, listed.output
    (image,) = json.loads(listed.stdout)["images"]
    assert (image["name"], image["version"], image["locations"]) == ("base", "1.0.0", [f"{PROJECT}/base-1-0-0"])

    shown = bakery("show", "base@1.0.0", "-t", "gcp", "--json")
    assert shown.exit_code == 0, shown.output
    statement = json.loads(shown.stdout)["provenance"]
    assert statement["subject"] == [{"name": f"gce:{PROJECT}/base-1-0-0", "digest": {"gceImageId": stored["id"]}}]
    build = statement["predicate"]["buildDefinition"]
    assert build["internalParameters"]["inputsDigest"] == result["inputs_digest"]
    assert build["externalParameters"] == {"image": "base", "target": "gcp", "version": "1.0.0"}
    deps = {d["name"] for d in build["resolvedDependencies"]}
    assert "gce-image:debian-cloud/debian-12-bookworm-v20260101" in deps and "playbooks/base.yml" in deps
    assert statement["predicate"]["runDetails"]["metadata"]["finishedOn"]


def test_skip_chain_and_newer_family_image(
    gcp_project: Path, gce: FakeGce, packer_stand_in: list[dict[str, Any]]
) -> None:
    assert bakery("build", "base", "-t", "gcp").exit_code == 0
    again = bakery("build", "base", "-t", "gcp")
    assert "up to date: base@1.0.0 on gcp" in again.output
    assert len(packer_stand_in) == 1

    child = bakery("build", "web", "-t", "gcp", "--json")
    assert child.exit_code == 0, child.output
    assert json.loads(child.stdout)["record"]["parent"] == "base@1.0.0"

    gce.add_image(
        "debian-cloud",
        "debian-12-bookworm-v20260201",
        family="debian-12",
        creation_timestamp="2026-02-01T00:00:00.000-00:00",
    )
    items = {i["image"]: i for i in json.loads(bakery("plan", "-t", "gcp", "--json").stdout)["items"]}
    assert items["base"]["status"] == "stale"
    assert items["base"]["reasons"][0] == (
        "base debian-cloud/debian-12-bookworm-v20260101 → debian-cloud/debian-12-bookworm-v20260201"
    )
    assert items["web"]["status"] == "stale"


def test_throttle_and_5xx_are_retried_without_duplicates(
    gcp_project: Path, gce: FakeGce, packer_stand_in: list[dict[str, Any]]
) -> None:
    gce.fail_next(429, method="GET", path_contains="/family/")
    gce.fail_next(503, method="POST", path_contains="setLabels")
    built = bakery("build", "base", "-t", "gcp")
    assert built.exit_code == 0, built.output
    assert gce.count("GET", "/compute/v1/projects/debian-cloud/global/images/family/") == 2
    assert "reading them again" in built.output
    assert list(gce.images[PROJECT]) == ["base-1-0-0"]
    assert provenance.gcp_stamp(gce.image(PROJECT, "base-1-0-0")["labels"])["state"] == "complete"


def test_label_fingerprint_race_is_resolved(
    gcp_project: Path, gce: FakeGce, packer_stand_in: list[dict[str, Any]]
) -> None:
    gce.fail_next(412, method="POST", path_contains="setLabels")
    built = bakery("build", "base", "-t", "gcp")
    assert built.exit_code == 0, built.output
    assert provenance.gcp_stamp(gce.image(PROJECT, "base-1-0-0")["labels"])["state"] == "complete"


def test_images_lists_with_one_call_per_page(gcp_project: Path, gce: FakeGce) -> None:
    for i in range(3):
        gce.add_image(
            PROJECT,
            f"base-1-0-{i}",
            labels=provenance.gcp_stamp_labels(
                {
                    "image": "base",
                    "version": f"1.0.{i}",
                    "target": "gcp",
                    "state": "complete",
                    "inputs-digest": "sha256:" + f"{i:02d}" * 32,
                    "created": "2026-01-01T00:00:00Z",
                }
            ),
        )
    gce.reset_requests()
    listed = json.loads(bakery("images", "-t", "gcp", "--json").stdout)["images"]
    assert [i["version"] for i in listed] == ["1.0.0", "1.0.1", "1.0.2"]
    assert gce.count("GET") == 1


def test_half_recorded_image_is_reported_then_cleaned_up(
    gcp_project: Path, gce: FakeGce, packer_stand_in: list[dict[str, Any]]
) -> None:
    pending = provenance.gcp_stamp_labels(
        {"image": "base", "version": "1.0.0", "target": "gcp", "state": "pending", "invocation": "cafe00000000"}
    )
    gce.add_image(PROJECT, "base-1-0-0", labels=pending)  # registered just now: its bake may still run
    fresh = bakery("build", "base", "-t", "gcp")
    assert fresh.exit_code == 1
    assert "another bake of base@1.0.0 on gcp is under way (invocation cafe00000000" in fresh.output

    del gce.images[PROJECT]["base-1-0-0"]
    gce.add_image(PROJECT, "base-1-0-0", labels=pending, creation_timestamp="2026-01-01T00:00:00.000-00:00")
    built = bakery("build", "base", "-t", "gcp", "--json")
    assert built.exit_code == 0, built.output
    assert "cleaning up base@1.0.0 on gcp" in built.output
    assert json.loads(built.stdout[built.stdout.index("{") :])["record"]["version"] == "1.0.1"
    assert sorted(gce.images[PROJECT]) == ["base-1-0-1"]
