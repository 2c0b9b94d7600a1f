"""The group driver interface: what runs images (an Auto Scaling group, a managed instance group,
a local QEMU group behind HAProxy), and the registry that picks a driver by target kind.

Providers bake and store images; drivers move groups between them. A driver declares the steps
of a rollout and of a rollback (on the step engine, bakery.steps); the rollout service
(bakery.rollout) picks the image, plans the waves (bakery.strategy), holds the group's lock,
runs the steps and records the outcome through the driver, where the group lives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bakery.config import kinds
from bakery.config.kinds import TargetSpec
from bakery.config.models import Group
from bakery.core.catalog import ImageRecord
from bakery.errors import UsageError
from bakery.groups.strategy import RolloutPlan
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory
from bakery.steps import Step
from bakery.workspace import Workspace

# What a driver writes on every instance a rollout launches (AWS tags, GCP labels, local metadata),
# so that logs and metrics tie back to the exact image. GCP encodes keys and values to its rules.
INSTANCE_TAGS = ("bakery:image", "bakery:version", "bakery:inputs-digest", "bakery:rollout")

# Rollout.options: the id of the unfinished rollback (or rollout) a rollout replaces
# (bakery.rollout.replace), whose leftovers the rollout's rollback removes too.
REPLACES = "replaces"


@dataclass(frozen=True)
class Release:
    """What a group runs or will run: one image, and the group template that carries it."""

    image: str | None  # "web@1.0.3"; None for an image bakery did not bake
    image_id: str  # "ami-0abc", "projects/p/global/images/web-1-0-3", a local catalog directory
    template: str | None = None  # "lt-0abc:7" (launch template id:version), an instance template URL
    inputs_digest: str | None = None

    @classmethod
    def of(cls, record: ImageRecord, image_id: str, template: str | None = None) -> Release:
        return cls(record.ref, image_id, template, record.inputs_digest)

    def describe(self) -> str:
        shown = self.image or f"{self.image_id} (not baked by bakery)"
        return f"{shown} [{self.template}]" if self.template else shown


@dataclass(frozen=True)
class Instance:
    """One instance of a group as the engine reports it."""

    id: str  # "i-0abc", an instance URL, "web-local-3"
    image: str | None  # "web@1.0.3", or None when it runs an image bakery did not bake
    image_id: str
    state: str  # the engine's own word: InService, Pending, RUNNING, CREATING, booting, serving, draining
    health: Literal["healthy", "unhealthy", "unknown"] = "unknown"
    detail: str = ""  # why unhealthy: "GET /healthz -> 500", "target unhealthy: Target.FailedHealthChecks"


@dataclass(frozen=True)
class ActiveRollout:
    """A rollout the engine is carrying out now (an active refresh, a MIG moving between versions,
    a local group's open journal), with who started it, where and when."""

    id: str
    to: str  # image ref or id
    step: str
    percent: int | None
    started: str
    who: str  # user@host or the CI's identity
    where: str  # host (and pid) that drives it, when known

    @property
    def by_bakery(self) -> bool:
        """Whether a bakery rollout drives it (its id is one of bakery's)."""
        return self.id.startswith("r-")

    def describe(self) -> str:
        """In words: a bakery rollout by its id and who started it; anything else by what it is
        ("instance refresh InProgress started outside bakery at T, 40 % done, to version 7")."""
        done = f", {self.percent} % done" if self.percent is not None else ""
        when = self.started or "an unknown time"
        if self.by_bakery:
            return f"rollout {self.id} to {self.to} ({self.step}{done}), started {when} by {self.who} on {self.where}"
        return f"{self.step} started outside bakery at {when}{done}, to {self.to} ({self.where})"


@dataclass(frozen=True)
class GroupState:
    group: str
    kind: str
    running: bool  # false for a local group that is not up (a cloud group always exists)
    intended: Release | None  # what the group's template says new instances run
    instances: tuple[Instance, ...] = ()
    active: ActiveRollout | None = None
    desired: int | None = None  # the group's size as the engine sees it
    # Instances out of rotation, kept so that a blue-green rollback is immediate: shown, never drift.
    kept: tuple[Instance, ...] = ()

    def counts(self) -> dict[str, int]:
        """Instances per image (ref, or id for images bakery did not bake)."""
        out: dict[str, int] = {}
        for inst in self.instances:
            key = inst.image or inst.image_id
            out[key] = out.get(key, 0) + 1
        return out


@dataclass(frozen=True)
class HistoryEntry:
    """One rollout or rollback of a group, as kept where the group lives. `from_` (with its
    template) is what `bakery rollback` restores after the rollout completed."""

    id: str
    kind: Literal["rollout", "rollback"]
    started: str
    who: str
    from_: Release | None  # what the group ran before (None: it was empty or down)
    to: Release
    strategy: str
    result: str  # succeeded, failed, rolled-back, rollback-failed, interrupted, running
    finished: str | None = None
    reason: str | None = None  # why it failed or rolled back


@dataclass(frozen=True)
class Rollout:
    """Everything a driver needs to declare the steps of one rollout (or rollback)."""

    id: str  # "r-" + 12 hex: the mark on every instance and template it creates
    kind: Literal["rollout", "rollback"]
    group: str  # its name in images.yaml
    spec: Group
    target: str
    target_spec: TargetSpec  # the group's target, of its kind's model (LocalTarget, AwsTarget, GcpTarget, ...)
    to: Release
    to_record: ImageRecord | None  # the catalog record of `to` (None when restoring an image by template)
    previous: Release | None  # what the group ran before: what a rollback restores
    plan: RolloutPlan
    who: str
    started: str
    reason: str | None = None  # for a rollback: why
    options: Mapping[str, Any] = field(default_factory=dict)


class GroupDriver(Protocol):
    """Moves one kind of group between images. Methods raise BakeryError subclasses (ProviderError
    for cloud refusals, GateFailed for a failed health gate, RolloutRefused), never an SDK's own
    exception. Steps must be safe to run twice (see bakery.steps)."""

    kind: str

    def read(self, name: str, group: Group, target_spec: TargetSpec) -> GroupState:
        """The group as the engine reports it now: template, instances per image, active rollout."""

    def release_of(self, record: ImageRecord, target_spec: TargetSpec) -> Release:
        """The Release for a catalog image on this kind of target (its image id in the group's
        region or project). Raises UsageError when the image does not exist where the group is."""

    def rollout_steps(self, rollout: Rollout) -> Sequence[Step]:
        """The declared steps that move the group to `rollout.to` following `rollout.plan`. When
        `rollout.to.template` is set (a rollback after a completed rollout restores the previous
        release), that template is used again (the numbered launch template version, the instance
        template) instead of making a new one. A group that is not running (local) is brought up."""

    def rollback_steps(self, rollout: Rollout) -> Sequence[Step]:
        """The steps that return the group to `rollout.previous` exactly, from wherever the forward
        steps got (the journal's values the forward steps saved say how far; `done` is cleared
        when the phase becomes rollback): AWS RollbackInstanceRefresh, GCP
        versions patched back, local new VMs removed and the old ones serving again."""

    def refuse_takeover(self, name: str, group: Group, target_spec: TargetSpec, state: GroupState, stuck: str) -> None:
        """Before a new rollout replaces `stuck`, an unfinished rollback or rollout whose way on is
        barred (its image, or the one it would go back to, revoked or gone: bakery.rollout.replace),
        starting from the group as it is (`state`, read just now; its
        `active` move, if any, is `stuck`'s): raise RolloutRefused, saying exactly what to do by
        hand, when this kind of group cannot be moved on safely from where `stuck` left it."""

    def record(self, name: str, group: Group, target_spec: TargetSpec, entry: HistoryEntry) -> None:
        """Keep `entry` where the group lives (launch template, instance template, local store),
        replacing an earlier entry with the same id."""

    def history(self, name: str, group: Group, target_spec: TargetSpec) -> list[HistoryEntry]:
        """Every rollout and rollback of the group, oldest first."""

    def prune(self, name: str, group: Group, target_spec: TargetSpec, keep: int) -> list[str]:
        """Delete templates bakery made for rollouts older than the last `keep` (never one the
        group or a kept rollout uses). Returns what was deleted."""

    def down(self, name: str, group: Group, target_spec: TargetSpec) -> list[str]:
        """Stop the group and leave no process behind (local); cloud groups raise UsageError."""


def get_driver(
    kind: str,
    workspace: Workspace,
    reporter: Reporter,
    clients: ClientFactory | None = None,
) -> GroupDriver:
    """The group driver for a target kind. UsageError lists the valid kinds.

    `clients(service, region_or_project, endpoint)` makes API clients, as for providers."""
    if not kinds.known(kind):
        raise UsageError(f"no group driver for target kind '{kind}'; valid kinds: {', '.join(sorted(kinds.names()))}")
    driver: GroupDriver = kinds.get(kind).module("driver").make(workspace, reporter, clients)
    return driver


def instance_tags(rollout: Rollout) -> dict[str, str]:
    """The traceability marks for every instance `rollout` launches."""
    name, _, version = (rollout.to.image or "@").partition("@")
    return {
        "bakery:image": name,
        "bakery:version": version,
        "bakery:inputs-digest": rollout.to.inputs_digest or "",
        "bakery:rollout": rollout.id,
    }
