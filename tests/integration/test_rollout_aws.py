"""Rolling an Auto Scaling group on moto through the real boto3: `bakery rollout/rollback/status/
history` in-process (and once through the installed script, interrupted), and the AWS driver
driven directly where a test needs to stop between steps. moto has no instance refresh:
tests/fakes/instance_refresh.py adds it; failures are driven with set_alarm_state and by stopping
instances behind the target group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bakery.cli.app import app
from bakery.steps import Journal, execute
from tests.fakes import moto_ebs
from tests.integration.aws_groups import ASG, FAST, GROUP, World, driver_rollout

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def bakery(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture()
def world(asg_world: World) -> World:
    return asg_world


def when(check: Callable[[], bool], action: Callable[[], None]) -> threading.Thread:
    """Run `action` in the background as soon as `check()` holds (the test's hand on the cloud
    while bakery rolls the group in the foreground)."""

    def wait() -> None:
        deadline = time.monotonic() + 60
        while not check():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        action()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def at_checkpoint(world: World) -> Callable[[], bool]:
    def check() -> bool:
        found = world.refreshes()
        return bool(found) and "checkpoint" in (found[0].get("StatusReason") or "")

    return check


def numbered_everywhere(world: World, asg: str = ASG) -> None:
    """The group and every refresh name a numbered launch template version, never an alias."""
    assert world.asg(asg)["LaunchTemplate"]["Version"].isdigit()
    for refresh in world.refreshes(asg):
        assert refresh["DesiredConfiguration"]["LaunchTemplate"]["Version"].isdigit()


def test_rolling_rollout_succeeds_and_every_new_instance_carries_the_image_tags(world: World) -> None:
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 0, result.output
    assert world.images_run() == [world.amis["1.0.1"]] * 4
    numbered_everywhere(world)
    assert world.asg()["LaunchTemplate"]["Version"] == "2"
    (refresh,) = world.refreshes()
    assert refresh["Status"] == "Successful"
    assert refresh["Preferences"]["SkipMatching"] is True and refresh["Preferences"]["AutoRollback"] is True
    assert refresh["Preferences"]["AlarmSpecification"] == {"Alarms": ["web-5xx"]}
    version = world.versions()[2]
    assert version["LaunchTemplateData"]["InstanceType"] == "t3.micro"  # copied from version 1
    assert version["VersionDescription"].startswith("bakery r-")
    rollout_id = version["VersionDescription"].split()[1].rstrip(":")
    for instance in world.instances():
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags["bakery:image"] == "web" and tags["bakery:version"] == "1.0.1"
        assert tags["bakery:inputs-digest"] == "sha256:" + "b" * 64
        assert tags["bakery:rollout"] == rollout_id
        assert tags["team"] == "web"  # the launch template's own instance tags are kept
    assert set(world.targets().values()) == {"healthy"} and len(world.targets()) == 4
    status = bakery("status", GROUP, "--json")
    assert status.exit_code == 0, status.output
    assert "web@1.0.1" in status.stdout


def test_canary_holds_at_each_checkpoint_until_its_new_instances_are_healthy(moto: str, world: World) -> None:
    # targets start `initial`; the fake holds each checkpoint 5x the asked 1 s, so that a loaded machine
    # still reads the canary at its checkpoint (on AWS, bakery answers well within a delay)
    moto_ebs.set_faults(moto, refresh={**FAST, "health_warmup_seconds": 0.5, "delay_scale": 5})
    world.write_config(strategy={"type": "canary", "canary_size": 1, "batch_size": 2, "bake_seconds": 1})
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 0, result.output
    (refresh,) = world.refreshes()
    assert refresh["Preferences"]["CheckpointPercentages"] == [25, 75, 100]
    assert refresh["Preferences"]["CheckpointDelay"] == 1
    green = "bakery's gate is green ({} new instance(s) healthy, alarms not in ALARM)"
    assert "checkpoint 25%: " + green.format(1) in result.output
    assert "checkpoint 75%: " + green.format(3) in result.output
    assert f"bakery's gate is green on every instance of {ASG} (4 new instance(s) healthy" in result.output
    assert world.images_run() == [world.amis["1.0.1"]] * 4


def test_an_unhealthy_canary_fails_the_gate_and_bakery_rolls_the_refresh_back(world: World) -> None:
    world.write_config(strategy={"type": "canary", "canary_size": 1, "bake_seconds": 600})
    stopped: list[str] = []

    def stop_the_canary() -> None:
        new = [i["InstanceId"] for i in world.asg()["Instances"] if i["LaunchTemplate"]["Version"] == "2"]
        world.client("ec2").stop_instances(InstanceIds=new)
        stopped.extend(new)

    when(at_checkpoint(world), stop_the_canary)
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    (canary,) = stopped
    assert f"instance {canary} is unused in target group web-tg (Target.InvalidState)" in result.output
    (refresh,) = world.refreshes()
    assert refresh["Status"] == "RollbackSuccessful"
    assert "RollbackInstanceRefresh" in refresh["RollbackDetails"]["RollbackReason"]
    assert world.images_run() == [world.amis["1.0.0"]] * 4
    assert world.asg()["LaunchTemplate"]["Version"] == "1"
    numbered_everywhere(world)
    last = json.loads(bakery("history", GROUP, "--json").stdout)
    assert "rolled-back" in json.dumps(last)


def test_an_alarm_in_alarm_at_a_checkpoint_rolls_back_to_the_previous_ami(world: World) -> None:
    world.write_config(strategy={"type": "canary", "canary_size": 1, "bake_seconds": 600})
    when(at_checkpoint(world), lambda: world.alarm("ALARM"))
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert "web-5xx" in result.output and "ALARM" in result.output
    assert world.refreshes()[0]["Status"] == "RollbackSuccessful"
    assert world.images_run() == [world.amis["1.0.0"]] * 4
    numbered_everywhere(world)


def test_rollback_after_a_completed_rollout_refreshes_back_to_the_previous_numbered_version(world: World) -> None:
    assert bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes").exit_code == 0
    assert world.images_run() == [world.amis["1.0.1"]] * 4
    world.alarm("ALARM")  # why one rolls back: a rollback is never gated on alarms
    result = bakery("rollback", GROUP, "--yes", "--reason", "pages are slow")
    assert result.exit_code == 0, result.output
    assert world.images_run() == [world.amis["1.0.0"]] * 4
    assert world.asg()["LaunchTemplate"]["Version"] == "1"
    assert sorted(world.versions()) == [1, 2]  # no new version: version 1 again
    back, _forward = world.refreshes()
    assert back["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "1" and back["Status"] == "Successful"
    assert "AlarmSpecification" not in back["Preferences"]
    numbered_everywhere(world)
    entries = json.loads(bakery("history", GROUP, "--json").stdout)
    assert "pages are slow" in json.dumps(entries)


@pytest.mark.parametrize("symbolic", ["$Default", "$Latest"])
def test_a_group_on_a_symbolic_version_is_refused_before_anything_changes(
    moto: str, world: World, symbolic: str
) -> None:
    world.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=ASG, LaunchTemplate={"LaunchTemplateId": world.template_id, "Version": symbolic}
    )
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert symbolic in result.output and "pin a numbered version" in result.output
    assert world.refreshes() == [] and sorted(world.versions()) == [1]
    assert_no_trace_of_a_refusal(world)


def assert_no_trace_of_a_refusal(world: World) -> None:
    """A refused rollout is no rollout: status in sync (exit 0), no history record, no tag."""
    status = bakery("status", GROUP)
    assert status.exit_code == 0, status.output
    assert "unfinished" not in status.output
    assert json.loads(bakery("history", GROUP, "--json").stdout)["entries"] == []
    tags = world.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [world.template_id]}])["Tags"]
    assert [t["Key"] for t in tags if t["Key"].startswith("bakery:")] == []


def test_throttling_during_the_watch_is_survived(moto: str, world: World) -> None:
    moto_ebs.set_faults(moto, refresh=FAST, throttle=[{"action": "DescribeInstanceRefreshes", "every": 2}])
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 0, result.output
    assert world.images_run() == [world.amis["1.0.1"]] * 4


def test_a_failed_refresh_exits_1_with_aws_reason(moto: str, world: World) -> None:
    reason = "Instances failed to launch: InsufficientInstanceCapacity in eu-west-1a"
    moto_ebs.set_faults(moto, refresh={**FAST, "fail_at_checkpoint": reason})
    world.write_config(rollback=False, strategy={"type": "canary", "canary_size": 1, "bake_seconds": 1})
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert "ended Failed" in result.output and reason in result.output
    assert world.refreshes()[0]["Status"] == "Failed"


def test_a_failing_checkpoint_with_auto_rollback_exits_1_with_aws_reason(moto: str, world: World) -> None:
    reason = "Instances failed to launch: InsufficientInstanceCapacity in eu-west-1a"
    moto_ebs.set_faults(moto, refresh={**FAST, "fail_at_checkpoint": reason})
    world.write_config(strategy={"type": "canary", "canary_size": 1, "bake_seconds": 1})
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert "rolled back by AWS" in result.output and reason in result.output
    assert world.images_run() == [world.amis["1.0.0"]] * 4


def suspended(group: dict[str, Any]) -> list[str]:
    return sorted(p["ProcessName"] for p in group.get("SuspendedProcesses", []))


def blue_green(world: World) -> None:
    world.write_config(strategy={"type": "blue-green", "retention_seconds": 3600})


def test_blue_green_swaps_groups_and_rolls_back_at_once(world: World) -> None:
    blue_green(world)
    blue = {i["InstanceId"] for i in world.asg()["Instances"]}
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 0, result.output
    (green,) = [
        g["AutoScalingGroupName"]
        for g in world.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        if g["AutoScalingGroupName"] != ASG
    ]
    assert green.startswith(f"{ASG}-r-")
    green_group, old = world.asg(green), world.asg(ASG)
    tags = {t["Key"]: t["Value"] for t in old["Tags"]}
    assert tags["bakery:serving"] == "false" and tags["bakery:retain-until"] > "2026"
    assert old["DesiredCapacity"] == 0 and old["TargetGroupARNs"] == []
    assert suspended(old) == ["AlarmNotification", "Launch", "ScheduledActions"]  # it cannot scale up, detached
    assert {t["Key"]: t["Value"] for t in green_group["Tags"]}["bakery:serving"] == "true"
    assert green_group["LaunchTemplate"]["Version"] == "2"
    assert set(world.targets()) == {i["InstanceId"] for i in green_group["Instances"]}
    assert set(world.targets().values()) == {"healthy"}
    assert world.images_run(green) == [world.amis["1.0.1"]] * 4
    assert bakery("status", GROUP).exit_code == 0

    back = bakery("rollback", GROUP, "--yes")
    assert back.exit_code == 0, back.output
    old = world.asg(ASG)
    assert old["DesiredCapacity"] == 4 and old["TargetGroupARNs"] == [world.target_group]
    assert suspended(old) == [] and suspended(world.asg(green)) == ["AlarmNotification", "Launch", "ScheduledActions"]
    assert world.images_run(ASG) == [world.amis["1.0.0"]] * 4
    assert set(world.targets()) == {i["InstanceId"] for i in old["Instances"]}
    assert not blue & set(world.targets())  # the old group's capacity came back as new instances
    assert world.asg(green)["DesiredCapacity"] == 0 and world.asg(green)["TargetGroupARNs"] == []


def test_blue_green_rollback_mid_way_restores_the_old_group_and_deletes_the_new(world: World) -> None:
    driver, rollout = driver_rollout(world, {"type": "blue-green"})
    journal = Journal.create(world.root / "journal.json")
    steps = list(driver.rollout_steps(rollout))
    names = [s.name for s in steps]
    execute(steps[: names.index("attach-green") + 1], journal, driver.reporter)
    green = journal.get("green")
    assert len(world.targets()) == 8  # both groups attached: the old one never left service
    execute(driver.rollback_steps(rollout), journal, driver.reporter, phase="rollback")
    names_left = [
        g["AutoScalingGroupName"]
        for g in world.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    ]
    assert names_left == [ASG] and green not in names_left
    assert set(world.targets()) == {i["InstanceId"] for i in world.asg()["Instances"]}
    assert world.images_run() == [world.amis["1.0.0"]] * 4


def test_history_is_on_the_launch_template_and_prune_keeps_the_last_rollouts(world: World) -> None:
    world.write_config(keep=2)
    for image in ("web@1.0.1", "web@1.0.0", "web@1.0.1", "web@1.0.0"):
        result = bakery("rollout", GROUP, "--image", image, "--yes")
        assert result.exit_code == 0, result.output
    assert "pruned launch template web-lt" in result.output and "version 2" in result.output
    assert sorted(world.versions()) == [1, 3, 4, 5]  # 1: the default, not bakery's; 3-5: the last two rollouts
    entries = json.loads(bakery("history", GROUP, "--json").stdout)
    shown = json.dumps(entries)
    for version in ("web@1.0.0", "web@1.0.1"):
        assert version in shown
    tags = world.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [world.template_id]}])["Tags"]
    assert len([t for t in tags if t["Key"].startswith("bakery:history:")]) == 4
    assert all(len(t["Value"]) <= 256 for t in tags)


def test_interrupted_rollout_is_refused_to_others_cancelled_and_resumed(
    moto: str, world: World, tmp_path: Path
) -> None:
    world.write_config(strategy={"type": "canary", "canary_size": 1, "bake_seconds": 600})
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    first = subprocess.Popen(
        [str(Path(sys.executable).parent / "bakery"), "rollout", GROUP, "--image", "web@1.0.1", "--yes"],
        cwd=world.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not at_checkpoint(world)() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert at_checkpoint(world)(), first.stdout.read() if first.poll() is not None else "no checkpoint"

        elsewhere = tmp_path / "elsewhere"  # another machine: its own bakery home, no journal
        elsewhere.mkdir()
        os.environ["BAKERY_HOME"], saved = str(elsewhere), os.environ["BAKERY_HOME"]
        try:
            refused = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
        finally:
            os.environ["BAKERY_HOME"] = saved
        assert refused.exit_code == 1, refused.output
        assert "web-aws is moving now: rollout r-" in refused.output
        assert f"pid {first.pid}" in refused.output

        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, output
    assert "cancelled" in output
    assert world.refreshes()[0]["Status"] == "Cancelled"
    journal = json.loads((world.root / ".bakery" / "rollouts" / f"{GROUP}.json").read_text())
    assert journal["status"] == "interrupted" and journal["values"]["cancelled"]

    moto_ebs.set_faults(moto, refresh={**FAST, "delay_scale": 0.001})
    resumed = bakery("rollout", GROUP, "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.output
    done, cancelled = world.refreshes()
    assert done["Status"] == "Successful" and cancelled["Status"] == "Cancelled"
    assert world.images_run() == [world.amis["1.0.1"]] * 4
    launched = world.client("ec2").describe_instances(
        Filters=[{"Name": "tag:aws:ec2launchtemplate:version", "Values": ["2"]}]
    )["Reservations"]
    assert sum(len(r["Instances"]) for r in launched) == 4  # the canary replaced before the interrupt was kept


@pytest.mark.parametrize(
    "strategy",
    [
        {"type": "rolling", "batch_size": "10%"},
        # a gate settled at every checkpoint, right after a look: the busiest minutes
        {"type": "canary", "canary_size": 2, "batch_size": "25%", "bake_seconds": 1},
    ],
    ids=["rolling", "canary"],
)
def test_watching_a_refresh_makes_at_most_12_calls_in_any_minute_at_productions_interval(
    moto: str, tmp_path: Path, strategy: dict[str, Any]
) -> None:
    from tests.integration.aws_groups import bench_watch_calls

    measured = bench_watch_calls(moto, tmp_path / "bench", size=20, batch_seconds=0.3, strategy=strategy)
    assert measured["rounds"] >= 5, measured  # the watch saw the refresh move, round after round
    assert measured["minutes_watched_in_production"] >= 1, measured
    assert measured["calls_by_operation"]["DescribeTargetHealth"] >= 5, measured  # the gate ran, poll after poll
    assert measured["calls_by_operation"]["DescribeTargetGroups"] == 1, measured  # looked up once
    assert measured["busiest_minute_watching"] <= 12, measured


def test_the_fake_refresh_refuses_what_aws_refuses(world: World) -> None:
    from botocore.exceptions import ClientError

    asg = world.client("autoscaling")
    latest = {"LaunchTemplate": {"LaunchTemplateId": world.template_id, "Version": "$Latest"}}
    with pytest.raises(ClientError) as refused:
        asg.start_instance_refresh(
            AutoScalingGroupName=ASG, DesiredConfiguration=latest, Preferences={"AutoRollback": True}
        )
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    pinned = {"LaunchTemplate": {"LaunchTemplateId": world.template_id, "Version": "1"}}
    slow = {"CheckpointPercentages": [50, 100], "CheckpointDelay": 600}
    asg.start_instance_refresh(AutoScalingGroupName=ASG, DesiredConfiguration=pinned, Preferences=slow)
    with pytest.raises(ClientError) as second:
        asg.start_instance_refresh(AutoScalingGroupName=ASG, DesiredConfiguration=pinned)
    assert second.value.response["Error"]["Code"] == "InstanceRefreshInProgress"
    asg.cancel_instance_refresh(AutoScalingGroupName=ASG)
    deadline = time.monotonic() + 30
    while world.refreshes()[0]["Status"] != "Cancelled" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert world.refreshes()[0]["Status"] == "Cancelled"
    with pytest.raises(ClientError) as none:
        asg.rollback_instance_refresh(AutoScalingGroupName=ASG)
    assert none.value.response["Error"]["Code"] == "ActiveInstanceRefreshNotFound"


def test_status_reports_drift_for_an_instance_on_an_image_bakery_did_not_bake(world: World) -> None:
    assert bakery("status", GROUP).exit_code == 0
    stray = world.client("ec2").run_instances(ImageId="ami-0d1e0000000000001", MinCount=1, MaxCount=1)
    instance = stray["Instances"][0]["InstanceId"]
    world.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=ASG, MaxSize=8)
    world.client("autoscaling").attach_instances(AutoScalingGroupName=ASG, InstanceIds=[instance])
    result = bakery("status", GROUP, "--json")
    assert result.exit_code == 3, result.output
    assert "ami-0d1e0000000000001" in result.stdout


def test_a_broken_image_that_aws_calls_successful_is_caught_by_the_gate_and_rolled_back(
    moto: str, world: World
) -> None:
    # Targets stay `initial` longer than the refresh takes, then the new image fails its checks.
    moto_ebs.set_faults(moto, refresh={**FAST, "health_warmup_seconds": 1.5, "unhealthy_amis": [world.amis["1.0.1"]]})
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert "is unhealthy in target group web-tg (Target.ResponseCodeMismatch)" in result.output
    assert "failed and was rolled back" in result.output
    back, forward = world.refreshes()
    assert forward["Status"] == "Successful"  # AWS saw nothing wrong
    assert back["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "1" and back["Status"] == "Successful"
    assert world.images_run() == [world.amis["1.0.0"]] * 4 and world.asg()["LaunchTemplate"]["Version"] == "1"


def test_an_alarm_with_insufficient_data_is_not_a_failure(world: World) -> None:
    world.alarm("INSUFFICIENT_DATA")
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 0, result.output
    assert world.images_run() == [world.amis["1.0.1"]] * 4


def test_a_blue_green_rollout_meeting_an_alarm_is_rolled_back_and_the_next_one_runs(moto: str, world: World) -> None:
    moto_ebs.set_faults(moto, refresh={**FAST, "health_warmup_seconds": 1.0})  # green waits in `initial`
    blue_green(world)
    when(lambda: len(world.targets()) == 8, lambda: world.alarm("ALARM"))  # green attached, still warming up
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert "CloudWatch alarm web-5xx is ALARM" in result.output and "failed and was rolled back" in result.output
    groups = world.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert [g["AutoScalingGroupName"] for g in groups] == [ASG]  # green deleted
    assert world.asg()["TargetGroupARNs"] == [world.target_group] and suspended(world.asg()) == []
    assert set(world.targets()) == {i["InstanceId"] for i in world.asg()["Instances"]}
    world.alarm("OK")
    again = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert again.exit_code == 0, again.output


def test_blue_green_is_refused_for_a_group_with_scaling_policies_before_anything_is_made(world: World) -> None:
    blue_green(world)
    world.client("autoscaling").put_scheduled_update_group_action(
        AutoScalingGroupName=ASG, ScheduledActionName="night", Recurrence="0 22 * * *", DesiredCapacity=2
    )
    world.client("autoscaling").put_scaling_policy(
        AutoScalingGroupName=ASG,
        PolicyName="cpu50",
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": 50.0,
        },
    )
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert "web-asg has scaling policies cpu50; scheduled actions night" in result.output
    assert "rolled back" not in result.output
    groups = world.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert [g["AutoScalingGroupName"] for g in groups] == [ASG] and sorted(world.versions()) == [1]


def test_a_group_on_another_launch_template_is_refused_not_rolled_back(world: World) -> None:
    other = world.client("ec2").create_launch_template(
        LaunchTemplateName="other-lt", LaunchTemplateData={"ImageId": world.amis["1.0.0"]}
    )["LaunchTemplate"]["LaunchTemplateId"]
    world.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=ASG, LaunchTemplate={"LaunchTemplateId": other, "Version": "1"}
    )
    result = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert result.exit_code == 1, result.output
    assert f"launches from launch template {other} (other-lt), not web-lt" in result.output
    assert "rolled back" not in result.output
    assert world.refreshes() == [] and sorted(world.versions()) == [1]
    world.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=ASG, LaunchTemplate={"LaunchTemplateId": world.template_id, "Version": "1"}
    )
    assert_no_trace_of_a_refusal(world)


def test_status_names_the_images_it_knows_when_an_old_ami_is_deregistered(world: World) -> None:
    stray = world.client("ec2").run_instances(ImageId=world.amis["1.0.1"], MinCount=1, MaxCount=1)
    world.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=ASG, MaxSize=8)
    world.client("autoscaling").attach_instances(
        AutoScalingGroupName=ASG, InstanceIds=[stray["Instances"][0]["InstanceId"]]
    )
    world.client("ec2").deregister_image(ImageId=world.amis["1.0.0"])  # what the other four run
    result = bakery("status", GROUP, "--json")
    assert "counts" in result.stdout, result.output
    assert json.loads(result.stdout)["groups"][0]["counts"] == {world.amis["1.0.0"]: 4, "web@1.0.1": 1}


def test_an_interrupt_cancels_only_this_rollouts_refresh(world: World) -> None:
    driver, rollout = driver_rollout(world, {"type": "rolling"})
    journal = Journal.create(world.root / "journal.json")
    steps = list(driver.rollout_steps(rollout))
    execute(steps[:1], journal, driver.reporter)  # version 2 made; killed before any refresh id was saved
    stop = steps[1].stop
    assert stop is not None
    asg = world.client("autoscaling")
    slow = {"CheckpointPercentages": [50, 100], "CheckpointDelay": 600}

    def start(version: str) -> str:
        pinned = {"LaunchTemplate": {"LaunchTemplateId": world.template_id, "Version": version}}
        found: str = asg.start_instance_refresh(
            AutoScalingGroupName=ASG, DesiredConfiguration=pinned, Preferences=slow
        )["InstanceRefreshId"]
        return found

    theirs = start("1")
    stop(journal)
    assert world.refreshes()[0]["Status"] in ("Pending", "InProgress") and journal.get("cancelled") is None
    asg.cancel_instance_refresh(AutoScalingGroupName=ASG)
    deadline = time.monotonic() + 30
    while world.refreshes()[0]["Status"] != "Cancelled" and time.monotonic() < deadline:
        time.sleep(0.05)
    ours = start("2")  # pins the version this rollout made
    stop(journal)
    assert journal.get("cancelled") == ours != theirs


def test_a_refresh_bakery_did_not_start_is_named_by_what_it_is(world: World) -> None:
    slow = {"CheckpointPercentages": [50, 100], "CheckpointDelay": 600}
    pinned = {"LaunchTemplate": {"LaunchTemplateId": world.template_id, "Version": "1"}}
    world.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName=ASG, DesiredConfiguration=pinned, Preferences=slow
    )
    refused = bakery("rollout", GROUP, "--image", "web@1.0.1", "--yes")
    assert refused.exit_code == 1, refused.output
    assert "is moving now: instance refresh" in refused.output
    assert "started outside bakery at 20" in refused.output and "to launch template version 1" in refused.output
    assert "rollout ," not in refused.output and ": ," not in refused.output
    world.client("autoscaling").cancel_instance_refresh(AutoScalingGroupName=ASG)
