"""The AWS group driver (bakery/groups/aws/driver.py) where it calls nothing: the release of a catalog image,
and `down`, which it refuses."""

from __future__ import annotations

import pytest

from bakery.config.models import AwsTarget, Group
from bakery.core.catalog import ImageRecord
from bakery.errors import UsageError
from bakery.groups.aws.driver import make
from bakery.groups.base import Release
from bakery.progress import Silent
from bakery.workspace import Workspace


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
