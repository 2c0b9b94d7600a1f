"""Test instances of AMIs: one EC2 instance in the target's network (its subnet and security
groups), reached by SSH with a key made for the test.

The key: its public half is imported as an EC2 key pair `bakery-test-<run>` for the launch only
(the instance's cloud-init copies it at first boot) and deleted as soon as the instance exists;
its private half stays in the run's directory until the test ends. The instance carries the tag
`bakery:test-run=<run>` from its creation (RunInstances' TagSpecifications, with the run as its
ClientToken: a retried launch never makes a second one), and the cleanup terminates whatever
carries that tag, whether or not launch() returned, and waits until EC2 says terminated.
The target's security groups must let bakery's machine reach port 22 and the checks' ports.
"""

from __future__ import annotations

import time
from typing import Any

from bakery import runner
from bakery.config import kinds
from bakery.config.targets.aws import AwsTarget
from bakery.errors import ProviderError, UsageError
from bakery.imagetest.base import Launched, LaunchRequest, Reach, stand_in_endpoint
from bakery.progress import Reporter
from bakery.providers.aws.errors import aws_errors
from bakery.providers.aws.provider import AwsProvider, default_clients
from bakery.providers.base import ClientFactory
from bakery.workspace import Workspace

RUN_TAG = "bakery:test-run"
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
STATE_DEADLINE_SECONDS = 600.0
POLL_SECONDS = 2.0
# How each ssh_interface names the address a test connects to.
ADDRESSES = {
    "public_ip": "PublicIpAddress",
    "private_ip": "PrivateIpAddress",
    "public_dns": "PublicDnsName",
    "private_dns": "PrivateDnsName",
}


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> AwsLauncher:
    return AwsLauncher(reporter, clients or default_clients)


def key_name(request: LaunchRequest) -> str:
    return f"bakery-test-{request.run}"


def run_instances_params(request: LaunchRequest, spec: AwsTarget, ami: str) -> dict[str, Any]:
    """RunInstances' arguments for a test instance (pure): the target's network, the test's key
    pair, the run's tag from its creation, and the run as the idempotency token."""
    tags = [
        {"Key": "Name", "Value": request.name},
        {"Key": RUN_TAG, "Value": request.run},
        {"Key": "bakery:image", "Value": request.record.ref},
    ]
    params: dict[str, Any] = {
        "ImageId": ami,
        "InstanceType": spec.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "KeyName": key_name(request),
        "ClientToken": request.run,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
    }
    if spec.iam_instance_profile:
        params["IamInstanceProfile"] = {"Name": spec.iam_instance_profile}
    if spec.subnet_id:
        interface: dict[str, Any] = {"DeviceIndex": 0, "SubnetId": spec.subnet_id, "DeleteOnTermination": True}
        if spec.security_group_ids:
            interface["Groups"] = list(spec.security_group_ids)
        interface["AssociatePublicIpAddress"] = spec.ssh_interface in ("public_ip", "public_dns")
        params["NetworkInterfaces"] = [interface]
    elif spec.security_group_ids:
        params["SecurityGroupIds"] = list(spec.security_group_ids)
    return params


class AwsLauncher:
    def __init__(self, reporter: Reporter, clients: ClientFactory) -> None:
        self.reporter = reporter
        self.clients = clients

    def ec2(self, spec: AwsTarget) -> Any:
        return self.clients("ec2", spec.region, AwsProvider.endpoint(spec))

    def launch(self, request: LaunchRequest) -> Launched:
        spec = kinds.typed(request.spec, AwsTarget, f"target '{request.target}'")
        if spec.ssh_interface not in ADDRESSES:
            raise UsageError(
                f"target '{request.target}' reaches instances through {spec.ssh_interface}: "
                "image tests connect over SSH and HTTP (ssh_interface public_ip or private_ip)"
            )
        amis = dict(location.split(":", 1) for location in request.record.locations)
        if spec.region not in amis:
            raise ProviderError(f"{request.record.ref} has no AMI in {spec.region} (it is in {', '.join(amis)})")
        ec2 = self.ec2(spec)
        with aws_errors("import the test's SSH key"):
            ec2.import_key_pair(KeyName=key_name(request), PublicKeyMaterial=request.key.public.encode())
        with aws_errors("launch the test instance"):
            answer = ec2.run_instances(**run_instances_params(request, spec, amis[spec.region]))
        instance_id = str(answer["Instances"][0]["InstanceId"])
        # The instance holds the key from here on: the key pair is not needed any longer.
        with aws_errors("delete the test's key pair"):
            ec2.delete_key_pair(KeyName=key_name(request))
        found = self._until(ec2, instance_id, lambda state: state == "running", "running")
        address = found.get(ADDRESSES[spec.ssh_interface])
        if not address:
            raise ProviderError(
                f"test instance {instance_id} has no {ADDRESSES[spec.ssh_interface]}",
                hint="give the target a subnet that assigns one, or set ssh_interface: private_ip",
            )
        network = ", ".join([spec.subnet_id or "default subnet", *spec.security_group_ids])
        endpoint = AwsProvider.endpoint(spec)
        nowhere = f"its EC2 endpoint {endpoint} is on this machine: a stand-in" if stand_in_endpoint(endpoint) else None
        reach = Reach(str(address), 22, spec.ssh_username)
        return Launched(instance_id, f"in {spec.region} ({network})", reach, spec, nowhere)

    def alive(self, launched: Launched) -> bool:
        spec = kinds.typed(launched.handle, AwsTarget, "the test instance's target")
        with aws_errors(f"read test instance {launched.id}"):
            answer = self.ec2(spec).describe_instances(InstanceIds=[launched.id])
        state = answer["Reservations"][0]["Instances"][0].get("State", {}).get("Name")
        return state in ("pending", "running")

    def cleanup(self, request: LaunchRequest) -> list[str]:
        spec = kinds.typed(request.spec, AwsTarget, f"target '{request.target}'")
        ec2 = self.ec2(spec)
        removed: list[str] = []
        with aws_errors("find the test instance"):
            pages = ec2.get_paginator("describe_instances").paginate(
                Filters=[
                    {"Name": f"tag:{RUN_TAG}", "Values": [request.run]},
                    {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
                ]
            )
            ids = [i["InstanceId"] for page in pages for r in page.get("Reservations", []) for i in r["Instances"]]
        if ids:
            with aws_errors("terminate the test instance"):
                ec2.terminate_instances(InstanceIds=ids)
            for instance_id in ids:
                self._until(ec2, instance_id, lambda state: state == "terminated", "terminated")
                removed.append(f"test instance {instance_id} in {spec.region} (terminated)")
        with aws_errors("delete the test's key pair"):
            listed = ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [key_name(request)]}])
            if listed.get("KeyPairs"):
                ec2.delete_key_pair(KeyName=key_name(request))
                removed.append(f"key pair {key_name(request)} in {spec.region}")
        return removed

    def console(self, launched: Launched) -> str:
        return ""  # EC2's console output lags minutes behind the boot: it would say nothing yet

    def _until(self, ec2: Any, instance_id: str, wanted: Any, what: str) -> dict[str, Any]:
        """The instance once `wanted(state)`; ProviderError when it ends up elsewhere or takes too long."""
        deadline = time.monotonic() + STATE_DEADLINE_SECONDS
        while True:
            if what == "running":  # a cleanup goes on after a signal (runner.cleanup_phase)
                runner.check_interrupted(f"waiting for test instance {instance_id}")
            with aws_errors(f"read test instance {instance_id}"):
                found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
            state = found.get("State", {}).get("Name", "?")
            if wanted(state):
                return dict(found)
            if what == "running" and state in ("shutting-down", "terminated", "stopped"):
                raise ProviderError(f"test instance {instance_id} is {state} instead of running")
            if time.monotonic() + POLL_SECONDS > deadline:
                raise ProviderError(
                    f"test instance {instance_id} is still {state}, not {what}, after {STATE_DEADLINE_SECONDS:g}s"
                )
            time.sleep(POLL_SECONDS)
