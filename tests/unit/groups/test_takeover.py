"""Each group driver says whether a new rollout may start over what an abandoned rollback left
(GroupDriver.refuse_takeover, bakery/rollout/replace.py), and where it may not, exactly what to do
by hand. Pure: the states are built here, and no call leaves the process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bakery.config.models import AwsTarget, GcpTarget, Group, Health, LocalGroup, LocalTarget, Strategy
from bakery.errors import RolloutRefused
from bakery.groups.aws.driver import make as aws_driver
from bakery.groups.base import ActiveRollout, GroupState
from bakery.groups.gcp.driver import make as gcp_driver
from bakery.groups.local.driver import LocalDriver
from bakery.progress import Silent
from bakery.workspace import Workspace

STUCK = "r-00000000abcd"


def state(step: str | None, kind: str) -> GroupState:
    active = ActiveRollout(STUCK, "web@1.0.0", step, 40, "2026-12-06T20:00:00Z", "ops", "host") if step else None
    return GroupState("web-eu", kind, True, None, (), active, 2)


class Ec2:
    def describe_launch_templates(self, **key: Any) -> dict[str, Any]:
        assert key == {"LaunchTemplateNames": ["web-lt"]}
        return {"LaunchTemplates": [{"LaunchTemplateId": "lt-0123", "LaunchTemplateName": "web-lt"}]}


AWS_GROUP = Group.model_validate(
    {"image": "web", "target": "aws", "aws": {"asg": "web-asg", "launch_template": "web-lt"}}
)
AWS_TARGET = AwsTarget(kind="aws", region="eu-west-1")


def test_aws_takes_over_a_group_at_rest(tmp_path: Path) -> None:
    driver = aws_driver(Workspace(tmp_path), Silent(), lambda *a: pytest.fail("no call"))  # type: ignore[arg-type]
    driver.refuse_takeover("web-eu", AWS_GROUP, AWS_TARGET, state(None, "aws"), STUCK)


def test_aws_refuses_while_the_rollbacks_refresh_runs_naming_the_command_that_stops_it(tmp_path: Path) -> None:
    driver = aws_driver(Workspace(tmp_path), Silent(), lambda *a: pytest.fail("no call"))  # type: ignore[arg-type]
    with pytest.raises(RolloutRefused) as refused:
        driver.refuse_takeover("web-eu", AWS_GROUP, AWS_TARGET, state("instance refresh InProgress", "aws"), STUCK)
    assert refused.value.message.startswith(f"group web-eu: the instance refresh of rollback {STUCK} still runs (")
    assert refused.value.hint == (
        "stop it by hand: `aws autoscaling cancel-instance-refresh --auto-scaling-group-name web-asg --region "
        "eu-west-1`; once `bakery status web-eu` shows no rollout under way, run this command again"
    )


def test_aws_refuses_a_half_done_blue_green_swap_saying_what_to_do_by_hand(tmp_path: Path) -> None:
    driver = aws_driver(Workspace(tmp_path), Silent(), lambda service, *a: Ec2())  # type: ignore[arg-type]
    with pytest.raises(RolloutRefused) as refused:
        driver.refuse_takeover("web-eu", AWS_GROUP, AWS_TARGET, state("blue-green", "aws"), STUCK)
    assert f"the blue-green swap of rollback {STUCK} is half done" in refused.value.message
    assert refused.value.hint is not None
    assert "tagged bakery:group=web-eu" in refused.value.hint
    assert "--force-delete --region eu-west-1" in refused.value.hint
    assert "`aws ec2 delete-tags --resources lt-0123 --tags Key=bakery:active --region eu-west-1`" in refused.value.hint


GCP_GROUP = Group.model_validate(
    {
        "image": "web",
        "target": "gcp",
        "gcp": {"mig": "web-mig", "zone": "europe-west1-b", "backend_service": "web-bs"},
    }
)
GCP_TARGET = GcpTarget(kind="gcp", project="shop-prod-1", zone="europe-west1-b")


def test_gcp_takes_over_a_mig_the_rollback_moved_or_left_stopped(tmp_path: Path) -> None:
    driver = gcp_driver(Workspace(tmp_path), Silent(), lambda *a: pytest.fail("no call"))  # type: ignore[arg-type]
    for step in (None, "stopped (OPPORTUNISTIC)", "replacing"):
        driver.refuse_takeover("web-eu", GCP_GROUP, GCP_TARGET, state(step, "gcp"), STUCK)


def test_gcp_refuses_a_half_done_blue_green_swap_saying_what_to_do_by_hand(tmp_path: Path) -> None:
    driver = gcp_driver(Workspace(tmp_path), Silent(), lambda *a: pytest.fail("no call"))  # type: ignore[arg-type]
    with pytest.raises(RolloutRefused) as refused:
        driver.refuse_takeover(
            "web-eu", GCP_GROUP, GCP_TARGET, state("blue-green: web-mig-r-1 beside web-mig", "gcp"), STUCK
        )
    assert f"the blue-green swap of rollback {STUCK} is half done" in refused.value.message
    assert refused.value.hint == (
        "by hand, keep the MIG that runs the image to keep in backend service web-bs; take the other out of it "
        "(`gcloud compute backend-services remove-backend web-bs --instance-group OTHER --instance-group-zone "
        "europe-west1-b --global --project shop-prod-1`) and resize it to 0 (`gcloud compute instance-groups "
        "managed resize OTHER --size 0 --zone europe-west1-b --project shop-prod-1`); then run this command again"
    )


def test_local_takes_over_always(tmp_path: Path) -> None:
    group = Group(
        image="web",
        target="local",
        local=LocalGroup(size=2, port=18080, memory=256, cpus=1),
        strategy=Strategy(type="rolling"),
        health=Health(),
    )
    LocalDriver(Workspace(tmp_path), Silent()).refuse_takeover(
        "web-eu", group, LocalTarget(kind="local", accelerator="tcg"), state("anything", "local"), STUCK
    )
