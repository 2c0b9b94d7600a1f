"""The AWS group driver's requests (bakery/groups/aws/requests.py), by equality: StartInstanceRefresh,
CreateLaunchTemplateVersion and its instance tags within AWS's limits, how it reads a refresh's outcome and
progress, and its poll budget."""

from __future__ import annotations

import pytest

from bakery.config.models import AwsGroup, Strategy
from bakery.errors import ConfigError, UsageError
from bakery.groups.aws import requests as aws_requests
from bakery.groups.strategy import plan

SETTINGS = AwsGroup(asg="web-asg", launch_template="web-lt", instance_warmup=30, alarms=("web-5xx", "web-latency"))


def test_rolling_refresh_is_pinned_to_the_numbered_version_with_the_plans_percentages() -> None:
    rolling = plan(Strategy(type="rolling", batch_size=2), 8)
    assert aws_requests.refresh_request("web-asg", "lt-0abc", 7, rolling, SETTINGS, auto_rollback=True) == {
        "AutoScalingGroupName": "web-asg",
        "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": "lt-0abc", "Version": "7"}},
        "Preferences": {
            "MinHealthyPercentage": 100,
            "MaxHealthyPercentage": 125,
            "InstanceWarmup": 30,
            "SkipMatching": True,
            "AutoRollback": True,
            "AlarmSpecification": {"Alarms": ["web-5xx", "web-latency"]},
        },
    }


def test_canary_refresh_has_a_checkpoint_per_wave_held_for_the_canary_bake_time() -> None:
    canary = plan(Strategy(type="canary", canary_size=1, batch_size="50%", bake_seconds=300), 4)
    request = aws_requests.refresh_request(
        "web-asg", "lt-0abc", 3, canary, AwsGroup(asg="a", launch_template="b"), auto_rollback=True
    )
    assert request["Preferences"] == {
        "MinHealthyPercentage": 100,
        "MaxHealthyPercentage": 150,
        "InstanceWarmup": 60,
        "SkipMatching": True,
        "AutoRollback": True,
        "CheckpointPercentages": [25, 75, 100],
        "CheckpointDelay": 300,
    }


def test_a_restoring_refresh_has_no_checkpoints_no_auto_rollback_and_no_alarms() -> None:
    canary = plan(Strategy(type="canary", canary_size=1, bake_seconds=300), 4)
    request = aws_requests.refresh_request(
        "web-asg", "lt-0abc", 1, canary, SETTINGS, auto_rollback=False, checkpoints=False, alarms=False
    )
    assert "CheckpointPercentages" not in request["Preferences"] and request["Preferences"]["AutoRollback"] is False
    assert "AlarmSpecification" not in request["Preferences"]
    assert request["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "1"


def test_new_version_copies_the_source_and_sets_only_ami_and_tags() -> None:
    specs = [{"ResourceType": "instance", "Tags": [{"Key": "bakery:image", "Value": "web"}]}]
    assert aws_requests.version_request("lt-0abc", 4, "ami-0new", specs, "bakery r-1: web@1.0.1") == {
        "LaunchTemplateId": "lt-0abc",
        "SourceVersion": "4",
        "VersionDescription": "bakery r-1: web@1.0.1",
        "LaunchTemplateData": {"ImageId": "ami-0new", "TagSpecifications": specs},
    }


def test_instance_tags_join_the_templates_own_and_replace_an_older_rollouts() -> None:
    source = [
        {"ResourceType": "volume", "Tags": [{"Key": "backup", "Value": "daily"}]},
        {
            "ResourceType": "instance",
            "Tags": [{"Key": "team", "Value": "web"}, {"Key": "bakery:rollout", "Value": "r-old"}],
        },
    ]
    tags = {"bakery:image": "web", "bakery:rollout": "r-new"}
    assert aws_requests.instance_tag_specs(source, tags) == [
        {"ResourceType": "volume", "Tags": [{"Key": "backup", "Value": "daily"}]},
        {
            "ResourceType": "instance",
            "Tags": [
                {"Key": "team", "Value": "web"},
                {"Key": "bakery:image", "Value": "web"},
                {"Key": "bakery:rollout", "Value": "r-new"},
            ],
        },
    ]
    assert aws_requests.instance_tag_specs([], {"a": "b"}) == [
        {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}
    ]


def test_too_many_instance_tags_are_refused_before_any_version_exists() -> None:
    crowded = [{"ResourceType": "instance", "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(48)]}]
    with pytest.raises(ConfigError, match="exceed AWS's limit of 50"):
        aws_requests.instance_tag_specs(
            crowded, {"bakery:image": "web", "bakery:version": "1.0.1", "bakery:rollout": "r"}
        )


def test_watching_stays_within_12_calls_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAKERY_POLL_SECONDS", raising=False)
    for calls in range(1, 12):
        assert calls * 60 / aws_requests.poll_seconds(calls) <= 12
    assert aws_requests.poll_seconds(1) == 5.0 and aws_requests.poll_seconds(4) == 20.0
    monkeypatch.setenv("BAKERY_POLL_SECONDS", "0.1")
    assert aws_requests.poll_seconds(4) == 0.1 and aws_requests.production_poll_seconds(4) == 20.0
    monkeypatch.setenv("BAKERY_POLL_SECONDS", "soon")
    with pytest.raises(UsageError, match="BAKERY_POLL_SECONDS"):
        aws_requests.poll_seconds(4)


def test_outcomes_carry_awss_own_reason() -> None:
    assert aws_requests.outcome_error({"Status": "Successful"}, "web-asg") is None
    failed = aws_requests.outcome_error(
        {"InstanceRefreshId": "abc", "Status": "Failed", "StatusReason": "Instances failed to launch"}, "web-asg"
    )
    assert failed is not None and failed.exit_code == 1
    assert failed.message == "instance refresh abc of web-asg ended Failed: Instances failed to launch"
    rolled = aws_requests.outcome_error(
        {
            "InstanceRefreshId": "abc",
            "Status": "RollbackSuccessful",
            "RollbackDetails": {"RollbackReason": "alarm web-5xx"},
        },
        "web-asg",
    )
    assert (
        rolled is not None and rolled.message == "instance refresh abc of web-asg was rolled back by AWS: alarm web-5xx"
    )
    cancelled = aws_requests.outcome_error({"InstanceRefreshId": "abc", "Status": "Cancelled"}, "web-asg")
    assert (
        cancelled is not None
        and cancelled.message == "instance refresh abc of web-asg was cancelled (AWS gave no reason)"
    )


def test_progress_lines() -> None:
    assert (
        aws_requests.progress_line(
            {
                "InstanceRefreshId": "1a2b3c4d-5e6f",
                "Status": "InProgress",
                "PercentageComplete": 25,
                "InstancesToUpdate": 3,
            }
        )
        == "instance refresh 1a2b3c4d: InProgress, 25% done, 3 to update"
    )
    rolling_back = {
        "InstanceRefreshId": "1a2b3c4d",
        "Status": "RollbackInProgress",
        "StatusReason": "alarm web-5xx",
        "RollbackDetails": {"PercentageCompleteOnRollback": 50, "InstancesToUpdateOnRollback": 1},
    }
    assert (
        aws_requests.progress_line(rolling_back)
        == "instance refresh 1a2b3c4d: rolling back, 50% done, 1 to update (alarm web-5xx)"
    )
