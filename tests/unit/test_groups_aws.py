"""The AWS group driver's pure parts, by equality: the requests it sends (StartInstanceRefresh,
CreateLaunchTemplateVersion, CreateAutoScalingGroup), the marks and history it keeps within AWS's
limits, how it reads AWS's answers, and its poll budget."""

from __future__ import annotations

import pytest

from bakery.config.models import AwsGroup, AwsTarget, Group, Strategy
from bakery.core.catalog import ImageRecord
from bakery.errors import ConfigError, UsageError
from bakery.groups.aws import requests as aws_requests
from bakery.groups.aws.bluegreen import green_name, green_request, parse_capacity
from bakery.groups.aws.driver import make
from bakery.groups.aws.marks import (
    Mark,
    decode_entry,
    encode_entry,
    made_by_bakery,
    parse_template,
    parse_version_description,
    version_description,
)
from bakery.groups.aws.resources import template_of
from bakery.groups.base import HistoryEntry, Release
from bakery.groups.strategy import plan
from bakery.progress import Silent
from bakery.workspace import Workspace

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


def entry(reason: str | None = None, who: str = "alice@laptop") -> HistoryEntry:
    return HistoryEntry(
        id="r-0123456789ab",
        kind="rollout",
        started="2026-03-01T10:00:00Z",
        who=who,
        from_=Release("web@1.0.0", "ami-0aaaaaaaaaaaaaaaa", "lt-0abc:1"),
        to=Release("web@1.0.1", "ami-0bbbbbbbbbbbbbbbb", "lt-0abc:2"),
        strategy="canary",
        result="rolled-back",
        finished="2026-03-01T10:05:00Z",
        reason=reason,
    )


def test_a_history_entry_round_trips_through_one_tag() -> None:
    original = entry("the gate failed: alarm web-5xx is ALARM")
    value = encode_entry(original)
    assert len(value) <= 256
    assert decode_entry("r-0123456789ab", value, "lt-0abc") == original


def test_a_long_reason_and_who_are_shortened_to_fit_awss_256_characters() -> None:
    value = encode_entry(entry("x" * 400, who="github:" + "y" * 300))
    assert len(value) == 256
    decoded = decode_entry("r-0123456789ab", value, "lt-0abc")
    assert decoded is not None and decoded.reason is not None and decoded.reason.endswith("…")
    assert decoded.to == Release("web@1.0.1", "ami-0bbbbbbbbbbbbbbbb", "lt-0abc:2")


def test_an_entry_without_a_previous_release_and_foreign_values() -> None:
    first = HistoryEntry(
        "r-000000000001", "rollout", "2026-03-01T10:00:00Z", "a@b", None, Release(None, "ami-1"), "rolling", "running"
    )
    assert decode_entry("r-000000000001", encode_entry(first), "lt-0abc") == first
    assert decode_entry("r-1", "written by someone else", "lt-0abc") is None


def test_the_active_mark_round_trips_and_ignores_other_values() -> None:
    mark = Mark("3c1e-refresh", "r-0123456789ab", "2026-03-01T10:00:00Z", "alice@laptop", "laptop pid 42", "web@1.0.1")
    assert Mark.decode(mark.encode()) == mark
    assert Mark.decode("something else") is None and Mark.decode(None) is None


def test_the_active_mark_of_a_255_character_group_stays_readable_within_256_characters() -> None:
    green = "bg:" + green_name("w" * 255, "r-0123456789ab")
    mark = Mark(green, "r-0123456789ab", "2026-03-01T10:00:00Z", "github:" + "y" * 300, "h" * 200 + " pid 42", "x" * 99)
    value = mark.encode()
    assert len(value) == 256
    decoded = Mark.decode(value)
    assert decoded is not None
    assert (decoded.rollout, decoded.started) == ("r-0123456789ab", "2026-03-01T10:00:00Z")
    assert decoded.green is not None and decoded.green.endswith("…") and green.startswith("bg:" + decoded.green[:-1])
    assert decoded.who.startswith("github:yyy") and decoded.where.startswith("hhh") and decoded.to.startswith("xxx")


def test_templates_must_be_numbered_versions() -> None:
    assert parse_template("lt-0abc:7") == ("lt-0abc", 7)
    for alias in ("lt-0abc:$Default", "lt-0abc:$Latest", "web-lt:3"):
        with pytest.raises(UsageError, match="not a numbered launch template version"):
            parse_template(alias)


def test_version_descriptions_say_which_rollout_made_them_within_255_characters() -> None:
    text = version_description("r-0123456789ab", "web@1.0.1", "ami-0bbb", "alice@" + "h" * 400)
    assert len(text) <= 255 and text.startswith("bakery r-0123456789ab: web@1.0.1 (ami-0bbb) by alice@")
    assert parse_version_description(version_description("r-0123456789ab", "web@1.0.1", "ami-0bbb", "bob@ci")) == (
        "r-0123456789ab",
        "bob@ci",
    )
    assert not made_by_bakery("v2: new AMI") and not made_by_bakery(None)


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


def test_the_green_group_copies_blue_but_joins_no_target_group() -> None:
    copied = {
        "MinSize": 2,
        "MaxSize": 8,
        "DesiredCapacity": 4,
        "VPCZoneIdentifier": "subnet-1,subnet-2",
        "HealthCheckType": "ELB",
        "HealthCheckGracePeriod": 120,
        "MaxInstanceLifetime": 604800,
        "TerminationPolicies": ["OldestInstance"],
    }
    blue = {
        "AutoScalingGroupName": "web-asg",
        **copied,
        "TargetGroupARNs": ["arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/1"],
        "Tags": [
            {"Key": "team", "Value": "web", "PropagateAtLaunch": True},
            {"Key": "bakery:serving", "Value": "true", "PropagateAtLaunch": False},
        ],
    }
    assert green_request(blue, "web-asg-r-1", "lt-0abc", 2, "web-aws", "r-1") == {
        "AutoScalingGroupName": "web-asg-r-1",
        "LaunchTemplate": {"LaunchTemplateId": "lt-0abc", "Version": "2"},
        **copied,
        "Tags": [
            {"Key": "team", "Value": "web", "PropagateAtLaunch": True},
            {"Key": "bakery:group", "Value": "web-aws", "PropagateAtLaunch": False},
            {"Key": "bakery:serving", "Value": "false", "PropagateAtLaunch": False},
            {"Key": "bakery:rollout", "Value": "r-1", "PropagateAtLaunch": False},
        ],
    }
    assert len(green_name("x" * 300, "r-0123456789ab")) == 255
    assert parse_capacity("2,8,4") == [2, 8, 4] and parse_capacity("") is None and parse_capacity("a,b,c") is None


def test_the_template_of_a_mixed_instances_group() -> None:
    group = {
        "MixedInstancesPolicy": {
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1", "Version": "$Latest"}}
        }
    }
    ref = template_of(group)
    assert ref is not None and ref.id == "lt-1" and ref.number is None
    assert template_of({"LaunchConfigurationName": "old"}) is None


def record(*locations: str) -> ImageRecord:
    return ImageRecord("web", "1.0.1", "aws", "aws", "sha256:b", "2026", "ami-base", locations=locations)


def test_release_of_is_the_ami_in_the_groups_region_and_down_refuses(tmp_path: object) -> None:
    driver = make(Workspace(tmp_path), Silent(), lambda *a: None)  # type: ignore[arg-type]
    target = AwsTarget(kind="aws", region="eu-west-1", copy_to=("eu-central-1",))
    release = driver.release_of(record("eu-central-1:ami-c", "eu-west-1:ami-w"), target)
    assert release == Release("web@1.0.1", "ami-w", None, "sha256:b")
    with pytest.raises(UsageError, match=r"web@1\.0\.1 has no AMI in eu-west-1"):
        driver.release_of(record("eu-central-1:ami-c"), target)
    group = Group.model_validate(
        {"image": "web", "target": "aws", "aws": {"asg": "web-asg", "launch_template": "web-lt"}}
    )
    with pytest.raises(UsageError, match=r"AWS groups keep running; scale group web-aws with .*web-asg --min-size 0"):
        driver.down("web-aws", group, target)
