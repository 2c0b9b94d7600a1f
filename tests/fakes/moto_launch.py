"""moto's EC2 launch templates and Auto Scaling launches, as AWS behaves where a rollout looks.

- CreateLaunchTemplateVersion with SourceVersion: the new version inherits every parameter it
  does not set (moto ignores SourceVersion).
- DeleteLaunchTemplateVersions (moto has none): a deleted version is gone from every read;
  AWS refuses to delete the default version.
- An Auto Scaling group launches from the numbered version it pins (moto launches the template's
  default version's tags), and DescribeAutoScalingGroups reports the version each instance was
  launched from (moto reports the default version for all).

`install()` runs in the moto server process (tests/fakes/moto_ebs.py).
"""

from __future__ import annotations

from typing import Any


def launched_from(state: Any) -> tuple[str, int] | None:
    """(template id, version) an Auto Scaling instance was launched from, by AWS's own tags."""
    found = state.instance.ec2_backend.tags.get(state.instance.id, {})
    template, version = found.get("aws:ec2launchtemplate:id"), found.get("aws:ec2launchtemplate:version")
    return (template, int(version)) if template and version else None


def group_config(group: Any) -> tuple[str, int] | None:
    """(template id, version number) a group launches from now ($Latest/$Default resolved)."""
    if group.ec2_launch_template is None:
        return None
    version = group.ec2_launch_template.get_version(group.launch_template_version)
    return group.ec2_launch_template.id, version.number


def launch(group: Any, template_id: str, version: int, count: int, *, lifecycle: str = "InService") -> list[Any]:
    """Launch `count` instances into `group` from one launch template version, as AWS does: the
    version's ImageId, instance type and TagSpecifications, the group's propagated tags."""
    import random

    from moto.autoscaling.models import ASG_NAME_TAG, InstanceState

    template = group.ec2_backend.get_launch_template(template_id)
    chosen = template.get_version(version)
    tags = group.get_propagated_tags()
    tags[ASG_NAME_TAG] = group.name
    tags.update(chosen.instance_tags)
    subnet = group.vpc_zone_identifier.split(",")[0] if group.vpc_zone_identifier else None
    reservation = group.ec2_backend.run_instances(
        chosen.image_id,
        count,
        chosen.user_data,
        chosen.security_groups,
        instance_type=chosen.instance_type or "t3.micro",
        tags={"instance": tags},
        placement=random.choice(group.availability_zones),
        launch_config=None,
        launch_template={"LaunchTemplateId": template.id, "Version": str(chosen.number)},
        is_instance_type_default=False,
        associate_public_ip=None,
        subnet_id=subnet,
    )
    states = []
    for instance in reservation.instances:
        instance.autoscaling_group = group
        state = InstanceState(instance, lifecycle_state=lifecycle)
        group.instance_states.append(state)
        states.append(state)
    return states


def register(group: Any, instance_ids: list[str]) -> None:
    elbv2 = group.autoscaling_backend.elbv2_backend
    for arn in group.target_group_arns:
        target_group = elbv2.target_groups.get(arn)
        if target_group is not None and instance_ids:
            target_group.register([{"Id": i, "Port": target_group.port} for i in instance_ids])


def retire(group: Any, instance_ids: list[str]) -> None:
    elbv2 = group.autoscaling_backend.elbv2_backend
    present = [s.instance.id for s in group.instance_states if s.instance.id in instance_ids]
    for arn in group.target_group_arns:
        target_group = elbv2.target_groups.get(arn)
        if target_group is not None:
            target_group.deregister_terminated_instances(present)
    if present:
        group.ec2_backend.terminate_instances(present)
    group.instance_states = [s for s in group.instance_states if s.instance.id not in present]


def install() -> None:
    """Patch moto (see the module's docstring)."""
    from moto.autoscaling import models as asg_models

    def replace_instances(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        config = group_config(self)
        if config is None:
            original_replace(self, count_needed, propagated_tags)
        else:
            launch(self, *config, count_needed)

    original_replace = asg_models.FakeAutoScalingGroup.replace_autoscaling_group_instances
    asg_models.FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_instances  # type: ignore[method-assign]

    def instance_launch_template(self: Any) -> dict[str, Any] | None:
        launched = launched_from(self)
        if launched is None or self.auto_scaling_group is None or self.auto_scaling_group.ec2_launch_template is None:
            return None
        template = self.auto_scaling_group.ec2_backend.get_launch_template(launched[0])
        return {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name, "Version": str(launched[1])}

    asg_models.InstanceState.launch_template = property(instance_launch_template)  # type: ignore[assignment]
    _install_launch_templates()


def _install_launch_templates() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidLaunchTemplateVersionNotFound
    from moto.ec2.models import launch_templates as lt_models
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original_get = lt_models.LaunchTemplate.get_version

    def get_version(self: Any, num: Any) -> Any:
        found = original_get(self, num)
        if getattr(found, "deleted", False):
            raise InvalidLaunchTemplateVersionNotFound(template_id=self.id, version=num)
        return found

    lt_models.LaunchTemplate.get_version = get_version  # type: ignore[method-assign]

    original_versions = lt_models.LaunchTemplateBackend.describe_launch_template_versions

    def describe_versions(self: Any, *args: Any, **kwargs: Any) -> Any:
        return [(t, v) for t, v in original_versions(self, *args, **kwargs) if not getattr(v, "deleted", False)]

    lt_models.LaunchTemplateBackend.describe_launch_template_versions = describe_versions  # type: ignore[method-assign]

    original_create = LaunchTemplates.create_launch_template_version

    def create_version(self: Any) -> Any:
        source = self._get_param("SourceVersion")
        if source is not None:
            name, template_id = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
            template = (
                self.ec2_backend.get_launch_template(template_id)
                if template_id
                else self.ec2_backend.get_launch_template_by_name(name)
            )
            inherited = dict(template.get_version(source).data)
            inherited.update(self._get_param("LaunchTemplateData", {}) or {})
            self.params["LaunchTemplateData"] = inherited
        return original_create(self)

    LaunchTemplates.create_launch_template_version = create_version  # type: ignore[method-assign]

    def delete_launch_template_versions(self: Any) -> Any:
        name, template_id = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
        template = (
            self.ec2_backend.get_launch_template(template_id)
            if template_id
            else self.ec2_backend.get_launch_template_by_name(name)
        )
        done, failed = [], []
        for raw in self._get_param("Versions", []) or []:
            item = {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name}
            number = int(raw) if str(raw).isdigit() else 0
            exists = 1 <= number <= len(template.versions) and not getattr(
                template.versions[number - 1], "deleted", False
            )
            if not exists:
                failed.append(
                    {
                        **item,
                        "VersionNumber": number,
                        "ResponseError": {
                            "Code": "launchTemplateVersionDoesNotExist",
                            "Message": f"version {raw} does not exist",
                        },
                    }
                )
            elif template.default_version_number == number:
                failed.append(
                    {
                        **item,
                        "VersionNumber": number,
                        "ResponseError": {
                            "Code": "unexpectedError",
                            "Message": "Cannot delete the default version of a launch template",
                        },
                    }
                )
            else:
                template.versions[number - 1].deleted = True
                done.append({**item, "VersionNumber": number})
        return ActionResult(
            {"SuccessfullyDeletedLaunchTemplateVersions": done, "UnsuccessfullyDeletedLaunchTemplateVersions": failed}
        )

    LaunchTemplates.delete_launch_template_versions = delete_launch_template_versions  # type: ignore[attr-defined]
