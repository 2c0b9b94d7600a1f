"""The AWS calls of the group driver, for one group's region: Auto Scaling groups, launch
template versions, AMI tags, ELB target health, CloudWatch alarms and instance refreshes.

Every call goes through botocore's retry configuration (bakery.retry.aws_config, in the client
factory); errors become one-line ProviderErrors at the driver's door (aws_errors)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from bakery.config.targets.aws import AwsGroup, AwsTarget
from bakery.errors import ConfigError, ProviderError
from bakery.groups.aws.resources import (
    ACTIVE,
    GROUP_TAG,
    SERVING_TAG,
    tags_of,
)
from bakery.providers.base import ClientFactory

_ENDPOINT_VARS = {
    "ec2": "AWS_ENDPOINT_URL_EC2",
    "autoscaling": "AWS_ENDPOINT_URL_AUTO_SCALING",
    "elbv2": "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
    "cloudwatch": "AWS_ENDPOINT_URL_CLOUDWATCH",
}


def endpoint(spec: AwsTarget, service: str) -> str | None:
    """The target's endpoint, else the environment's (as bakery.providers.aws does)."""
    return spec.endpoint or os.environ.get(_ENDPOINT_VARS[service]) or os.environ.get("AWS_ENDPOINT_URL")


T = TypeVar("T")


def unless(codes: tuple[str, ...], call: Callable[[], T]) -> T | None:
    """`call()`, or None when AWS answers with an error code containing one of `codes`
    (a version already deleted, no active refresh): an answer, not a failure."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if any(c in code for c in codes):
            return None
        raise


class AsgApi:
    """One group's region: `clients(service, region, endpoint)` makes the clients, once each."""

    def __init__(self, clients: ClientFactory, spec: AwsTarget, settings: AwsGroup) -> None:
        self.region = settings.region or spec.region
        self.settings = settings
        self._spec = spec
        self._factory = clients
        self._clients: dict[str, Any] = {}
        self._arns: list[str] | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._factory(service, self.region, endpoint(self._spec, service))
        return self._clients[service]

    # --- Auto Scaling groups --------------------------------------------------------------------

    def group(self, name: str) -> dict[str, Any] | None:
        found = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        groups: list[dict[str, Any]] = found.get("AutoScalingGroups", [])
        return groups[0] if groups else None

    def must_group(self, name: str) -> dict[str, Any]:
        found = self.group(name)
        if found is None:
            raise ProviderError(
                f"no Auto Scaling group '{name}' in {self.region}",
                hint="check groups.<name>.aws.asg (and region) in images.yaml",
            )
        return found

    def tagged_groups(self, group: str) -> list[dict[str, Any]]:
        """Every ASG bakery tagged as belonging to images.yaml group `group`."""
        pages = self.client("autoscaling").get_paginator("describe_auto_scaling_groups")
        found: list[dict[str, Any]] = []
        for page in pages.paginate(Filters=[{"Name": f"tag:{GROUP_TAG}", "Values": [group]}]):
            found += page.get("AutoScalingGroups", [])
        return found

    def live_group(self, group: str) -> dict[str, Any]:
        """The ASG that serves images.yaml group `group`: the one tagged serving (after a
        blue-green swap), else the one images.yaml names."""
        serving = [g for g in self.tagged_groups(group) if tags_of(g).get(SERVING_TAG) == "true"]
        if serving:
            serving.sort(key=lambda g: str(g.get("CreatedTime", "")))
            return serving[-1]
        return self.must_group(self.settings.asg)

    def create_group(self, **request: Any) -> None:
        self.client("autoscaling").create_auto_scaling_group(**request)

    def resize(self, name: str, *, low: int, high: int, desired: int) -> None:
        self.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=low, MaxSize=high, DesiredCapacity=desired
        )

    def tag_group(self, name: str, tags: dict[str, str]) -> None:
        self.client("autoscaling").create_or_update_tags(
            Tags=[
                {
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": False,
                }
                for k, v in tags.items()
            ]
        )

    def delete_group(self, name: str) -> None:
        self.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)

    def attach(self, name: str, arns: Sequence[str]) -> None:
        if arns:
            self.client("autoscaling").attach_load_balancer_target_groups(
                AutoScalingGroupName=name, TargetGroupARNs=list(arns)
            )

    def detach(self, name: str, arns: Sequence[str]) -> None:
        if arns:
            self.client("autoscaling").detach_load_balancer_target_groups(
                AutoScalingGroupName=name, TargetGroupARNs=list(arns)
            )

    def suspend(self, name: str, processes: Sequence[str]) -> None:
        self.client("autoscaling").suspend_processes(AutoScalingGroupName=name, ScalingProcesses=list(processes))

    def resume(self, name: str, processes: Sequence[str]) -> None:
        self.client("autoscaling").resume_processes(AutoScalingGroupName=name, ScalingProcesses=list(processes))

    def scaling_setup(self, name: str) -> dict[str, list[str]]:
        """What scales or hooks into the group besides its size: names of its scaling policies,
        scheduled actions, lifecycle hooks and warm pool (a blue-green copy would lose them)."""
        client = self.client("autoscaling")
        policies = [
            p["PolicyName"]
            for page in client.get_paginator("describe_policies").paginate(AutoScalingGroupName=name)
            for p in page.get("ScalingPolicies", [])
        ]
        scheduled = [
            a["ScheduledActionName"]
            for page in client.get_paginator("describe_scheduled_actions").paginate(AutoScalingGroupName=name)
            for a in page.get("ScheduledUpdateGroupActions", [])
        ]
        hooks = [
            h["LifecycleHookName"]
            for h in client.describe_lifecycle_hooks(AutoScalingGroupName=name).get("LifecycleHooks", [])
        ]
        warm = client.describe_warm_pool(AutoScalingGroupName=name).get("WarmPoolConfiguration")
        found = {
            "scaling policies": policies,
            "scheduled actions": scheduled,
            "lifecycle hooks": hooks,
            "a warm pool": ["configured"] if warm else [],
        }
        return {k: v for k, v in found.items() if v}

    # --- launch templates -----------------------------------------------------------------------

    def template(self) -> dict[str, Any]:
        """The launch template images.yaml names (by name, or by lt-... id)."""
        ref = self.settings.launch_template
        key = {"LaunchTemplateIds": [ref]} if ref.startswith("lt-") else {"LaunchTemplateNames": [ref]}
        answer = unless(("NotFound",), lambda: self.client("ec2").describe_launch_templates(**key))
        found = (answer or {}).get("LaunchTemplates", [])
        if not found:
            raise ProviderError(
                f"no launch template '{ref}' in {self.region}",
                hint="check groups.<name>.aws.launch_template in images.yaml",
            )
        template: dict[str, Any] = found[0]
        return template

    def versions(self, template_id: str) -> dict[int, dict[str, Any]]:
        """Every version of a launch template, by number."""
        out: dict[int, dict[str, Any]] = {}
        pages = self.client("ec2").get_paginator("describe_launch_template_versions")
        for page in pages.paginate(LaunchTemplateId=template_id):
            for v in page.get("LaunchTemplateVersions", []):
                out[int(v["VersionNumber"])] = v
        return out

    def version(self, template_id: str, number: int | str) -> dict[str, Any] | None:
        """One version (numbered, or $Latest/$Default); None when it does not exist (deleted)."""
        found = unless(
            ("NotFound",),
            lambda: self.client("ec2").describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[str(number)]
            ),
        )
        versions: list[dict[str, Any]] = (found or {}).get("LaunchTemplateVersions", [])
        return versions[0] if versions else None

    def create_version(self, request: dict[str, Any]) -> int:
        made = self.client("ec2").create_launch_template_version(**request)
        return int(made["LaunchTemplateVersion"]["VersionNumber"])

    def delete_versions(self, template_id: str, numbers: Sequence[int]) -> tuple[list[int], list[str]]:
        """(deleted, refusals as 'N: why')."""
        deleted: list[int] = []
        refused: list[str] = []
        for i in range(0, len(numbers), 200):
            answer = self.client("ec2").delete_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[str(n) for n in numbers[i : i + 200]]
            )
            deleted += [int(v["VersionNumber"]) for v in answer.get("SuccessfullyDeletedLaunchTemplateVersions", [])]
            refused += [
                f"{v.get('VersionNumber')}: {v.get('ResponseError', {}).get('Message', '?')}"
                for v in answer.get("UnsuccessfullyDeletedLaunchTemplateVersions", [])
            ]
        return deleted, refused

    def template_tags(self, template_id: str) -> dict[str, str]:
        found = self.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [template_id]}])
        return {t["Key"]: t["Value"] for t in found.get("Tags", [])}

    def tag_template(self, template_id: str, tags: dict[str, str]) -> None:
        if tags:
            self.client("ec2").create_tags(
                Resources=[template_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )

    def untag_template(self, template_id: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self.client("ec2").delete_tags(Resources=[template_id], Tags=[{"Key": k} for k in keys])

    # --- images and instances -------------------------------------------------------------------

    def image_refs(self, amis: Iterable[str]) -> dict[str, str | None]:
        """AMI -> "web@1.0.3" for AMIs bakery baked (complete, by their tags), else None."""
        wanted = sorted({a for a in amis if a})
        out: dict[str, str | None] = dict.fromkeys(wanted)
        if not wanted:
            return out
        # By filter, not ImageIds: a deregistered AMI is simply absent (ImageIds fails the whole call).
        images = [
            image
            for i in range(0, len(wanted), 200)  # AWS takes at most 200 values a filter
            for image in self.client("ec2")
            .describe_images(Filters=[{"Name": "image-id", "Values": wanted[i : i + 200]}])
            .get("Images", [])
        ]
        for image in images:
            tags = tags_of(image)
            if tags.get("bakery:state") == "complete" and tags.get("bakery:image") and tags.get("bakery:version"):
                out[image["ImageId"]] = f"{tags['bakery:image']}@{tags['bakery:version']}"
        return out

    def instance_images(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """instance id -> the AMI it runs."""
        out: dict[str, str] = {}
        if not instance_ids:
            return out
        pages = self.client("ec2").get_paginator("describe_instances")
        for page in pages.paginate(InstanceIds=list(instance_ids)):
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    out[instance["InstanceId"]] = instance.get("ImageId", "")
        return out

    # --- health: target groups and alarms -------------------------------------------------------

    @property
    def knows_target_groups(self) -> bool:
        """Whether target_group_arns() answers without a call (all given as ARNs, or looked up)."""
        return self._arns is not None or all(g.startswith("arn:") for g in self.settings.target_groups)

    def target_group_arns(self) -> list[str]:
        """The configured target groups as ARNs (names are looked up once)."""
        if self._arns is None:
            given = list(self.settings.target_groups)
            names = [g for g in given if not g.startswith("arn:")]
            arns = {g: g for g in given if g.startswith("arn:")}
            if names:
                answer = unless(
                    ("TargetGroupNotFound",), lambda: self.client("elbv2").describe_target_groups(Names=names)
                )
                if answer is None:
                    raise ConfigError(
                        f"target groups {', '.join(names)}: not all exist in {self.region}",
                        hint="check groups.<name>.aws.target_groups in images.yaml",
                    )
                arns.update({t["TargetGroupName"]: t["TargetGroupArn"] for t in answer.get("TargetGroups", [])})
            self._arns = [arns[g] for g in given]
        return list(self._arns)

    def target_health(self, arn: str) -> dict[str, tuple[str, str]]:
        """instance id -> (state, reason) in one target group."""
        found = self.client("elbv2").describe_target_health(TargetGroupArn=arn)
        return {
            d["Target"]["Id"]: (
                d.get("TargetHealth", {}).get("State", "unknown"),
                d.get("TargetHealth", {}).get("Reason", ""),
            )
            for d in found.get("TargetHealthDescriptions", [])
        }

    def alarm_states(self) -> dict[str, str]:
        """Every configured alarm's state (OK, ALARM, INSUFFICIENT_DATA); a missing one is a ConfigError."""
        names = list(self.settings.alarms)
        if not names:
            return {}
        found: dict[str, str] = {}
        for page in self.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNames=names):
            found.update({a["AlarmName"]: a["StateValue"] for a in page.get("MetricAlarms", [])})
            found.update({a["AlarmName"]: a["StateValue"] for a in page.get("CompositeAlarms", [])})
        missing = [n for n in names if n not in found]
        if missing:
            raise ConfigError(
                f"CloudWatch alarm(s) {', '.join(missing)} do not exist in {self.region}",
                hint="check groups.<name>.aws.alarms in images.yaml",
            )
        return {n: found[n] for n in names}

    # --- instance refreshes ---------------------------------------------------------------------

    def refreshes(self, asg: str, ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The group's refreshes, newest first (one call: the newest page is enough to watch)."""
        request: dict[str, Any] = {"AutoScalingGroupName": asg}
        if ids:
            request["InstanceRefreshIds"] = list(ids)
        found: list[dict[str, Any]] = (
            self.client("autoscaling").describe_instance_refreshes(**request).get("InstanceRefreshes", [])
        )
        return found

    def refresh(self, asg: str, refresh_id: str) -> dict[str, Any]:
        found = self.refreshes(asg, [refresh_id])
        if not found:
            raise ProviderError(f"instance refresh {refresh_id} of {asg} is not known to AWS")
        return found[0]

    def active_refresh(self, asg: str) -> dict[str, Any] | None:
        return next((r for r in self.refreshes(asg) if r.get("Status") in ACTIVE), None)

    def start_refresh(self, request: dict[str, Any]) -> str:
        return str(self.client("autoscaling").start_instance_refresh(**request)["InstanceRefreshId"])

    def cancel_refresh(self, asg: str) -> bool:
        """Cancel the group's active refresh; False when there was none."""
        answer = unless(
            ("ActiveInstanceRefreshNotFound",),
            lambda: self.client("autoscaling").cancel_instance_refresh(AutoScalingGroupName=asg),
        )
        return answer is not None

    def rollback_refresh(self, asg: str) -> str | None:
        """RollbackInstanceRefresh; None when AWS says there is nothing it can roll back."""
        answer = unless(
            ("ActiveInstanceRefreshNotFound", "IrreversibleInstanceRefresh"),
            lambda: self.client("autoscaling").rollback_instance_refresh(AutoScalingGroupName=asg),
        )
        return str(answer["InstanceRefreshId"]) if answer else None
