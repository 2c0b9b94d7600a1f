"""`bakery build` on GCP against the fake Compute server runs the image's tests: a test instance
is inserted from the new image in the target's zone, network and network tags, carrying the
test's key as its only SSH key (project keys blocked), and deleted on every path: passed, failed,
SIGTERM while the tests run.

The fake's instances run nothing and their addresses (203.0.113.x) exist nowhere: the SSH step is
pointed (bakery.imagetest.service.reach_of) at a stand-in on this machine, which Ansible reaches
with its local connection and whose HTTP server answers the checks."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bakery.cli.app import app
from bakery.imagetest.base import Launched, Reach
from tests.fakes.gce import FakeGce
from tests.fakes.http_stand_in import serving
from tests.integration.image_tests import declare_tests
from tests.integration.test_gcp_fake import PROJECT, StandIn, gce, gcp_project, packer_stand_in  # noqa: F401

PLAYBOOK = """\
- name: The stand-in of the test instance
  hosts: all
  gather_facts: false
  tasks:
    - name: The image is the one baked
      ansible.builtin.assert:
        that: bakery_image == "base" and bakery_target == "gcp"
"""


@pytest.fixture()
def stand_in() -> Iterator[dict[str, Any]]:
    """An HTTP server on 127.0.0.1 answering every path with the status a test sets."""
    state: dict[str, Any] = {"status": 200}
    with serving(lambda _path: (state["status"], "ok base\n")) as port:
        state["port"] = port
        yield state


@pytest.fixture()
def seen(
    gcp_project: Path,  # noqa: F811
    gce: FakeGce,  # noqa: F811
    stand_in: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> list[dict[str, Any]]:
    """The project's gcp target with a network and tags, `base` with tests; every instance the
    tests connect to, as the fake holds it at that moment."""
    declare_tests(
        gcp_project,
        "base",
        "gcp",
        playbook=PLAYBOOK,
        http=[{"path": "/", "port": 8080, "status": 200, "body": "^ok base"}],
        network="global/networks/build",
        network_tags=["bakery-tests"],
    )
    found: list[dict[str, Any]] = []

    def connect(launched: Launched) -> Reach:
        (instance,) = [i for i in gce.groups.instances.all() if i["name"] == launched.id]
        boot = gce.groups.instances.disk(instance["disks"][0]["source"])
        found.append({"instance": instance, "boot_disk": boot, "reach": launched.reach})
        if stand_in.get("signal"):
            os.kill(os.getpid(), stand_in["signal"])
        return Reach("127.0.0.1", ports={8080: stand_in["port"]}, local=True)

    monkeypatch.setattr("bakery.imagetest.service.reach_of", connect)
    return found


def bakery(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_a_bake_is_tested_on_an_instance_in_the_targets_network(
    seen: list[dict[str, Any]],
    gce: FakeGce,  # noqa: F811
    packer_stand_in: StandIn,  # noqa: F811
) -> None:
    built = bakery("build", "base", "-t", "gcp", "--json")
    assert built.exit_code == 0, built.output
    tests = json.loads(built.stdout[built.stdout.index("{") :])["tests"]
    assert tests["result"] == "passed" and len(tests["passed"]) == 2
    (during,) = seen
    instance = during["instance"]
    assert instance["networkInterfaces"][0]["network"] == "global/networks/build"
    assert instance["tags"] == {"items": ["bakery-tests"]}
    assert instance["labels"]["bakery-test-run"] in tests["instance"]
    metadata = {item["key"]: item["value"] for item in instance["metadata"]["items"]}
    assert metadata["block-project-ssh-keys"] == "true"
    user, key = metadata["ssh-keys"].split(":", 1)
    assert user == "packer" and key.startswith("ssh-ed25519 ") and key.endswith(instance["labels"]["bakery-test-run"])
    assert f"/projects/{PROJECT}/global/images/base-" in during["boot_disk"]["sourceImage"]
    assert during["reach"].host.startswith("203.0.113.")  # where GCE said it is: never connected to
    assert gce.groups.instances.all() == [] and gce.groups.instances.deleted == [instance["name"]]


def test_a_failed_check_fails_the_bake_and_the_image_stays_recorded_as_failed(
    seen: list[dict[str, Any]],
    stand_in: dict[str, Any],
    gce: FakeGce,  # noqa: F811
    packer_stand_in: StandIn,  # noqa: F811
) -> None:
    stand_in["status"] = 500
    built = bakery("build", "base", "-t", "gcp")
    assert built.exit_code == 1
    assert "GET / on port 8080 answers 200 matching ^ok base: answered 500 (expected 200)" in built.stderr
    listed = bakery("images", "base", "--target", "gcp", "--json")
    (record,) = json.loads(listed.stdout)["images"]
    verified = bakery("verify", f"base@{record['version']}", "--target", "gcp")
    assert verified.exit_code == 1 and "FAIL tests: failed: GET / on port 8080" in verified.stdout
    assert gce.groups.instances.all() == [] and len(gce.groups.instances.deleted) == 1


def test_sigterm_while_the_tests_run_deletes_the_instance(
    seen: list[dict[str, Any]],
    stand_in: dict[str, Any],
    gce: FakeGce,  # noqa: F811
    packer_stand_in: StandIn,  # noqa: F811
) -> None:
    stand_in["signal"] = signal.SIGTERM
    built = bakery("build", "base", "-t", "gcp")
    assert built.exit_code == 143, built.output
    assert len(seen) == 1
    assert gce.groups.instances.all() == [] and gce.groups.instances.deleted == [seen[0]["instance"]["name"]]
