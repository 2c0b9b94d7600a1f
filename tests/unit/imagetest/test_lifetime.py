"""The bound on a cloud test instance's life, and how each cloud's launch request carries it:
GCE's scheduling.maxRunDuration with DELETE, EC2's poweroff user data (a terminating shutdown)
and its bakery:test-expires tag; and how a deadline is read back from what a cloud says."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
import yaml

from bakery.config.imagetests import ImageTests
from bakery.config.targets.aws import AwsTarget
from bakery.config.targets.gcp import GcpTarget
from bakery.core.catalog import ImageRecord
from bakery.imagetest import aws, gcp, lifetime
from bakery.imagetest.base import LaunchRequest, TestKey

NOW = dt.datetime(2026, 12, 6, 17, 30, 5, tzinfo=dt.UTC)


def request_for(spec: object, tests: ImageTests) -> LaunchRequest:
    record = ImageRecord("web", "1.2.0", "t", "aws", "sha256:" + "0" * 64, "2026-12-06T00:00:00Z", "base")
    key = TestKey(Path("/nonexistent/id_ed25519"), "ssh-ed25519 AAAA bakery-test-r1")
    return LaunchRequest(record, "t", spec, tests, "r1", key, Path("/nonexistent"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("boot_deadline", "minutes"),
    [(300, 75), (10, 71), (60, 71), (61, 72), (7200, 190)],
)
def test_the_bound_is_the_boot_deadline_an_hour_of_checks_and_ten_minutes_in_whole_minutes(
    boot_deadline: int, minutes: int
) -> None:
    tests = ImageTests(http=(), boot_deadline=boot_deadline)
    assert lifetime.life_minutes(tests) == minutes
    assert lifetime.life_seconds(tests) == minutes * 60
    assert lifetime.life_seconds(tests) <= lifetime.MAX_LIFE_SECONDS


def test_an_ec2_test_instance_powers_off_into_termination_and_carries_its_deadline() -> None:
    spec = AwsTarget.model_validate({"kind": "aws", "region": "eu-west-1"})
    params = aws.run_instances_params(request_for(spec, ImageTests()), spec, "ami-1", now=NOW)
    assert params["InstanceInitiatedShutdownBehavior"] == "terminate"
    tags = {t["Key"]: t["Value"] for t in params["TagSpecifications"][0]["Tags"]}
    assert tags["bakery:test-run"] == "r1"
    assert tags["bakery:test-expires"] == "2026-12-06T18:45:05Z"  # 75 minutes on
    data = params["UserData"]
    assert data.startswith("#cloud-config\n")
    assert yaml.safe_load(data)["power_state"] == {
        "mode": "poweroff",
        "delay": 75,
        "message": "bakery: the test instance's time is up",
    }
    base64.b64encode(data.encode())  # plain ASCII: boto3 encodes it as EC2 wants


def test_a_gce_test_instance_is_deleted_by_gce_when_its_time_is_up() -> None:
    from google.cloud import compute_v1

    spec = GcpTarget.model_validate({"kind": "gcp", "project": "bakery-demo", "zone": "europe-west1-b"})
    body = gcp.instance_body(request_for(spec, ImageTests(boot_deadline=600)), spec, "projects/p/global/images/i")
    assert body["scheduling"] == {"maxRunDuration": {"seconds": "4800"}, "instanceTerminationAction": "DELETE"}
    assert body["labels"] == {"bakery-test-run": "r1"}
    # The REST field names are the client's own: the body survives its typed form unchanged.
    import json

    instance = compute_v1.Instance.from_json(json.dumps(body))
    assert instance.scheduling.max_run_duration.seconds == 4800
    assert instance.scheduling.instance_termination_action == "DELETE"


@pytest.mark.parametrize(
    ("expires", "started", "life", "expected"),
    [
        ("2026-12-06T18:45:05Z", None, None, "2026-12-06T18:45:05+00:00"),
        (None, "2026-12-06T09:00:00.123-08:00", 4500, "2026-12-06T18:15:00.123000+00:00"),
        (None, dt.datetime(2026, 12, 6, 17, 0, tzinfo=dt.UTC), None, "2026-12-06T20:10:00+00:00"),
        ("soon", "2026-12-06T17:00:00Z", 10**9, "2026-12-06T20:10:00+00:00"),  # unreadable: the most
        ("2026-12-06T18:45:05", None, None, None),  # no time zone
        ("x" * 500, "", None, None),
        (["2026-12-06T18:45:05Z"], None, None, None),
    ],
)
def test_a_deadline_read_back_from_a_cloud_is_taken_only_when_well_formed(
    expires: object, started: object, life: object, expected: str | None
) -> None:
    found = lifetime.deadline(expires, started, life)
    assert (found.astimezone(dt.UTC).isoformat() if found else None) == expected
