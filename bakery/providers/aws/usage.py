"""What uses an AMI, read live for `bakery prune`: launch template versions (an ImageId given
directly or as `resolve:ssm:PARAMETER`), launch configurations and their Auto Scaling groups,
EC2 Fleets and Spot Fleet requests that name it, live instances; and whom it is shared with (its
launch permissions, and its snapshots' createVolumePermission).

Fail safe: a kind of use that cannot be read (a refusal such as AccessDenied or
UnauthorizedOperation, an SSM parameter that cannot be read or does not hold an AMI id) is a use
of its own, "could not tell ...", that keeps the image and says why. What comes back is untrusted:
values are type-checked, and what is shown is one printable line of bounded length."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bakery.core.catalog import ImageRecord
from bakery.providers.aws.access import AwsAccess
from bakery.providers.aws.bakes import snapshots
from bakery.providers.aws.errors import unless_gone
from bakery.providers.aws.trust import amis_of, describe_image
from bakery.providers.base import Usage

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
SSM_PREFIX = "resolve:ssm:"
# Fleets that launch nothing more (their instances, while any run, are found as instances).
_FLEETS_DONE = {"deleted", "deleted_running", "deleted_terminating", "failed"}
_SPOT_FLEETS_DONE = {"cancelled", "cancelled_running", "cancelled_terminating", "failed"}
_AMI_ID = re.compile(r"ami-[0-9a-f]{8,17}")
_FILTER_VALUES = 100  # AMI ids in one describe_instances filter (EC2 takes up to 200)


def usage(provider: AwsAccess, records: Sequence[ImageRecord]) -> list[Usage]:
    """For each of `records`: everything that uses any of its copies, one line each, and whom
    they are shared with. What a region holds is read once for all of them. Raises botocore's
    errors for an endpoint that cannot be reached (the provider's guard makes them a
    ProviderError): a prune never decides blind."""
    looks: dict[tuple[str, str], _Region] = {}
    for record in records:
        for region, ami in amis_of(record).items():
            key = (record.target, region)
            if key not in looks:
                looks[key] = _Region(provider, provider.specs[record.target], region)
            looks[key].amis.add(ami)
    out = []
    for record in records:
        uses: list[str] = []
        shared: list[str] = []
        for region, ami in sorted(amis_of(record).items()):
            look = looks[(record.target, region)]
            uses += look.uses(ami)
            with _unless_refused(uses, "sharing", region, of=ami):
                shared += _sharing(look.ec2, ami, region)
        out.append(Usage(uses=tuple(uses), shared_with=tuple(shared)))
    return out


Found = list[tuple[str | None, str]]  # (the AMI id a use launches, None when it may be any; its line)


class _Region:
    """What uses AMIs in one region, read on first need, once."""

    def __init__(self, provider: AwsAccess, spec: Any, region: str) -> None:
        self.region = region
        self.ec2 = provider.ec2(spec, region)
        self.asg = provider.client("autoscaling", region, provider.endpoint(spec))
        self.ssm = _Parameters(provider.client("ssm", region, provider.endpoint(spec)), region)
        self.amis: set[str] = set()  # those asked about: their instances are read in one call
        self._found: Found | None = None

    def uses(self, ami: str) -> list[str]:
        if self._found is None:
            self._found = self._read()
        return [line for image, line in self._found if image in (ami, None)]

    def _read(self) -> Found:
        found: Found = []
        readers: list[tuple[str, Callable[[], Found]]] = [
            ("launch templates", lambda: _launch_templates(self.ec2, self.ssm)),
            ("launch configurations and Auto Scaling groups", lambda: _launch_configurations(self.asg, self.region)),
            ("EC2 Fleets", lambda: _fleets(self.ec2, self.ssm)),
            ("Spot Fleet requests", lambda: _spot_fleets(self.ec2, self.region)),
            ("instances", lambda: _instances(self.ec2, sorted(self.amis), self.region)),
        ]
        for what, read in readers:
            lines: list[str] = []
            with _unless_refused(lines, what, self.region):
                found += read()
            found += [(None, line) for line in lines]
        return found


def _launch_templates(ec2: Any, ssm: _Parameters) -> Found:
    found: Found = []
    for template in _pages(ec2, "describe_launch_templates", "LaunchTemplates"):
        if not isinstance(template.get("LaunchTemplateId"), str):
            continue
        versions = _pages(
            ec2,
            "describe_launch_template_versions",
            "LaunchTemplateVersions",
            LaunchTemplateId=template["LaunchTemplateId"],
        )
        for v in versions:
            data = v.get("LaunchTemplateData")
            name, number = shown(template.get("LaunchTemplateName")), shown(v.get("VersionNumber"))
            found += ssm.launches(
                f"launch template {name} version {number}", data.get("ImageId") if isinstance(data, dict) else None
            )
    return found


def _launch_configurations(asg: Any, region: str) -> Found:
    configs: dict[str, str] = {}  # name -> its AMI
    for c in _pages(asg, "describe_launch_configurations", "LaunchConfigurations"):
        if isinstance(c.get("LaunchConfigurationName"), str) and isinstance(c.get("ImageId"), str):
            configs[c["LaunchConfigurationName"]] = c["ImageId"]
    found: Found = [(ami, f"launch configuration {shown(name)} in {region}") for name, ami in configs.items()]
    for group in _pages(asg, "describe_auto_scaling_groups", "AutoScalingGroups"):
        ami = configs.get(group.get("LaunchConfigurationName"))  # type: ignore[arg-type]
        if ami is not None:
            found.append((ami, f"Auto Scaling group {shown(group.get('AutoScalingGroupName'))} in {region}"))
    return found


def _fleets(ec2: Any, ssm: _Parameters) -> Found:
    """EC2 Fleets whose launch template overrides name an AMI (a fleet that takes it from its
    launch template is that template's use)."""
    found: Found = []
    for fleet in _pages(ec2, "describe_fleets", "Fleets"):
        state = fleet.get("FleetState")
        if state in _FLEETS_DONE:
            continue
        what = f"EC2 Fleet {shown(fleet.get('FleetId'))} ({shown(state)})"
        for config in _dicts(fleet.get("LaunchTemplateConfigs")):
            for override in _dicts(config.get("Overrides")):
                found += [use for use in ssm.launches(what, override.get("ImageId")) if use not in found]
    return found


def _spot_fleets(ec2: Any, region: str) -> Found:
    found: Found = []
    for request in _pages(ec2, "describe_spot_fleet_requests", "SpotFleetRequestConfigs"):
        state = request.get("SpotFleetRequestState")
        if state in _SPOT_FLEETS_DONE:
            continue
        config = request.get("SpotFleetRequestConfig")
        config = config if isinstance(config, dict) else {}
        specs = list(_dicts(config.get("LaunchSpecifications")))
        specs += [o for c in _dicts(config.get("LaunchTemplateConfigs")) for o in _dicts(c.get("Overrides"))]
        line = f"Spot Fleet request {shown(request.get('SpotFleetRequestId'))} ({shown(state)}) in {region}"
        for ami in dict.fromkeys(s["ImageId"] for s in specs if isinstance(s.get("ImageId"), str)):
            found.append((ami, line))
    return found


def _instances(ec2: Any, amis: list[str], region: str) -> Found:
    found: Found = []
    for chunk in (amis[i : i + _FILTER_VALUES] for i in range(0, len(amis), _FILTER_VALUES)):
        filters = [{"Name": "image-id", "Values": chunk}, {"Name": "instance-state-name", "Values": LIVE_STATES}]
        for reservation in _pages(ec2, "describe_instances", "Reservations", Filters=filters):
            for instance in _dicts(reservation.get("Instances")):
                state = instance.get("State")
                name = shown(state.get("Name") if isinstance(state, dict) else None)
                line = f"instance {shown(instance.get('InstanceId'))} ({name}) in {region}"
                found.append((instance.get("ImageId") if isinstance(instance.get("ImageId"), str) else None, line))
    return found


def _sharing(ec2: Any, ami: str, region: str) -> list[str]:
    """Who may launch the AMI (its launch permissions) or make volumes of its snapshots (their
    createVolumePermission): either is a use bakery cannot see."""
    image = describe_image(ec2, ami)
    if image is None:
        return []  # deregistered (an interrupted prune's): shared with no one
    shared = []
    with unless_gone():
        found = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")
        for grant in _dicts(found.get("LaunchPermissions")):
            who = grant.get("UserId") or grant.get("OrganizationArn") or grant.get("OrganizationalUnitArn")
            shared.append(f"{shown(who) if who else 'everyone (public)'} ({ami} in {region})")
    for snapshot in snapshots(image):
        with unless_gone():
            found = ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")
            for grant in _dicts(found.get("CreateVolumePermissions")):
                who = shown(grant["UserId"]) if grant.get("UserId") else "everyone (public)"
                shared.append(f"{who} (snapshot {shown(snapshot)} of {ami} in {region})")
    return shared


class _Parameters:
    """SSM parameters of one region, each read once per look."""

    def __init__(self, client: Any, region: str) -> None:
        self.client, self.region = client, region
        self._read: dict[str, tuple[str | None, str]] = {}  # reference -> (AMI id or None, why not)

    def launches(self, what: str, image_id: object) -> Found:
        """What `what` launches, given its ImageId (an AMI id or `resolve:ssm:PARAMETER`)."""
        if not isinstance(image_id, str):
            return []
        if not image_id.startswith(SSM_PREFIX):
            return [(image_id, f"{what} in {self.region}")]
        name = image_id[len(SSM_PREFIX) :]
        value, why = self._resolve(name)
        if value is None:
            return [(None, f"{what} in {self.region} may use it: could not tell, SSM parameter {shown(name)} {why}")]
        return [(value, f"{what} in {self.region} (through SSM parameter {shown(name)})")]

    def _resolve(self, name: str) -> tuple[str | None, str]:
        """The AMI id the parameter `name` (with its :version or :label, as the template gives it)
        holds now, or None and why it cannot be told."""
        from botocore.exceptions import ClientError

        if name not in self._read:
            try:
                found = self.client.get_parameter(Name=name).get("Parameter")
                value = found.get("Value") if isinstance(found, dict) else None
                if isinstance(value, str) and _AMI_ID.fullmatch(value):
                    self._read[name] = (value, "")
                else:
                    self._read[name] = (None, "does not hold an AMI id")
            except ClientError as exc:
                self._read[name] = (None, f"could not be read ({refusal(exc)})")
        return self._read[name]


@contextlib.contextmanager
def _unless_refused(uses: list[str], what: str, region: str, *, of: str | None = None) -> Iterator[None]:
    """A refusal to read `what` (AccessDenied, UnauthorizedOperation, an endpoint without the
    call) becomes a use that keeps the image and says why; a network failure still raises."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        about = f" of {of}" if of else ""
        uses.append(f"could not tell: reading the {what}{about} in {region} was refused ({refusal(exc)})")


def refusal(exc: Any) -> str:
    """'AccessDeniedException: User ... is not authorized ...' from a botocore ClientError."""
    error = exc.response.get("Error", {}) if isinstance(getattr(exc, "response", None), dict) else {}
    return f"{shown(error.get('Code'))}: {shown(error.get('Message'), 160)}"


def shown(value: object, limit: int = 120) -> str:
    """A value read from the cloud, as one printable line of at most `limit` characters."""
    text = str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else "?"
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dicts(value: object) -> Iterator[dict[str, Any]]:
    """The dicts of a list read from the cloud (anything else in it, or no list, is skipped)."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        out += _dicts(page.get(key))
    return out
