"""Each group driver says whether a new rollout may start over what an abandoned rollback left
(GroupDriver.refuse_takeover, bakery/rollout/replace.py), and where it may not, exactly what to do
by hand. Pure: the states are built here, and no call leaves the process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bakery.config.models import AwsTarget, GcpTarget, Group, Health, LocalGroup, LocalTarget, Strategy
from bakery.core.provenance import gcp_stamp_labels
from bakery.errors import RolloutRefused
from bakery.groups.aws.driver import make as aws_driver
from bakery.groups.base import ActiveRollout, GroupState
from bakery.groups.gcp.driver import make as gcp_driver
from bakery.groups.local.driver import LocalDriver
from bakery.progress import Recording, Silent
from bakery.workspace import Workspace

STUCK = "r-00000000abcd"
BESIDE = f"web-mig-{STUCK}"  # the MIG a blue-green rollback made beside web-mig


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
    assert refused.value.message.startswith(f"group web-eu: the instance refresh of {STUCK} still runs (")
    assert refused.value.hint == (
        "stop it by hand: `aws autoscaling cancel-instance-refresh --auto-scaling-group-name web-asg --region "
        "eu-west-1`; once `bakery status web-eu` shows no rollout under way, run this command again"
    )


def test_aws_refuses_a_half_done_blue_green_swap_saying_what_to_do_by_hand(tmp_path: Path) -> None:
    driver = aws_driver(Workspace(tmp_path), Silent(), lambda service, *a: Ec2())  # type: ignore[arg-type]
    with pytest.raises(RolloutRefused) as refused:
        driver.refuse_takeover("web-eu", AWS_GROUP, AWS_TARGET, state("blue-green", "aws"), STUCK)
    assert f"the blue-green swap of {STUCK} is half done" in refused.value.message
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


class GcpApi:
    """The calls a GCP group's Site makes, answered from dicts as GroupApi gives them: web-mig on
    web@1.0.1 and the rollback's web-mig-<STUCK> on web@1.0.0 both serve in backend service
    web-bs (global, or in `region`), `live` first among its backends."""

    def __init__(self, live: str, *, region: str | None = None) -> None:
        self.migs_ = {"web-mig": self._mig("web-mig", "web-1-0-1"), BESIDE: self._mig(BESIDE, "web-1-0-0")}
        zone = "https://www.googleapis.com/compute/v1/projects/shop-prod-1/zones/europe-west1-b"
        order = (live, *(name for name in self.migs_ if name != live))
        regional = f"https://www.googleapis.com/compute/v1/projects/shop-prod-1/regions/{region}" if region else None
        self.service: dict[str, Any] = {
            "name": "web-bs",
            "backends": [{"group": f"{zone}/instanceGroups/{name}"} for name in order],
            **({"region": regional} if regional else {}),
        }

    @staticmethod
    def _mig(name: str, image: str) -> dict[str, Any]:
        template = f"projects/shop-prod-1/global/instanceTemplates/{image}"
        return {"name": name, "target_size": 2, "versions": [{"instance_template": template}]}

    def backend(self, name: str) -> dict[str, Any] | None:
        return self.service if name == "web-bs" else None

    def mig(self, name: str) -> dict[str, Any] | None:
        return self.migs_.get(name)

    def migs(self, flt: str) -> list[dict[str, Any]]:
        return [m for name, m in self.migs_.items() if name != "web-mig"]

    def template(self, path: str) -> dict[str, Any] | None:
        image = path.rpartition("/")[2]
        source = f"projects/shop-prod-1/global/images/{image}"
        return {"properties": {"disks": [{"boot": True, "initialize_params": {"source_image": source}}]}}

    def image(self, path: str) -> dict[str, Any] | None:
        version = path.rpartition("web-")[2].replace("-", ".")
        return {"labels": gcp_stamp_labels({"image": "web", "version": version, "state": "complete"})}


def gcp_refusal(tmp_path: Path, api: GcpApi) -> RolloutRefused:
    driver = gcp_driver(Workspace(tmp_path), Silent(), lambda *a: pytest.fail("no call"))  # type: ignore[arg-type]
    driver.api = lambda spec, where: api  # type: ignore[method-assign,assignment,return-value]
    with pytest.raises(RolloutRefused) as refused:
        driver.refuse_takeover(
            "web-eu", GCP_GROUP, GCP_TARGET, state(f"blue-green: {BESIDE} beside web-mig", "gcp"), STUCK
        )
    return refused.value


def test_gcp_refuses_a_half_done_blue_green_swap_naming_the_live_mig_and_what_to_do_by_hand(tmp_path: Path) -> None:
    refused = gcp_refusal(tmp_path, GcpApi("web-mig"))
    assert refused.message.startswith(f"group web-eu: the blue-green swap of {STUCK} is half done (")
    assert refused.hint == (
        "MIG web-mig is live (the first of backend service web-bs's backends with instances, what bakery reads the "
        f"group from) and runs web@1.0.1 [projects/shop-prod-1/global/instanceTemplates/web-1-0-1]; beside it, "
        f"web-mig-{STUCK} runs web@1.0.0 [projects/shop-prod-1/global/instanceTemplates/web-1-0-0]. By hand, keep "
        "the MIG that runs the image to keep and take the other out of web-bs, then resize it to 0; to keep web-mig: "
        f"`gcloud compute backend-services remove-backend web-bs --instance-group web-mig-{STUCK} "
        "--instance-group-zone europe-west1-b --global --project shop-prod-1` and `gcloud compute instance-groups "
        f"managed resize web-mig-{STUCK} --size 0 --zone europe-west1-b --project shop-prod-1`; then run this "
        "command again"
    )


def test_gcp_names_the_other_live_mig_and_a_regional_backend_service_as_read(tmp_path: Path) -> None:
    refused = gcp_refusal(tmp_path, GcpApi(BESIDE, region="europe-west1"))
    assert refused.hint is not None
    assert refused.hint.startswith(f"MIG web-mig-{STUCK} is live (")
    assert "beside it, web-mig runs web@1.0.1 [" in refused.hint
    assert (
        f"to keep web-mig-{STUCK}: `gcloud compute backend-services remove-backend web-bs --instance-group "
        "web-mig --instance-group-zone europe-west1-b --region europe-west1 --project shop-prod-1`" in refused.hint
    )
    assert "--global" not in refused.hint


def test_local_takes_over_always_saying_and_writing_nothing(tmp_path: Path) -> None:
    group = Group(
        image="web",
        target="local",
        local=LocalGroup(size=2, port=18080, memory=256, cpus=1),
        strategy=Strategy(type="rolling"),
        health=Health(),
    )
    reporter = Recording()
    driver = LocalDriver(Workspace(tmp_path / "home"), reporter)
    for step in (None, "wave-2", "blue-green", "restore"):  # whatever the unfinished one was doing
        # no RolloutRefused: the rollout goes on to its confirmation, the group's files untouched
        driver.refuse_takeover(
            "web-eu", group, LocalTarget(kind="local", accelerator="tcg"), state(step, "local"), STUCK
        )
    assert (reporter.phases, reporter.lines, reporter.notes, reporter.views) == ([], [], [], [])
    assert not (tmp_path / "home").exists()
