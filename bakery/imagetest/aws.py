"""Test instances of AMIs: one EC2 instance in the target's network (its subnet and security
groups), reached by SSH with a key made for the test.

The key: its public half is imported as an EC2 key pair `bakery-test-<run>` for the launch only
(the instance's cloud-init copies it at first boot) and deleted as soon as the instance exists;
its private half stays in the run's directory until the test ends. The instance carries the tag
`bakery:test-run=<run>` from its creation (RunInstances' TagSpecifications, with the run as its
ClientToken: a retried launch never makes a second one), and the cleanup terminates it whether
or not launch() returned, and waits until EC2 says terminated: by its id when RunInstances
answered (a search right after a launch may not see it yet: DescribeInstances is eventually
consistent), else by its tag and its client token; when RunInstances was sent but no answer came
back (a signal, a lost answer), the search is repeated for cloud.LEFTOVER_GRACE_SECONDS before
the cleanup concludes that EC2 made nothing.

Its life is bounded (bakery.imagetest.lifetime): its user data powers it off after the bound,
which terminates it, and it carries its deadline in the tag `bakery:test-expires`; sweep() removes
the marked instances of the target's region whose deadline has passed (left by a killed bakery):
only those with the run tag AND bakery's key pair name or Name tag (`bakerys`), so an unrelated
instance someone tagged `bakery:test-run` is never terminated.
The target's security groups must let bakery's machine reach port 22 and the checks' ports.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from bakery import runner
from bakery.config import kinds
from bakery.config.targets.aws import AwsTarget
from bakery.errors import ProviderError, UsageError
from bakery.imagetest import lifetime
from bakery.imagetest.base import Launched, LaunchRequest, Reach
from bakery.imagetest.cloud import CloudLauncher, stand_in
from bakery.progress import Reporter
from bakery.providers.aws.errors import aws_errors
from bakery.providers.aws.provider import AwsProvider, default_clients
from bakery.providers.base import ClientFactory
from bakery.workspace import Workspace

RUN_TAG = "bakery:test-run"
EXPIRES_TAG = "bakery:test-expires"
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
STATE_DEADLINE_SECONDS = 600.0
NOT_FOUND = "InvalidInstanceID.NotFound"
# How each ssh_interface names the address a test connects to.
ADDRESSES = {
    "public_ip": "PublicIpAddress",
    "private_ip": "PrivateIpAddress",
    "public_dns": "PublicDnsName",
    "private_dns": "PrivateDnsName",
}
_SENT = ""  # RunInstances was sent, no answer came back


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> AwsLauncher:
    return AwsLauncher(reporter, clients or default_clients)


def key_name(request: LaunchRequest) -> str:
    return f"bakery-test-{request.run}"


def bakerys(instance: dict[str, Any], tags: dict[Any, Any]) -> bool:
    """Whether a tagged instance is one bakery launched: besides its run tag, its key pair is the
    run's (`bakery-test-<run>`) or its Name tag is the one bakery gives (`bakery-test-<image>-<run>`).
    A stray `bakery:test-run` tag on another instance is not enough for the sweep to end it."""
    run = str(tags.get(RUN_TAG) or "")
    name = str(tags.get("Name") or "")
    if not run:
        return False
    return instance.get("KeyName") == f"bakery-test-{run}" or (
        name.startswith("bakery-test-") and name.endswith(f"-{run}")
    )


def user_data(minutes: int) -> str:
    """cloud-init user data that powers the instance off `minutes` after its boot (after
    cloud-init has finished): the bound on its life, whatever becomes of bakery."""
    return (
        "#cloud-config\n"
        "# bakery: a test instance powers off (and so terminates) when its time is up\n"
        "power_state:\n"
        "  mode: poweroff\n"
        f"  delay: {minutes}\n"
        '  message: "bakery: the test instance\'s time is up"\n'
    )


def run_instances_params(request: LaunchRequest, spec: AwsTarget, ami: str, *, now: dt.datetime) -> dict[str, Any]:
    """RunInstances' arguments for a test instance (pure): the target's network, the test's key
    pair, the run's tag and its deadline from its creation, the user data that ends it then (a
    poweroff terminates it), and the run as the idempotency token."""
    minutes = lifetime.life_minutes(request.tests)
    tags = [
        {"Key": "Name", "Value": request.name},
        {"Key": RUN_TAG, "Value": request.run},
        {"Key": EXPIRES_TAG, "Value": lifetime.rfc3339(now + dt.timedelta(minutes=minutes))},
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
        "UserData": user_data(minutes),
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


class AwsLauncher(CloudLauncher):
    def __init__(self, reporter: Reporter, clients: ClientFactory, **timing: float) -> None:
        super().__init__(reporter, clients, **timing)
        # run -> the instance id RunInstances answered, or _SENT while it has not answered
        self._launched: dict[str, str] = {}

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
        params = run_instances_params(request, spec, amis[spec.region], now=dt.datetime.now(dt.UTC))
        self._launched[request.run] = _SENT  # from here on, EC2 may have made it whatever we hear
        with aws_errors("launch the test instance"):
            answer = ec2.run_instances(**params)
        instance_id = str(answer["Instances"][0]["InstanceId"])
        self._launched[request.run] = instance_id
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
        nowhere = stand_in("EC2", AwsProvider.endpoint(spec))
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
        launched = self._launched.pop(request.run, None)
        if launched:  # its id: a search right after the launch may not see it yet, a termination does
            ids = [launched]
        else:
            ids = self._search(ec2, request)
            if launched == _SENT and not ids:
                note = f"the launch in {spec.region} got no answer: looking for its instance"
                ids = self._look_again(note, lambda: self._search(ec2, request))
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

    def sweep(self, request: LaunchRequest) -> list[str]:
        spec = kinds.typed(request.spec, AwsTarget, f"target '{request.target}'")
        ec2 = self.ec2(spec)
        now = dt.datetime.now(dt.UTC)
        expired: dict[str, str] = {}
        with aws_errors("look for test instances left by earlier runs"):
            for instance in self._described(ec2, [{"Name": "tag-key", "Values": [RUN_TAG]}]):
                tags = {t.get("Key"): t.get("Value") for t in instance.get("Tags", []) if isinstance(t, dict)}
                if RUN_TAG not in tags or instance.get("State", {}).get("Name") == "shutting-down":
                    continue
                if not bakerys(instance, tags):
                    continue  # tagged by hand or by another tool: never terminated here
                ends = lifetime.deadline(tags.get(EXPIRES_TAG), instance.get("LaunchTime"))
                if ends is not None and ends <= now:
                    run = re.sub(r"[^A-Za-z0-9_-]", "?", str(tags[RUN_TAG])[:64])
                    expired[str(instance["InstanceId"])] = f"run {run}, its time was up at {lifetime.rfc3339(ends)}"
        if not expired:
            return []
        with aws_errors("terminate test instances left by earlier runs"):
            ec2.terminate_instances(InstanceIds=sorted(expired))
        return [f"test instance {i} in {spec.region} ({why}): terminated" for i, why in sorted(expired.items())]

    def console(self, launched: Launched) -> str:
        return ""  # EC2's console output lags minutes behind the boot: it would say nothing yet

    def _described(self, ec2: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The instances, not yet terminated, that match `filters` (every page)."""
        live = [*filters, {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
        pages = ec2.get_paginator("describe_instances").paginate(Filters=live)
        return [i for page in pages for r in page.get("Reservations", []) for i in r.get("Instances", [])]

    def _search(self, ec2: Any, request: LaunchRequest) -> list[str]:
        """The ids of the run's instances, by its tag or by its client token (one look)."""
        found: set[str] = set()
        with aws_errors("find the test instance"):
            for by in (
                {"Name": f"tag:{RUN_TAG}", "Values": [request.run]},
                {"Name": "client-token", "Values": [request.run]},
            ):
                found.update(str(i["InstanceId"]) for i in self._described(ec2, [by]))
        return sorted(found)

    def _until(self, ec2: Any, instance_id: str, wanted: Any, what: str) -> dict[str, Any]:
        """The instance once `wanted(state)`; ProviderError when it ends up elsewhere or takes too long.
        Right after its launch, EC2 may not know the id yet (InvalidInstanceID.NotFound): looked again."""
        from botocore.exceptions import ClientError

        deadline = time.monotonic() + STATE_DEADLINE_SECONDS
        while True:
            if what == "running":  # a cleanup goes on after a signal (runner.cleanup_phase)
                runner.check_interrupted(f"waiting for test instance {instance_id}")
            try:
                with aws_errors(f"read test instance {instance_id}"):
                    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
            except ProviderError as exc:
                cause = exc.__cause__
                if not isinstance(cause, ClientError) or cause.response["Error"].get("Code") != NOT_FOUND:
                    raise
                found = {"State": {"Name": "not known to EC2 yet"}}
            state = found.get("State", {}).get("Name", "?")
            if wanted(state):
                return dict(found)
            if what == "running" and state in ("shutting-down", "terminated", "stopped"):
                raise ProviderError(f"test instance {instance_id} is {state} instead of running")
            if time.monotonic() + self.poll_seconds > deadline:
                raise ProviderError(
                    f"test instance {instance_id} is still {state}, not {what}, after {STATE_DEADLINE_SECONDS:g}s"
                )
            time.sleep(self.poll_seconds)
