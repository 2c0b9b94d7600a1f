"""Blue-green rollouts of an Auto Scaling group: a second group, swapped in behind the target groups.

The green group launches from the new numbered launch template version at the blue group's
capacity, in its subnets, NOT attached to the target groups. Once all its instances are InService
it is attached, and once every one of them is healthy in every target group (no alarm in ALARM), the blue
group is detached and scaled to zero, never before. Blue is kept, tagged with the time until which
it is retained and with its Launch/AlarmNotification/ScheduledActions processes suspended (it must
not scale itself up while detached), so that a rollback is immediate: resume them, scale blue back
up, attach it, wait until healthy (target health only: a rollback is never gated on alarms), then
detach green. A blue group whose scaling setup a copy would lose (scaling policies, scheduled
actions, lifecycle hooks, a warm pool, a MixedInstancesPolicy) is refused before anything is made.

Which ASG serves the images.yaml group: bakery tags every ASG it swaps with `bakery:group=<name>`
and the serving one with `bakery:serving=true` (the retired one `false`, with
`bakery:retain-until` and the `bakery:capacity` to restore). The group's launch template stays the
one images.yaml names; `asg:` names the group bakery starts from, before its first swap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bakery.errors import BakeryError, Interrupted, RolloutRefused
from bakery.groups.aws.moves import Mover
from bakery.groups.aws.resources import (
    CAPACITY_TAG,
    GROUP_TAG,
    RETAIN_TAG,
    ROLLOUT_TAG,
    SERVING_TAG,
    tags_of,
    template_of,
)
from bakery.groups.aws.watch import Gate, target_group_name, wait_for
from bakery.providers.aws.errors import aws_errors
from bakery.steps import Journal, Step

# What a green group copies from the blue one, besides capacity, subnets and tags.
COPIED = (
    "HealthCheckType",
    "HealthCheckGracePeriod",
    "DefaultCooldown",
    "TerminationPolicies",
    "NewInstancesProtectedFromScaleIn",
    "CapacityRebalance",
    "DefaultInstanceWarmup",
    "MaxInstanceLifetime",
)
# What a retired (blue) group must not do while it waits at zero, detached: scale itself up.
FROZEN = ("Launch", "AlarmNotification", "ScheduledActions")


def green_name(base: str, rollout_id: str) -> str:
    return f"{base[: 255 - len(rollout_id) - 1]}-{rollout_id}"


def green_request(
    blue: dict[str, Any], name: str, template_id: str, version: int, group: str, rollout_id: str
) -> dict[str, Any]:
    """CreateAutoScalingGroup for the green group: blue's capacity, placement, health settings
    and own tags; no target group (it is attached once its instances are InService)."""
    own = [t for t in blue.get("Tags", []) if not t["Key"].startswith(("bakery:", "aws:"))]
    tags = [{"Key": t["Key"], "Value": t["Value"], "PropagateAtLaunch": bool(t.get("PropagateAtLaunch"))} for t in own]
    tags += [
        {"Key": GROUP_TAG, "Value": group, "PropagateAtLaunch": False},
        {"Key": SERVING_TAG, "Value": "false", "PropagateAtLaunch": False},
        {"Key": ROLLOUT_TAG, "Value": rollout_id, "PropagateAtLaunch": False},
    ]
    request: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": str(version)},
        "MinSize": blue["MinSize"],
        "MaxSize": blue["MaxSize"],
        "DesiredCapacity": blue["DesiredCapacity"],
        "Tags": tags,
    }
    if blue.get("VPCZoneIdentifier"):
        request["VPCZoneIdentifier"] = blue["VPCZoneIdentifier"]
    else:
        request["AvailabilityZones"] = list(blue.get("AvailabilityZones", []))
    request.update({k: blue[k] for k in COPIED if blue.get(k) is not None})
    return request


def capacity_text(capacity: Sequence[int]) -> str:
    return ",".join(str(c) for c in capacity)


def parse_capacity(text: str | None) -> list[int] | None:
    parts = (text or "").split(",")
    return [int(p) for p in parts] if len(parts) == 3 and all(p.isdigit() for p in parts) else None


class BlueGreenMover(Mover):
    def steps(self) -> Sequence[Step]:
        return [
            self.template_step(),
            Step("green-group", self.green, "a second Auto Scaling group on the new version, not attached yet"),
            Step(
                "green-in-service",
                self._or_give_up(self.green_in_service),
                "wait until all its instances are InService",
            ),
            Step(
                "attach-green",
                self._or_give_up(self.attach_green),
                "attach it to the target groups; wait until healthy",
            ),
            Step("retire-blue", self._or_give_up(self.retire_blue), "detach the old group, scale it to zero, keep it"),
            Step("finish", self.finish, "clear bakery's mark"),
        ]

    def rollback_steps(self) -> Sequence[Step]:
        return [
            Step("restore-blue", self.restore_blue, "old group scaled up, attached and healthy; the new one detached"),
            Step("finish-rollback", self.finish, "clear bakery's mark"),
        ]

    def _or_give_up(self, run: Callable[[Journal], None]) -> Callable[[Journal], None]:
        """With the group's rollback off, a failed step ends the rollout: bakery's mark goes (the
        next rollout is not refused) and the new group stays as it is, for inspection."""

        def step(journal: Journal) -> None:
            try:
                run(journal)
            except Interrupted:
                raise
            except BakeryError:
                if not self.rollout.spec.rollback:
                    self.finish(journal)
                    self.reporter.note(
                        f"group {journal.get('green')} is left as it is (the group's rollback is off); remove it "
                        f"with `aws autoscaling delete-auto-scaling-group --force-delete --auto-scaling-group-name "
                        f"{journal.get('green')}`"
                    )
                raise

        return step

    @property
    def _timeout(self) -> float:
        health = self.rollout.spec.health
        return float(health.grace_seconds + health.timeout_seconds + self.settings.instance_warmup)

    # --- forward ------------------------------------------------------------------------------

    def refuse_group(self, asg: dict[str, Any]) -> None:
        """RolloutRefused when the green copy would lose what the blue group has: scaling
        policies, scheduled actions, lifecycle hooks, a warm pool, a MixedInstancesPolicy."""
        name = asg["AutoScalingGroupName"]
        found = self.api.scaling_setup(name)
        if asg.get("MixedInstancesPolicy"):
            found["a MixedInstancesPolicy"] = ["set"]
        if found:
            has = "; ".join(
                what if names in (["configured"], ["set"]) else f"{what} {', '.join(names)}"
                for what, names in found.items()
            )
            raise RolloutRefused(
                f"group {self.name}: Auto Scaling group {name} has {has}; a blue-green copy would not carry "
                "them over, so bakery makes none",
                hint=f"use strategy rolling or canary for group {self.name} (an instance refresh keeps the group)",
            )

    def green(self, journal: Journal) -> None:
        blue_name = journal.get("asg")
        with aws_errors(f"creating the green group of {self.name}"):
            blue = self.api.must_group(blue_name)
            journal.put("blue", blue_name)
            if journal.get("capacity") is None:
                journal.put("capacity", [blue["MinSize"], blue["MaxSize"], blue["DesiredCapacity"]])
            template_id, version = journal.get("template"), int(journal.get("version"))
            name = journal.get("green") or self._retained_on(version) or green_name(self.settings.asg, self.rollout.id)
            journal.put("green", name)
            self.mark(journal, f"bg:{name}")
            if GROUP_TAG not in tags_of(blue):
                self.api.tag_group(blue_name, {GROUP_TAG: self.name, SERVING_TAG: "true"})
            low, high, desired = journal.get("capacity")
            found = self.api.group(name)
            if found is None:
                self.api.create_group(**green_request(blue, name, template_id, version, self.name, self.rollout.id))
                self.reporter.note(
                    f"created Auto Scaling group {name} ({desired} instances, launch template version {version})"
                )
            elif found["DesiredCapacity"] != desired:
                self.api.resume(name, FROZEN)
                self.api.resize(name, low=low, high=high, desired=desired)
                self.reporter.note(f"scaling the kept group {name} back up to {desired} instances")

    def _retained_on(self, version: int) -> str | None:
        """A retired group of this group that runs `version` (a rollback revives it)."""
        for group in self.api.tagged_groups(self.name):
            ref = template_of(group)
            if tags_of(group).get(SERVING_TAG) == "false" and ref is not None and ref.number == version:
                return str(group["AutoScalingGroupName"])
        return None

    def green_in_service(self, journal: Journal) -> None:
        self._in_service(journal.get("green"), int(journal.get("capacity")[2]))

    def _in_service(self, name: str, desired: int) -> None:
        def missing() -> str | None:
            group = self.api.must_group(name)
            ready = [
                i
                for i in group.get("Instances", [])
                if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy"
            ]
            return None if len(ready) >= desired else f"{len(ready)}/{desired} instances InService"

        with aws_errors(f"waiting for Auto Scaling group {name}"):
            wait_for(f"group {name}", self.reporter, missing, timeout=self._timeout, calls=1, budget=self.budget)

    def attach_green(self, journal: Journal) -> None:
        self._attach(journal.get("green"), self.gate)

    def _attach(self, name: str, gate: Gate) -> None:
        """Attach `name` to the target groups; wait until every instance is healthy in each
        (and, with a gate on alarms, while none is in ALARM)."""
        with aws_errors(f"attaching Auto Scaling group {name} to its target groups"):
            arns = self.api.target_group_arns()
            attached = set(self.api.must_group(name).get("TargetGroupARNs", []))
            self.api.attach(name, [a for a in arns if a not in attached])

            def missing() -> str | None:
                gate.alarms()
                instances = [i["InstanceId"] for i in self.api.must_group(name).get("Instances", [])]
                for arn in arns:
                    health = self.api.target_health(arn)
                    for instance in instances:
                        state, reason = health.get(instance, ("unused", "Target.NotRegistered"))
                        if state != "healthy":
                            return f"{instance} {state} in target group {target_group_name(arn)} {reason}".strip()
                return None

            wait_for(
                f"group {name} in its target groups",
                self.reporter,
                missing,
                timeout=self._timeout,
                calls=gate.calls(),
                budget=self.budget,
            )

    def retire_blue(self, journal: Journal) -> None:
        blue, green = journal.get("blue"), journal.get("green")
        with aws_errors(f"retiring Auto Scaling group {blue}"):
            # Never take blue out of service unless green is healthy this very moment.
            self.gate.check(green, None, pending_ok=False)
            self._swap(serving=green, retired=blue, capacity=journal.get("capacity"))
            self.reporter.note(f"{green} serves group {self.name}; {blue} is scaled to zero and kept for rollback")

    def _swap(self, *, serving: str, retired: str, capacity: Sequence[int]) -> None:
        self.api.tag_group(serving, {GROUP_TAG: self.name, SERVING_TAG: "true"})
        attached = self.api.must_group(retired).get("TargetGroupARNs", [])
        self.api.detach(retired, [a for a in self.api.target_group_arns() if a in attached])
        self.api.suspend(retired, FROZEN)
        self.api.resize(retired, low=0, high=capacity[1], desired=0)
        until = datetime.now(UTC) + timedelta(seconds=self.rollout.spec.strategy.retention_seconds)
        self.api.tag_group(
            retired,
            {
                GROUP_TAG: self.name,
                SERVING_TAG: "false",
                RETAIN_TAG: until.isoformat(timespec="seconds").replace("+00:00", "Z"),
                CAPACITY_TAG: capacity_text(capacity),
            },
        )

    # --- rollback -----------------------------------------------------------------------------

    def restore_blue(self, journal: Journal) -> None:
        """Blue serving again (target health only: never gated on alarms), green gone. On
        failure bakery's mark is cleared too, so that the group is not locked for good."""
        try:
            self._restore_blue(journal)
        except Interrupted:
            raise
        except BakeryError:
            self.finish(journal)
            raise

    def _restore_blue(self, journal: Journal) -> None:
        blue, green = journal.get("blue"), journal.get("green")
        if not green:
            return  # no second group was made: the old one never stopped serving
        with aws_errors(f"restoring Auto Scaling group {blue}"):
            found = self.api.must_group(blue)
            capacity = journal.get("capacity") or parse_capacity(tags_of(found).get(CAPACITY_TAG))
            if capacity is None:
                raise BakeryError(f"the capacity to restore {blue} to is unknown (its {CAPACITY_TAG} tag is gone)")
            low, high, desired = capacity
            self.api.resume(blue, FROZEN)
            if found["DesiredCapacity"] < desired:
                self.api.resize(blue, low=low, high=high, desired=desired)
                self.reporter.note(f"scaling {blue} back up to {desired} instances")
            self._in_service(blue, desired)
            self._attach(blue, self.health_only)
            self.api.tag_group(blue, {GROUP_TAG: self.name, SERVING_TAG: "true", RETAIN_TAG: ""})
            made = self.api.group(green)
            if made is None:
                return
            attached = made.get("TargetGroupARNs", [])
            self.api.detach(green, [a for a in self.api.target_group_arns() if a in attached])
            if tags_of(made).get(ROLLOUT_TAG) == self.rollout.id:
                self.api.delete_group(green)
                self.reporter.note(f"{blue} serves group {self.name} again; {green} deleted")
            else:  # a kept group this rollout revived goes back to being kept
                self._swap(
                    serving=blue, retired=green, capacity=[made["MinSize"], made["MaxSize"], made["DesiredCapacity"]]
                )
                self.reporter.note(f"{blue} serves group {self.name} again; {green} scaled to zero")
