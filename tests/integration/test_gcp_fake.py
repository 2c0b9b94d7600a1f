"""Bakes on GCP through the fake compute REST server, driven by the real google-cloud-compute client.

Packer 1.6.6's googlecompute builder has no endpoint override, so the Packer run itself is covered
by render + `packer validate` (test_packer_validate.py). Here a stand-in `packer` on PATH plays its
part the way googlecompute does it, through bakery's real runner: it inserts the image named in
the rendered variables, with the rendered description and labels, waits for the operation, and
prints the machine-readable artifact line (or fails after creating the image); the template's file
provisioners' downloads of the build VM's package database (for the SBOM) are tests/fakes/dpkg. Operations finish
half a second after they are accepted, as GCE's may. Everything else is bakery's real code:
resolving the family, the bake key, the marks and the heartbeat, the final labels with their
fingerprint, debris of dead bakes, the catalog, show and plan.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bakery.cli.app import app
from bakery.core import jcs, provenance
from bakery.core.debris import Owner, boot_id, iso
from bakery.providers.gcp.labels import HEARTBEAT_LABEL, owner_labels
from tests.fakes.gce import FakeGce
from tests.fakes.provider import DPKG

REPO = Path(__file__).resolve().parents[2]
PROJECT = "bakery-test"
HOSTILE = 'Ops "team" \\ ${x} %{y} é'
LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
IMAGES = f"/compute/v1/projects/{PROJECT}/global/images"
runner = CliRunner()

STAND_IN = '''#!{python}
"""A stand-in for `packer` (version, build) that does to the Compute API what googlecompute does."""
import json, pathlib, sys, time, urllib.request

from bakery.bake import hcl

ENDPOINT = {endpoint!r}
HERE = pathlib.Path(__file__).parent


def say(kind, *data):
    print(",".join([str(int(time.time())), "googlecompute.image", kind, *data]), flush=True)


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    for attempt in range(4):  # as Packer's Google client does, a read that failed with a 5xx is retried
        request = urllib.request.Request(ENDPOINT + path, data=data, method=method,
                                         headers={{"Content-Type": "application/json"}})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == 3 or (method == "POST" and not path.endswith("/wait")):
                raise
            say("ui", "message", f"retrying {{method}} {{path}} after HTTP {{exc.code}}: {{exc.read()[:200]!r}}")
            time.sleep(0.5)


if sys.argv[1:2] == ["version"]:
    print("Packer v1.6.6")
    sys.exit(0)
if sys.argv[1:2] == ["init"]:  # a render for Packer >= 1.7 installs its plugins first: nothing to do here
    sys.exit(0)
directory = pathlib.Path(sys.argv[-1])
values = hcl.loads_values((directory / "bakery.auto.pkrvars.hcl").read_text())
mode = (HERE / "mode").read_text().strip() if (HERE / "mode").exists() else "ok"
project, name = values["project_id"], values["gcp_image_name"]
image = {{
    "name": name,
    "family": values["image_family"],
    "description": values["image_description"],
    "labels": {{**values["image_tags"], **values["gcp_build_labels"]}},
    "sourceDisk": f"projects/{{project}}/zones/{{values['zone']}}/disks/packer-{{int(time.time())}}",
}}
try:
    operation = call("POST", f"/compute/v1/projects/{{project}}/global/images", image)
except urllib.error.HTTPError as exc:
    say("ui", "error", f"Build 'googlecompute.image' errored: {{exc.read().decode()}}")
    sys.exit(1)
while operation["status"] != "DONE":
    operation = call("POST", f"/compute/v1/projects/{{project}}/global/operations/{{operation['name']}}/wait")
say("ui", "say", "==> googlecompute.image: Image created")
if mode == "fail":
    say("ui", "error", "Build 'googlecompute.image' errored after the image was created: provisioner failed")
    sys.exit(1)
beat = None
for _ in range(100):  # a running bake renews its heartbeat on what it created
    beat = call("GET", f"/compute/v1/projects/{{project}}/global/images/{{name}}").get("labels", {{}}).get(
        "bakery-heartbeat")
    if beat:
        break
    time.sleep(0.1)
# The template's file provisioners (direction = "download"): the build VM's package database.
for downloaded, fixture in (("sbom-dpkg-status", "status"), ("sbom-os-release", "os-release")):
    (directory / downloaded).write_bytes((pathlib.Path({dpkg!r}) / fixture).read_bytes())
with open(HERE / "seen.jsonl", "a") as seen:
    seen.write(json.dumps({{"image": name, "heartbeat": beat}}) + "\\n")
say("artifact", "0", "builder-id", "packer.googlecompute")
say("artifact", "0", "id", name)
say("artifact", "0", "end")
'''


@pytest.fixture()
def gce(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGce]:
    with FakeGce(operation_delay=0.5) as fake:
        fake.add_image(
            "debian-cloud",
            "debian-12-bookworm-v20260101",
            family="debian-12",
            creation_timestamp="2026-01-01T00:00:00.000-00:00",
        )
        monkeypatch.setenv("BAKERY_GCP_ENDPOINT", fake.endpoint)
        yield fake


class StandIn:
    """The stand-in `packer` and what it saw."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def mode(self, mode: str) -> None:
        (self.directory / "mode").write_text(mode)

    def seen(self) -> list[dict[str, Any]]:
        path = self.directory / "seen.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture()
def packer_stand_in(tmp_path: Path, gce: FakeGce, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    bindir = tmp_path / "stand-in"
    bindir.mkdir()
    script = bindir / "packer"
    script.write_text(STAND_IN.format(python=sys.executable, endpoint=gce.endpoint, dpkg=str(DPKG)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("packer") == str(script)
    return StandIn(bindir)


def write_project(root: Path, source: dict[str, str]) -> None:
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "templates", root / "templates")
    config = {
        "targets": {"gcp": {"kind": "gcp", "project": PROJECT, "zone": "europe-west1-b"}},
        "images": {
            "base": {
                "version": "1.0",
                "playbooks": ["playbooks/base.yml"],
                "tags": {"owner": HOSTILE},
                "source": {"gcp": source},
            },
            "web": {"version": "3.2", "from": "base", "playbooks": ["playbooks/web.yml"]},
        },
    }
    (root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


@pytest.fixture()
def gcp_project(tmp_path: Path, gce: FakeGce, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    write_project(root, {"family": "debian-12", "project": "debian-cloud"})
    monkeypatch.chdir(root)
    monkeypatch.setenv("BAKERY_HOME", str(tmp_path / ".bakery"))
    return root


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


def json_of(result: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
    return loaded


def stamp_of(gce: FakeGce, name: str) -> dict[str, str]:
    stamp, problems = provenance.gcp_stamp(gce.image(PROJECT, name)["labels"])
    assert problems == {}
    return stamp


def test_bake_labels_catalog_and_show(gcp_project: Path, gce: FakeGce, packer_stand_in: StandIn) -> None:
    built = bakery("build", "base", "-t", "gcp", "--json")
    assert built.exit_code == 0, built.output
    result = json_of(built)
    assert result["record"]["base"] == "debian-cloud/debian-12-bookworm-v20260101"
    stored = gce.image(PROJECT, "base-1-0-0")
    labels = stored["labels"]
    assert all(LABEL.match(k) and LABEL.match(v) and k[0].isalpha() for k, v in labels.items())
    stamp = stamp_of(gce, "base-1-0-0")
    assert stamp["state"] == "complete"
    assert stamp["inputs-digest"] == result["inputs_digest"]  # full digest, not truncated
    assert provenance.user_labels(labels) == {"owner": HOSTILE}  # encoded reversibly
    # while Packer ran, the bake's heartbeat was on the image; the finished image does not keep it
    (seen,) = packer_stand_in.seen()
    assert seen["image"] == "base-1-0-0" and seen["heartbeat"]
    assert not any(k.startswith(("bakery-owner-", HEARTBEAT_LABEL)) for k in labels)
    assert gce.count("DELETE") == 0

    listed = bakery("images", "-t", "gcp", "--json")
    assert listed.exit_code == 0, listed.output
    (image,) = json.loads(listed.stdout)["images"]
    assert (image["name"], image["version"], image["locations"]) == ("base", "1.0.0", [f"{PROJECT}/base-1-0-0"])

    shown = bakery("show", "base@1.0.0", "-t", "gcp", "--json")
    assert shown.exit_code == 0, shown.output
    statement = json.loads(shown.stdout)["provenance"]
    described = {
        "kind": "gcp",
        "project": PROJECT,
        "image": "base-1-0-0",
        "id": stored["id"],
        "created": stored["creationTimestamp"],
        **{key: stored[key] for key in ("sourceDisk", "sourceDiskId", "diskSizeGb")},  # what it was made of
    }
    digests = {"gceImageId": stored["id"], "sha256": jcs.digest(described).removeprefix("sha256:")}
    assert statement["subject"] == [{"name": f"gce:{PROJECT}/base-1-0-0", "digest": digests}]
    build = statement["predicate"]["buildDefinition"]
    assert build["internalParameters"]["inputsDigest"] == result["inputs_digest"]
    assert build["externalParameters"] == {"image": "base", "target": "gcp", "version": "1.0.0"}
    deps = {d["name"] for d in build["resolvedDependencies"]}
    assert "gce-image:debian-cloud/debian-12-bookworm-v20260101" in deps and "playbooks/base.yml" in deps
    assert statement["predicate"]["runDetails"]["metadata"]["finishedOn"]

    sbom = bakery("sbom", "base@1.0.0", "-t", "gcp", "--json")  # from the build VM's downloaded package database
    assert sbom.exit_code == 0, sbom.output
    assert [p["name"] for p in json.loads(sbom.stdout)["packages"]][:3] == ["base-files", "libc6", "libc6"]
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == stamp["invocation"]


def test_skip_chain_and_newer_family_image(gcp_project: Path, gce: FakeGce, packer_stand_in: StandIn) -> None:
    first = bakery("build", "base", "-t", "gcp")
    assert first.exit_code == 0, first.output
    again = bakery("build", "base", "-t", "gcp")
    assert "up to date: base@1.0.0 on gcp" in again.output
    assert len(packer_stand_in.seen()) == 1

    child = bakery("build", "web", "-t", "gcp", "--json")
    assert child.exit_code == 0, child.output
    assert json_of(child)["record"]["parent"] == "base@1.0.0"

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
    gcp_project: Path, gce: FakeGce, packer_stand_in: StandIn
) -> None:
    gce.fail_next(429, method="GET", path_contains="/family/")
    gce.fail_next(503, method="POST", path_contains="setLabels")
    built = bakery("build", "base", "-t", "gcp")
    assert built.exit_code == 0, built.output
    assert gce.count("GET", "/compute/v1/projects/debian-cloud/global/images/family/") == 2
    assert "503 ServiceUnavailable; reading them again" in built.output
    assert list(gce.images[PROJECT]) == ["base-1-0-0"]
    assert stamp_of(gce, "base-1-0-0")["state"] == "complete"


def test_label_fingerprint_race_is_resolved(gcp_project: Path, gce: FakeGce, packer_stand_in: StandIn) -> None:
    gce.fail_next(412, method="POST", path_contains="setLabels")
    built = bakery("build", "base", "-t", "gcp")
    assert built.exit_code == 0, built.output
    assert "412 PreconditionFailed; reading them again" in built.output
    assert stamp_of(gce, "base-1-0-0")["state"] == "complete"


def test_failed_bake_leaves_no_image_behind(gcp_project: Path, gce: FakeGce, packer_stand_in: StandIn) -> None:
    packer_stand_in.mode("fail")
    built = bakery("build", "base", "-t", "gcp")
    assert built.exit_code == 1, built.output
    assert "provisioner failed" in built.output
    assert f"removed what this bake created on gcp: image {PROJECT}/base-1-0-0" in built.output
    assert gce.images.get(PROJECT, {}) == {}
    assert gce.count("DELETE") == 1


def complete_labels(version: str, **extra: str) -> dict[str, str]:
    stamp = {
        "image": "base",
        "version": version,
        "target": "gcp",
        "state": "complete",
        "inputs-digest": "sha256:" + version[-1] * 64,
        "created": "2026-01-01T00:00:00Z",
        "invocation": f"{version[-1]}" * 12,
    }
    return {**provenance.gcp_stamp_labels(stamp), **extra}


def test_images_lists_with_one_call_per_page(gcp_project: Path, gce: FakeGce) -> None:
    for i in range(3):
        gce.add_image(PROJECT, f"base-1-0-{i}", labels=complete_labels(f"1.0.{i}"))
    gce.reset_requests()
    listed = json.loads(bakery("images", "-t", "gcp", "--json").stdout)["images"]
    assert [i["version"] for i in listed] == ["1.0.0", "1.0.1", "1.0.2"]
    assert gce.count("GET") == 1


def test_images_reports_labels_it_cannot_read_and_lists_the_rest(gcp_project: Path, gce: FakeGce) -> None:
    gce.add_image(PROJECT, "base-1-0-0", labels=complete_labels("1.0.0", cost_center="a_b"))
    gce.add_image(PROJECT, "base-1-0-1", labels={**complete_labels("1.0.1"), "bakery-version": "1_2e0_zz"})
    gce.add_image(PROJECT, "base-1-0-2", labels=complete_labels("1.0.2", **{"bakery-commit": "deadbeef_"}))
    gce.add_image(PROJECT, "someone-elses", labels={"team": "a_b"})
    listed = bakery("images", "-t", "gcp", "--json")
    assert listed.exit_code == 0, listed.output
    assert "Traceback" not in listed.output
    assert [i["version"] for i in json.loads(listed.stdout)["images"]] == ["1.0.0", "1.0.2"]
    assert f"skipping GCP image {PROJECT}/base-1-0-1: bakery cannot read its labels: label bakery-version=" in (
        listed.output
    )
    assert f"GCP image {PROJECT}/base-1-0-2: ignoring a label bakery cannot read: label bakery-commit=" in (
        listed.output
    )


def pending_labels(invocation: str, owner: Owner | None) -> dict[str, str]:
    stamp = {"image": "base", "version": "1.0.0", "target": "gcp", "state": "pending", "invocation": invocation}
    return {**provenance.gcp_stamp_labels(stamp), **(owner_labels(owner) if owner else {})}


def exited_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_live_bake_is_waited_for_and_a_dead_one_is_removed(
    gcp_project: Path, gce: FakeGce, packer_stand_in: StandIn
) -> None:
    started = iso(datetime.now(UTC))  # after this process started: it is that bake's process
    alive = Owner("cafe00000000", socket.gethostname(), os.getpid(), boot_id(), started)
    gce.add_image(PROJECT, "base-1-0-0", labels=pending_labels("cafe00000000", alive))
    refused = bakery("build", "base", "-t", "gcp")
    assert refused.exit_code == 1
    assert "another bake of base@1.0.0 on gcp is under way" in refused.output
    assert f"(pid {os.getpid()}) is still running" in refused.output
    assert list(gce.images[PROJECT]) == ["base-1-0-0"]

    del gce.images[PROJECT]["base-1-0-0"]
    dead = Owner("cafe00000000", socket.gethostname(), exited_pid(), boot_id(), started)
    gce.add_image(PROJECT, "base-1-0-0", labels=pending_labels("cafe00000000", dead))
    built = bakery("build", "base", "-t", "gcp", "--json")
    assert built.exit_code == 0, built.output
    assert f"removing base@1.0.0 on gcp ({PROJECT}/base-1-0-0), left by the bake cafe00000000" in built.output
    assert "that process has exited" in built.output
    assert json_of(built)["record"]["version"] == "1.0.1"
    assert sorted(gce.images[PROJECT]) == ["base-1-0-1"]


def test_debris_of_another_host_goes_by_its_heartbeat(
    gcp_project: Path, gce: FakeGce, packer_stand_in: StandIn
) -> None:
    long_ago = iso(datetime.now(UTC) - timedelta(hours=1))
    elsewhere = Owner("beef00000000", "build-7." + "x" * 80 + ".example.com", 1234, "feedfacecafe", long_ago)
    labels = {**pending_labels("beef00000000", elsewhere), HEARTBEAT_LABEL: provenance.gcp_value(long_ago)}
    gce.add_image(PROJECT, "base-1-0-0", labels=labels)
    built = bakery("build", "base", "-t", "gcp", "--json")
    assert built.exit_code == 0, built.output
    assert f"its heartbeat stopped at {long_ago}" in built.output
    assert sorted(gce.images[PROJECT]) == ["base-1-0-1"]


def test_a_long_source_image_name_is_recorded_whole(
    tmp_path: Path, gce: FakeGce, packer_stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_project, source_name = (
        "debian-cloud-mirror-of-the-org",
        "debian-12-bookworm-arm64-" + "v2026" * 7 + "010",
    )
    assert (len(source_project), len(source_name)) == (30, 63)
    gce.add_image(source_project, source_name)
    root = tmp_path / "long"
    root.mkdir()
    write_project(root, {"image": source_name, "project": source_project})
    monkeypatch.chdir(root)
    monkeypatch.setenv("BAKERY_HOME", str(tmp_path / ".bakery-long"))

    built = bakery("build", "base", "-t", "gcp", "--json")
    assert built.exit_code == 0, built.output
    base = f"{source_project}/{source_name}"
    assert json_of(built)["record"]["base"] == base
    labels = gce.image(PROJECT, "base-1-0-0")["labels"]
    assert all(LABEL.match(v) for v in labels.values())
    assert labels["bakery-base"].startswith(provenance.GCP_DIGEST_MARK)

    (listed,) = json.loads(bakery("images", "-t", "gcp", "--json").stdout)["images"]
    assert listed["base"] == base
    assert bakery("build", "base", "-t", "gcp").output.count("up to date: base@1.0.0 on gcp") == 1
    shown = json.loads(bakery("show", "base@1.0.0", "-t", "gcp", "--json").stdout)["provenance"]
    assert shown["predicate"]["buildDefinition"]["internalParameters"]["base"] == base


def test_a_signed_gcp_image_verifies_a_changed_label_is_named_and_revocation_deprecates(
    gcp_project: Path, gce: FakeGce, packer_stand_in: StandIn
) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    assert bakery("build", "base", "-t", "gcp").exit_code == 0
    assert bakery("build", "base", "-t", "gcp", "--force").exit_code == 0
    ok = bakery("verify", "base@1.0.0", "-t", "gcp")
    assert ok.exit_code == 0, ok.output
    assert "attestation digest" not in ok.stdout and "verified" in ok.stdout

    images = compute_v1.ImagesClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport="rest",
        client_options=ClientOptions(api_endpoint=gce.endpoint),
    )
    stored = gce.image(PROJECT, "base-1-0-0")
    labels = {**stored["labels"], "bakery-commit": "f" * 40}
    request = compute_v1.GlobalSetLabelsRequest(labels=labels, label_fingerprint=stored["labelFingerprint"])
    images.set_labels(project=PROJECT, resource="base-1-0-0", global_set_labels_request_resource=request)
    for _ in range(100):  # the operation lands a moment later, as GCE's do
        if gce.image(PROJECT, "base-1-0-0")["labels"]["bakery-commit"] == "f" * 40:
            break
        time.sleep(0.05)
    changed = bakery("verify", "base@1.0.0", "-t", "gcp")
    assert changed.exit_code == 1
    assert f"FAIL tags: label bakery-commit on image base-1-0-0 in {PROJECT} is 'ffff" in changed.stdout

    revoked = bakery("revoke", "base@1.0.1", "--reason", "CVE-2026-0003", "-t", "gcp")
    assert revoked.exit_code == 0, revoked.output
    deprecated = gce.image(PROJECT, "base-1-0-1")["deprecated"]
    assert deprecated["state"] == "DEPRECATED" and deprecated["replacement"].endswith("/base-1-0-0")
    assert bakery("unrevoke", "base@1.0.1", "--reason", "fixed upstream", "-t", "gcp").exit_code == 0
    assert gce.image(PROJECT, "base-1-0-1").get("deprecated", {}).get("state", "ACTIVE") == "ACTIVE"
