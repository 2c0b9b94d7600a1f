"""How the AWS group driver reads an Auto Scaling group's launch template (bakery/groups/aws/api.py)."""

from __future__ import annotations

from bakery.groups.aws.resources import template_of


def test_the_template_of_a_mixed_instances_group() -> None:
    group = {
        "MixedInstancesPolicy": {
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1", "Version": "$Latest"}}
        }
    }
    ref = template_of(group)
    assert ref is not None and ref.id == "lt-1" and ref.number is None
    assert template_of({"LaunchConfigurationName": "old"}) is None
