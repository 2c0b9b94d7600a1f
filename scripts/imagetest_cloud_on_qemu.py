"""An AWS image test whose SSH step reaches a real VM: `bakery test` of an AMI on moto, the test
instance launched there (in a subnet and security group of moto's, with the test's key pair), and
the SSH and HTTP steps pointed at a local QEMU VM booted from a local web image with that same key.

moto runs no guest: this is how the cloud path's playbooks and checks meet a real sshd and nginx.
It boots one VM (about a minute under TCG), so it is not part of `make test`; run it by hand:

    .venv/bin/python scripts/imagetest_cloud_on_qemu.py [WEB_VERSION]   # a web baked on local here

It prints what the cloud held while the test ran (the instance running, the key pair already gone)
and after it (the instance terminated, no key pair), and exits 0 when the test passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHECKS = """\
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: nginx runs
      ansible.builtin.command: systemctl is-active nginx
      changed_when: false
    - name: The machine says which image it is
      ansible.builtin.command: cat /etc/bakery/image.json
      changed_when: false
"""


def project(moto: str, client: Any) -> Path:
    """A project whose aws target is moto, with `app` (an AMI of moto's) declaring tests."""
    root = Path(tempfile.mkdtemp()) / "project"
    (root / "playbooks").mkdir(parents=True)
    shutil.copytree(ROOT / "templates", root / "templates")
    (root / "playbooks" / "app.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks: []\n")
    (root / "playbooks" / "checks.yml").write_text(CHECKS)
    vpc = client.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = client.create_security_group(GroupName="bakery-tests", Description="tests", VpcId=vpc)["GroupId"]
    target = {"kind": "aws", "region": "eu-west-1", "endpoint": moto, "encrypted": False, "communicator": "none"}
    tests = {
        "playbooks": ["playbooks/checks.yml"],
        "boot_deadline": 900,
        "http": [{"path": "/healthz", "port": 80, "status": 200, "body": "^ok web "}],
    }
    config = {
        "targets": {"aws": {**target, "subnet_id": subnet, "security_group_ids": [group]}},
        "images": {
            "app": {
                "version": "0.3",
                "source": {"aws": {"ami": "ami-0babe000000000003"}},
                "playbooks": ["playbooks/app.yml"],
                "tests": tests,
            }
        },
    }
    (root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def main() -> int:
    from cryptography.hazmat.primitives import serialization
    from typer.testing import CliRunner

    from bakery.cli.app import app
    from bakery.cli.common import TerminalReporter
    from bakery.config import load
    from bakery.config.imagetests import HttpCheck, ImageTests
    from bakery.config.targets.local import LocalTarget
    from bakery.core import catalog
    from bakery.imagetest import local
    from bakery.imagetest.base import Launched, LaunchRequest, Reach, TestKey
    from bakery.imagetest.service import Tester
    from bakery.progress import Silent
    from bakery.providers.local.provider import LocalProvider
    from bakery.workspace import Workspace
    from tests.fakes import moto_ebs
    from tests.integration.aws_world import ACCOUNT, SOURCE_AMIS, ec2

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    here = Workspace.for_project(ROOT)
    images = LocalProvider(here, Silent()).images("local", "web")
    web = catalog.select(images, name="web", version=sys.argv[1] if len(sys.argv) > 1 else None)
    amis = Path(tempfile.mkdtemp()) / "amis.json"
    amis.write_text(moto_ebs.ami_records(SOURCE_AMIS, ACCOUNT))
    with moto_ebs.running(amis) as moto:
        client = ec2(moto)
        root = project(moto, client)
        os.chdir(root)
        os.environ["BAKERY_HOME"] = str(root / ".bakery")
        baked = CliRunner().invoke(app, ["build", "app", "--target", "aws", "--no-test", "--json"])
        if baked.exit_code != 0:
            sys.stderr.write(baked.output)
            return 1
        ref = "app@" + json.loads(baked.stdout)["record"]["version"]
        vm: dict[str, Any] = {}

        def connect(launched: Launched) -> Reach:
            """The SSH step: a local VM of `web` that accepts the AWS test's own key."""
            (instance,) = client.describe_instances(InstanceIds=[launched.id])["Reservations"][0]["Instances"]
            print(
                f"while testing: {launched.id} is {instance['State']['Name']} in {instance['SubnetId']} with key "
                f"{instance['KeyName']}; key pairs left: {client.describe_key_pairs()['KeyPairs']}; "
                f"moto's address {launched.reach.host} is not used",
                flush=True,
            )
            (private,) = (root / ".bakery" / "tests").glob("app-aws-*/id_ed25519")
            key = serialization.load_ssh_private_key(private.read_bytes(), None)
            public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            request = LaunchRequest(
                web,
                "local",
                LocalTarget(kind="local", accelerator="auto"),
                ImageTests(http=(HttpCheck(path="/healthz", port=80),)),
                f"qemu-{launched.id[-8:]}",
                TestKey(private, public.decode()),
                Path(tempfile.mkdtemp()),
            )
            vm.update(request=request, launcher=local.make(here, Silent()))
            booted = vm["launcher"].launch(request)
            print(f"SSH step: a VM of {web.ref} {booted.where}", flush=True)
            return booted.reach

        tester = Tester(
            load.load(root / "images.yaml"), Workspace(root / ".bakery"), TerminalReporter(), connect=connect
        )
        try:
            run = tester.test(ref, "aws")
        finally:
            if "request" in vm:
                print(f"stopped: {vm['launcher'].cleanup(vm['request'])}", flush=True)
        states = [
            (i["InstanceId"], i["State"]["Name"])
            for r in client.describe_instances()["Reservations"]
            for i in r["Instances"]
        ]
        print(f"after: {run.result}; passed {list(run.passed)}; failed {list(run.failed)}")
        print(f"after: instances {states}; key pairs {client.describe_key_pairs()['KeyPairs']}")
        return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
