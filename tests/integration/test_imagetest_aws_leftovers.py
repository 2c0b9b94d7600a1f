"""No EC2 test instance outlives `bakery test`, against moto:

- DescribeInstances is eventually consistent right after RunInstances: the cleanup terminates the
  instance by the id RunInstances answered, and when RunInstances got no answer (a signal, a lost
  answer) it searches by the run's tag and client token until the instance shows, for a while;
- every test instance carries the bound on its life: user data that powers it off (a terminating
  shutdown) and its deadline as the tag bakery:test-expires;
- before a launch, the marked instances of killed runs whose deadline has passed are terminated
  and named (a run tag alone is not enough: bakery's Name tag or key pair must be there too);
  nothing else is touched.

moto is consistent at once: its lag is made here, with botocore's before-call event answering the
searches (DescribeInstances with filters) with nothing, as EC2 may for a moment."""

from __future__ import annotations

import base64
import datetime as dt
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from bakery.config import load
from bakery.errors import Interrupted, ProviderError
from bakery.imagetest import aws
from bakery.imagetest.base import Launched, Reach
from bakery.imagetest.service import Tester
from bakery.progress import Recording
from bakery.providers.aws.provider import default_clients
from bakery.workspace import Workspace
from tests.integration.test_imagetest_aws import instances, stand_in, tested  # noqa: F401 - fixtures


class Ec2Lag:
    """A clients factory for the launcher whose EC2 clients behave as EC2 right after a launch:
        from RunInstances on, the next `blank` searches answer no instance, and the next `unknown_reads`
    reads by id InvalidInstanceID.NotFound. `lose` makes RunInstances'
        answer go missing (as a timeout would, after EC2 made the instance), `signal` sends that signal
        when RunInstances has answered, before bakery reads the answer."""

    def __init__(self, *, blank: int, unknown_reads: int = 0, lose: bool = False, signal_on_launch: int = 0) -> None:
        self.blank = blank
        self.unknown_reads = unknown_reads
        self.unknown = 0
        self.lose = lose
        self.signal_on_launch = signal_on_launch
        self.launched = False
        self.blanked = 0

    def __call__(self, service: str, region: str, endpoint: str | None) -> Any:
        client = default_clients(service, region, endpoint)
        client.meta.events.register("after-call.ec2.RunInstances", self._after_launch)
        client.meta.events.register("before-call.ec2.DescribeInstances", self._search)
        return client

    def _after_launch(self, http_response: Any, **_: Any) -> None:
        self.launched = True
        if self.signal_on_launch:
            os.kill(os.getpid(), self.signal_on_launch)
        if self.lose:
            raise ReadTimeoutError(endpoint_url=http_response.url)

    def _search(self, params: dict[str, Any], **_: Any) -> Any:
        if self.launched and "Filter.1.Name" in params["body"] and self.blanked < self.blank:
            self.blanked += 1
            return AWSResponse(params["url"], 200, {}, None), {"Reservations": []}
        if self.launched and "InstanceId.1" in params["body"] and self.unknown < self.unknown_reads:
            self.unknown += 1
            error = {"Code": "InvalidInstanceID.NotFound", "Message": "The instance ID does not exist"}
            return AWSResponse(params["url"], 400, {}, None), {"Error": error, "ResponseMetadata": {}}
        return None


def make_tester(tested: dict[str, Any], stand_in: dict[str, Any], clients: Any, **hooks: Any) -> Tester:  # noqa: F811
    root: Path = tested["root"]

    def connect(launched: Launched) -> Reach:
        hooks.setdefault("seen", []).append(launched)
        if "on_connect" in hooks:
            hooks["on_connect"]()
        return Reach("127.0.0.1", ports={80: stand_in["port"]}, local=True)

    reporter = hooks.get("reporter") or Recording()
    launcher = aws.AwsLauncher(reporter, clients, grace_seconds=30, poll_seconds=0.05)
    return Tester(
        load.load(root / "images.yaml"), Workspace(root / ".bakery"), reporter, launcher=launcher, connect=connect
    )


def test_a_signal_after_the_launch_terminates_the_instance_by_its_id_though_no_search_sees_it(
    tested,  # noqa: F811
    stand_in,  # noqa: F811
) -> None:
    lag = Ec2Lag(blank=1000, unknown_reads=2)  # no search sees it; its first reads by id fail
    tester = make_tester(tested, stand_in, lag, on_connect=lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(Interrupted) as stopped:
        tester.test(tested["ref"], "aws")
    assert stopped.value.exit_code == 143
    assert [i["State"]["Name"] for i in instances(tested["ec2"])] == ["terminated"]
    assert tested["ec2"].describe_key_pairs()["KeyPairs"] == [] and lag.unknown == 2


@pytest.mark.parametrize("how", ["lost answer", "SIGTERM"])
def test_a_launch_without_an_answer_is_searched_for_until_ec2_shows_it(
    tested,  # noqa: F811
    stand_in,  # noqa: F811
    how: str,
) -> None:
    """RunInstances made the instance, bakery never read the answer, and the searches see nothing
    for a while (5 of them: two looks and a half, by tag and by client token)."""
    lag = Ec2Lag(blank=5, lose=how == "lost answer", signal_on_launch=signal.SIGTERM if how == "SIGTERM" else 0)
    reporter = Recording()
    tester = make_tester(tested, stand_in, lag, reporter=reporter)
    with pytest.raises(ProviderError if how == "lost answer" else Interrupted) as failed:
        tester.test(tested["ref"], "aws")
    if how == "lost answer":
        assert "AWS: launch the test instance: Read timeout on endpoint URL" in failed.value.message
    else:
        assert failed.value.exit_code == 143
    (instance,) = instances(tested["ec2"])
    assert instance["State"]["Name"] == "terminated" and lag.blanked == 5
    assert "the launch in eu-west-1 got no answer: looking for its instance for up to 30s" in reporter.notes
    assert f"removed test instance {instance['InstanceId']} in eu-west-1 (terminated)" in reporter.notes
    assert tested["ec2"].describe_key_pairs()["KeyPairs"] == []


def test_the_instance_carries_the_bound_on_its_life(tested, stand_in) -> None:  # noqa: F811
    found: list[dict[str, Any]] = []
    client = tested["ec2"]

    def look() -> None:
        (instance,) = instances(client)
        data = client.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
        shutdown = client.describe_instance_attribute(
            InstanceId=instance["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
        )
        found.append({"instance": instance, "data": data, "shutdown": shutdown})

    before = dt.datetime.now(dt.UTC)
    assert make_tester(tested, stand_in, default_clients, on_connect=look).test(tested["ref"], "aws").ok
    (seen,) = found
    user_data = base64.b64decode(seen["data"]["UserData"]["Value"]).decode()
    assert user_data.startswith("#cloud-config\n")
    assert yaml.safe_load(user_data)["power_state"]["delay"] == 75  # the default boot deadline's bound
    assert seen["shutdown"]["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    tags = {t["Key"]: t["Value"] for t in seen["instance"]["Tags"]}
    expires = dt.datetime.fromisoformat(tags["bakery:test-expires"].replace("Z", "+00:00"))
    assert dt.timedelta(minutes=74) < expires - before < dt.timedelta(minutes=76)


def test_instances_of_killed_runs_past_their_deadline_are_terminated_before_the_launch(
    tested,  # noqa: F811
    stand_in,  # noqa: F811
) -> None:
    client = tested["ec2"]
    ami = client.describe_images(Owners=["self"])["Images"][0]["ImageId"]

    def leftover(tags: dict[str, str]) -> str:
        made = client.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )
        return str(made["Instances"][0]["InstanceId"])

    past, future = "2026-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
    expired = leftover(
        {"bakery:test-run": "deadbeef01", "bakery:test-expires": past, "Name": "bakery-test-web-deadbeef01"}
    )
    running = leftover(
        {"bakery:test-run": "cafe000002", "bakery:test-expires": future, "Name": "bakery-test-web-cafe000002"}
    )
    unmarked = leftover({"bakery:test-expires": past, "Name": "someone-elses"})
    young = leftover({"bakery:test-run": "0123456789", "Name": "bakery-test-web-0123456789"})  # no deadline: just now
    # tagged as a test run by mistake (by hand, by another tool), but not launched by bakery: its
    # Name is not bakery's and its key pair not the run's: never terminated
    mistagged = leftover({"bakery:test-run": "deadbeef03", "bakery:test-expires": past, "Name": "prod-db-1"})
    reporter = Recording()
    assert make_tester(tested, stand_in, default_clients, reporter=reporter).test(tested["ref"], "aws").ok
    states = {
        i["InstanceId"]: i["State"]["Name"] for r in client.describe_instances()["Reservations"] for i in r["Instances"]
    }
    assert states[expired] == "terminated"
    assert states[running] == states[unmarked] == states[young] == states[mistagged] == "running"
    assert (
        f"removed a test instance left by an earlier run: test instance {expired} in eu-west-1 "
        "(run deadbeef01, its time was up at 2026-01-01T00:00:00Z): terminated"
    ) in reporter.notes
    assert sum("left by an earlier run" in note for note in reporter.notes) == 1
