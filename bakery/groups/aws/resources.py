"""What the AWS group driver reads off its resources, without calling AWS: the tags bakery puts on
Auto Scaling groups, a launch template version's instance tags, which template version a group
runs, and the states of an instance refresh that still moves. Pure, tested by equality."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What an instance refresh is while it still moves (AWS's own words).
ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
# The tags bakery puts on Auto Scaling groups: which images.yaml group an ASG belongs to (a
# blue-green rollout makes a second one), which of them serves, how long a retired one is kept.
GROUP_TAG = "bakery:group"
SERVING_TAG = "bakery:serving"
RETAIN_TAG = "bakery:retain-until"
CAPACITY_TAG = "bakery:capacity"
ROLLOUT_TAG = "bakery:rollout"


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def version_instance_tags(version: dict[str, Any]) -> dict[str, str]:
    """The tags a launch template version puts on the instances it launches."""
    for spec in version.get("LaunchTemplateData", {}).get("TagSpecifications", []):
        if spec.get("ResourceType") == "instance":
            return {t["Key"]: t["Value"] for t in spec.get("Tags", [])}
    return {}


@dataclass(frozen=True)
class TemplateRef:
    """A launch template as an Auto Scaling group or a refresh names it."""

    id: str
    name: str
    version: str  # "7", or "$Latest"/"$Default" when the group is not pinned

    @property
    def number(self) -> int | None:
        return int(self.version) if self.version.isdigit() else None


def template_of(asg: dict[str, Any]) -> TemplateRef | None:
    spec = asg.get("LaunchTemplate") or (
        asg.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification")
    )
    if not spec:
        return None
    return TemplateRef(
        spec.get("LaunchTemplateId", ""), spec.get("LaunchTemplateName", ""), spec.get("Version") or "$Default"
    )
