"""`bakery test` on AWS against moto: the test instance is launched from the new AMI in the target's
subnet and security group with a key pair made for the test (deleted once the instance holds it),
and terminated on every path: passed, failed, a launch that fails, SIGINT or SIGTERM in any phase.

moto's instances run nothing and their addresses exist nowhere: the SSH step is pointed (the
Tester's `connect`) at a stand-in on this machine, which Ansible reaches with its local connection
and whose HTTP server answers the checks. Nothing ever connects to an address moto hands out."""

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
from bakery.config import load
from bakery.errors import Interrupted, ProviderError, UsageError
from bakery.imagetest.base import Launched, Reach
from bakery.imagetest.service import Tester
from bakery.progress import Recording
from bakery.workspace import Workspace
from tests.fakes.http_stand_in import serving
from tests.integration.aws_world import ec2
from tests.integration.image_tests import declare_tests, images_yaml

PLAYBOOK = """\
- name: The stand-in of the test instance
  hosts: all
  gather_facts: false
  tasks:
    - name: The image says its version
      ansible.builtin.assert:
        that: bakery_version is defined and bakery_image == "app"
    - name: The service answers
      ansible.builtin.command: "{{ 'false' if broken | default(false) else 'true' }}"
      changed_when: false
"""


@pytest.fixture()
def stand_in() -> Iterator[dict[str, Any]]:
    """An HTTP server on 127.0.0.1 answering /healthz with the status a test sets."""
    state: dict[str, Any] = {"status": 200}
    with serving(lambda path: (state["status"] if path == "/healthz" else 404, "ok app\n")) as port:
        state["port"] = port
        yield state


@pytest.fixture()
def tested(aws_project: Path, moto: str) -> dict[str, Any]:
    """The project's aws target in a VPC subnet and security group of moto's, `app` with tests, and
    app baked (registered without provisioning: moto runs nothing)."""
    client = ec2(moto)
    vpc = client.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = client.create_security_group(GroupName="bakery-tests", Description="t", VpcId=vpc)["GroupId"]
    declare_tests(
        aws_project,
        "app",
        "aws",
        playbook=PLAYBOOK,
        http=[{"path": "/healthz", "port": 80, "status": 200, "body": "^ok app"}],
        subnet_id=subnet,
        security_group_ids=[group],
        copy_to=[],
    )
    baked = CliRunner().invoke(app, ["build", "app", "--target", "aws", "--no-test", "--json"])
    assert baked.exit_code == 0, baked.output
    assert json.loads(baked.stdout)["untested"] == "--no-test"
    version = json.loads(baked.stdout)["record"]["version"]
    return {"root": aws_project, "ref": f"app@{version}", "subnet": subnet, "group": group, "ec2": client}


def instances(client: Any) -> list[dict[str, Any]]:
    found = client.describe_instances(Filters=[{"Name": "tag-key", "Values": ["bakery:test-run"]}])
    return [i for r in found["Reservations"] for i in r["Instances"]]


def make_tester(tested: dict[str, Any], stand_in: dict[str, Any], seen: list[dict[str, Any]], **hooks: Any) -> Tester:
    root: Path = tested["root"]
    project = load.load(root / "images.yaml")

    def connect(launched: Launched) -> Reach:
        # What exists while the test runs: the instance as launched, and no key pair any more.
        (instance,) = [i for i in instances(tested["ec2"]) if i["InstanceId"] == launched.id]
        seen.append({"instance": instance, "keys": tested["ec2"].describe_key_pairs()["KeyPairs"], "where": launched})
        if "on_connect" in hooks:
            hooks["on_connect"]()
        return Reach("127.0.0.1", ports={80: stand_in["port"]}, local=True)

    return Tester(project, Workspace(root / ".bakery"), Recording(), connect=connect)


def test_a_test_instance_in_the_targets_network_passes_and_is_terminated(tested, stand_in) -> None:
    seen: list[dict[str, Any]] = []
    run = make_tester(tested, stand_in, seen).test(tested["ref"], "aws")
    assert run.ok, run.failed
    assert [p.split(": ", 1)[1].split(" [")[0] for p in run.passed[:2]] == [
        "The image says its version",
        "The service answers",
    ]
    assert run.passed[2] == "GET /healthz on port 80 answers 200 matching ^ok app"
    (during,) = seen
    instance = during["instance"]
    assert instance["SubnetId"] == tested["subnet"]
    assert [g["GroupId"] for g in instance["NetworkInterfaces"][0]["Groups"]] == [tested["group"]]
    assert instance["KeyName"].startswith("bakery-test-") and during["keys"] == []  # the key pair is gone already
    assert instance["State"]["Name"] == "running"
    (after,) = instances(tested["ec2"])
    assert after["State"]["Name"] == "terminated"
    assert tested["ec2"].describe_key_pairs()["KeyPairs"] == []
    assert f"test instance {instance['InstanceId']} in eu-west-1 (terminated)" in run.removed
    verified = CliRunner().invoke(app, ["verify", tested["ref"], "--target", "aws"])
    assert verified.exit_code == 0, verified.output
    assert "ok   tests: passed (3 tests, signed by workspace key)" in verified.stdout


def test_a_failing_task_is_named_with_its_host_and_the_instance_terminated(tested, stand_in) -> None:
    with images_yaml(tested["root"]) as config:
        config["images"]["app"]["vars"] = {"broken": True}
    stand_in["status"] = 500
    run = make_tester(tested, stand_in, []).test(tested["ref"], "aws")
    assert not run.ok
    (task_failure,) = [
        f for f in run.failed if f.startswith("playbooks/tests/app.yml: The service answers [bakery-test-app-")
    ]
    assert task_failure.endswith("]: non-zero return code | rc=1")
    assert run.failed[-1].startswith(
        "GET /healthz on port 80 answers 200 matching ^ok app: answered 500 (expected 200)"
    )
    assert [i["State"]["Name"] for i in instances(tested["ec2"])] == ["terminated"]
    verified = CliRunner().invoke(app, ["verify", tested["ref"], "--target", "aws"])
    assert (
        verified.exit_code == 1
        and "FAIL tests: failed: playbooks/tests/app.yml: The service answers" in verified.stdout
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_tests_run_terminates_the_instance(tested, stand_in, signum, code) -> None:
    seen: list[dict[str, Any]] = []
    tester = make_tester(tested, stand_in, seen, on_connect=lambda: os.kill(os.getpid(), signum))
    with pytest.raises(Interrupted) as stopped:
        tester.test(tested["ref"], "aws")
    assert stopped.value.exit_code == code
    assert len(seen) == 1 and [i["State"]["Name"] for i in instances(tested["ec2"])] == ["terminated"]
    assert tested["ec2"].describe_key_pairs()["KeyPairs"] == []
    assert not (tested["root"] / ".bakery" / "registry" / "tests").exists()


def test_a_signal_during_the_launch_terminates_what_the_launch_made(tested, stand_in, monkeypatch) -> None:
    """SIGTERM right after RunInstances answered, before launch() returns: the cleanup finds the
    instance by its run's tag and terminates it, and deletes the key pair."""
    import bakery.imagetest.aws as aws

    launched: list[str] = []
    original = aws.AwsLauncher._until

    def until(self: Any, client: Any, instance_id: str, wanted: Any, what: str) -> dict[str, Any]:
        if what == "running" and not launched:
            launched.append(instance_id)
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, client, instance_id, wanted, what)

    monkeypatch.setattr(aws.AwsLauncher, "_until", until)
    with pytest.raises(Interrupted) as stopped:
        make_tester(tested, stand_in, []).test(tested["ref"], "aws")
    assert stopped.value.exit_code == 143
    assert [(i["InstanceId"], i["State"]["Name"]) for i in instances(tested["ec2"])] == [(launched[0], "terminated")]
    assert tested["ec2"].describe_key_pairs()["KeyPairs"] == []


def test_a_launch_the_cloud_refuses_leaves_no_key_pair(tested, stand_in) -> None:
    with images_yaml(tested["root"]) as config:
        config["targets"]["aws"]["subnet_id"] = "subnet-00000000000000000"  # there is none such
    with pytest.raises(ProviderError, match="AWS: launch the test instance"):
        make_tester(tested, stand_in, []).test(tested["ref"], "aws")
    assert instances(tested["ec2"]) == [] and tested["ec2"].describe_key_pairs()["KeyPairs"] == []


def test_an_instance_of_moto_is_never_connected_to(tested, stand_in) -> None:
    """Without a stand-in to reach, bakery refuses to connect to the address moto handed out (it
    exists nowhere), and the instance is terminated all the same."""
    project = load.load(tested["root"] / "images.yaml")
    with pytest.raises(
        UsageError, match=r"not connecting to test instance i-\w+ at [0-9.]+: its EC2 endpoint http://127"
    ):
        Tester(project, Workspace(tested["root"] / ".bakery"), Recording()).test(tested["ref"], "aws")
    assert [i["State"]["Name"] for i in instances(tested["ec2"])] == ["terminated"]
