"""What every AWS rollout does before it moves instances: refuse while another rollout runs, find
the numbered launch template version the group runs, and make the new one from it (or reuse the
version a rollback restores); bakery's mark on the launch template while the rollout runs."""

from __future__ import annotations

import os
import socket
from typing import Any

from bakery.config.targets.aws import AwsGroup
from bakery.errors import BakeryError, ConfigError, RolloutRefused, UsageError
from bakery.groups.aws import requests as aws_requests
from bakery.groups.aws.api import AsgApi
from bakery.groups.aws.marks import (
    ACTIVE_TAG,
    Mark,
    parse_template,
    parse_version_description,
    template_label,
    version_description,
)
from bakery.groups.aws.resources import TemplateRef, template_of
from bakery.groups.aws.watch import Gate
from bakery.groups.base import ActiveRollout, instance_tags
from bakery.groups.base import Rollout as RolloutSpec
from bakery.groups.budget import CallBudget, Clock
from bakery.progress import Reporter
from bakery.providers.aws.errors import aws_errors
from bakery.steps import Journal, Step


def here() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def ami_in(rollout: RolloutSpec, region: str) -> str:
    """The AMI of the rollout's image in the group's region."""
    record = rollout.to_record
    if record is not None:
        for location in record.locations:
            where, _, ami = location.partition(":")
            if where == region:
                return ami
        raise UsageError(f"{record.ref} has no AMI in {region}", hint=f"add {region} to its target's copy_to")
    return rollout.to.image_id


def active_rollout(api: AsgApi, template_id: str, refresh: dict[str, Any], mark: Mark | None) -> ActiveRollout:
    """A running refresh as bakery shows it: who started it and where, from bakery's marks (the
    `bakery:active` tag, else the version's description); 'unknown' for a refresh bakery did not start."""
    refresh_id = str(refresh.get("InstanceRefreshId", ""))
    version = aws_requests.desired_version(refresh)
    who, where, rollout_id = "someone else (not a bakery rollout)", f"refresh {refresh_id}", refresh_id
    to = f"launch template version {version}"
    if mark is not None and mark.engine in (refresh_id, ""):
        who, where, rollout_id, to = mark.who, mark.where, mark.rollout, mark.to
    elif version and version.isdigit():
        found = api.version(template_id, version)
        made = parse_version_description((found or {}).get("VersionDescription"))
        if made:
            rollout_id, who = made
    started: Any = refresh.get("StartTime") or ""
    percent = refresh.get("PercentageComplete")
    return ActiveRollout(
        id=rollout_id,
        to=to,
        step=f"instance refresh {refresh.get('Status')}",
        percent=int(percent) if percent is not None else None,
        started=started.isoformat() if hasattr(started, "isoformat") else str(started),
        who=who,
        where=where,
    )


def blue_green_active(api: AsgApi, group: str, mark: Mark | None) -> ActiveRollout | None:
    """The blue-green rollout `mark` says runs, while its green group exists (else the mark is stale)."""
    green = mark.green if mark is not None else None
    if mark is None or not green:
        return None
    if green.endswith("…"):  # shortened to fit the tag: the group bakery tagged that starts so
        exists = any(g["AutoScalingGroupName"].startswith(green[:-1]) for g in api.tagged_groups(group))
    else:
        exists = api.group(green) is not None
    if not exists:
        return None
    return ActiveRollout(mark.rollout, mark.to, "blue-green", None, mark.started, mark.who, mark.where)


def refusal(group: str, asg: str, active: ActiveRollout) -> RolloutRefused:
    return RolloutRefused(
        f"group {group}: {asg} is moving now: {active.describe()}",
        hint=f"wait for it to finish, or stop it with `bakery rollback {group}` where it was started",
    )


class Mover:
    """The launch template half of a rollout, shared by instance refresh and blue-green."""

    def __init__(self, api: AsgApi, reporter: Reporter, rollout: RolloutSpec, clock: Clock | None = None) -> None:
        self.api = api
        self.reporter = reporter
        self.rollout = rollout
        settings = rollout.spec.block(AwsGroup)
        if settings is None:
            raise ConfigError(f"group {rollout.group} has no aws settings")
        self.settings: AwsGroup = settings
        # A rollback (kind "rollback", or the rollback steps) is never gated on alarms: they
        # fire because of what it undoes. Target health still says when it is done.
        # One call budget for every watch of the rollout (bakery.groups.budget).
        self.budget = CallBudget.for_rollout(clock)
        self.gate = Gate(api, rollout.spec.health, self.budget, alarms=rollout.kind != "rollback")
        self.health_only = Gate(api, rollout.spec.health, self.budget, alarms=False)
        self.where = str(rollout.options.get("where") or here())

    @property
    def name(self) -> str:
        return self.rollout.group

    def template_step(self) -> Step:
        return Step(
            "launch-template",
            self.make_version,
            "a numbered launch template version with the new AMI"
            if self.rollout.to.template is None
            else f"reuse launch template version {self.rollout.to.template}",
        )

    def pinned(self, asg: dict[str, Any], template_id: str) -> TemplateRef:
        """The group's launch template version. RolloutRefused (nothing moved yet: the service
        does not roll back) for a launch configuration, another template, $Latest/$Default."""
        ref = template_of(asg)
        name = asg["AutoScalingGroupName"]
        if ref is None:
            raise RolloutRefused(
                f"Auto Scaling group {name} launches from a launch configuration; bakery moves groups "
                "that launch from a launch template",
                hint=f"move {name} to launch template {self.settings.launch_template} (a numbered version) first",
            )
        if ref.id and ref.id != template_id:
            raise RolloutRefused(
                f"Auto Scaling group {name} launches from launch template {ref.id} ({ref.name}), "
                f"not {self.settings.launch_template} as images.yaml says",
                hint=f"fix groups.{self.name}.aws.launch_template in images.yaml, or move {name} to it",
            )
        if ref.number is None:
            raise RolloutRefused(
                f"Auto Scaling group {name} launches from {ref.version} of {template_id}: AWS cannot roll "
                "an instance refresh back from $Latest/$Default; pin a numbered version first: "
                f"aws autoscaling update-auto-scaling-group --auto-scaling-group-name {name} "
                f"--launch-template LaunchTemplateId={template_id},Version=<number>"
            )
        return ref

    def refuse_group(self, asg: dict[str, Any]) -> None:
        """RolloutRefused when this strategy cannot move `asg` faithfully (before anything is made)."""

    def make_version(self, journal: Journal) -> None:
        with aws_errors(f"making the launch template version for group {self.name}"):
            template_id = self.api.template()["LaunchTemplateId"]
            live = self.api.live_group(self.name)
            asg = journal.get("asg") or live["AutoScalingGroupName"]
            # Every check that can refuse, before the journal records anything.
            self.refuse_if_busy(asg, template_id)
            source = self.pinned(live, template_id)
            self.refuse_group(self.api.must_group(asg))
            journal.put("asg", asg)
            journal.put("template", template_id)
            journal.put("version", self._version(journal, template_id, source))

    def _version(self, journal: Journal, template_id: str, source: TemplateRef) -> int:
        if self.rollout.to.template is not None:
            wanted_id, number = parse_template(self.rollout.to.template)
            if wanted_id != template_id or self.api.version(template_id, number) is None:
                raise BakeryError(
                    f"launch template version {self.rollout.to.template} no longer exists in {self.api.region}; "
                    f"nothing to restore for group {self.name}"
                )
            return number
        done = journal.get("version")
        if done is not None and self.api.version(template_id, done) is not None:
            return int(done)
        # A version an earlier attempt of this rollout made (killed before it was saved).
        for number, version in sorted(self.api.versions(template_id).items(), reverse=True):
            made = parse_version_description(version.get("VersionDescription"))
            if made and made[0] == self.rollout.id:
                return number
        assert source.number is not None
        found = self.api.version(template_id, source.number)
        if found is None:
            raise BakeryError(f"launch template version {template_label(template_id, source.number)} vanished")
        ami = ami_in(self.rollout, self.api.region)
        specs = aws_requests.instance_tag_specs(
            found.get("LaunchTemplateData", {}).get("TagSpecifications", []), instance_tags(self.rollout)
        )
        shown = self.rollout.to.image or ami
        description = version_description(self.rollout.id, shown, ami, self.rollout.who)
        number = self.api.create_version(
            aws_requests.version_request(template_id, source.number, ami, specs, description)
        )
        self.reporter.note(
            f"launch template {self.settings.launch_template}: version {number} with {ami} ({shown}), "
            f"copied from version {source.number}"
        )
        return number

    def refuse_if_busy(self, asg: str, template_id: str) -> None:
        """RolloutRefused naming the rollout that runs: an active refresh that is not this
        rollout's, or an unfinished blue-green rollout of another id."""
        mark = Mark.decode(self.api.template_tags(template_id).get(ACTIVE_TAG))
        active = self.api.active_refresh(asg)
        if active is not None:
            if mark is not None and mark.rollout == self.rollout.id:
                return
            raise refusal(self.name, asg, active_rollout(self.api, template_id, active, mark))
        if mark is not None and mark.rollout != self.rollout.id:
            active_bg = blue_green_active(self.api, self.name, mark)
            if active_bg is not None:
                raise refusal(self.name, asg, active_bg)

    def mark(self, journal: Journal, engine: str, *, to: str | None = None) -> None:
        """Say on the launch template that this rollout moves the group (with `engine`), to what."""
        shown = to or self.rollout.to.image or self.rollout.to.image_id
        mark = Mark(engine, self.rollout.id, self.rollout.started, self.rollout.who, self.where, shown)
        self.api.tag_template(
            journal.get("template") or self.api.template()["LaunchTemplateId"], {ACTIVE_TAG: mark.encode()}
        )

    def finish(self, journal: Journal) -> None:
        """Clear bakery's mark (only this rollout's)."""
        with aws_errors(f"clearing bakery's mark on the launch template of group {self.name}"):
            template_id = journal.get("template") or self.api.template()["LaunchTemplateId"]
            mark = Mark.decode(self.api.template_tags(template_id).get(ACTIVE_TAG))
            if mark is not None and mark.rollout == self.rollout.id:
                self.api.untag_template(template_id, [ACTIVE_TAG])

    def previous_version(self) -> tuple[str, int]:
        previous = self.rollout.previous
        if previous is None or previous.template is None:
            raise BakeryError(
                f"group {self.name}: the launch template version it ran before is unknown; nothing to roll back to"
            )
        return parse_template(previous.template)
