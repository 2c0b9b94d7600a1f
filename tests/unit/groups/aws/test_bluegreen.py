"""The green group of an AWS blue-green rollout (bakery/groups/aws/bluegreen.py): CreateAutoScalingGroup by
equality, its name and the capacity read back."""

from __future__ import annotations

from bakery.groups.aws.bluegreen import green_name, green_request, parse_capacity


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
