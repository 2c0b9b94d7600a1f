"""The GCP group driver: managed instance groups (zonal or regional) moved by GCE's MIG updater.

A rollout makes a new instance template (the group's current one with the new image, and labels
on every instance it creates naming the image, version, inputs digest and rollout), then patches
the MIG's versions: rolling → [new]; canary → [current, new with targetSize], held, then [new];
blue-green → a second MIG swapped in the group's backend service (gcp_bluegreen). bakery watches
status.isStable, versionTarget.isReached and listManagedInstances with the gate of gcp_watch.
GCE has no rollback for a MIG: bakery's is a patch back to the previous template, watched the same
way. History is kept in the project (gcp_history).

Clients come from the injected factory `clients(service, project, endpoint)` (by default
providers.gcp.default_clients), at the target's endpoint or $BAKERY_GCP_ENDPOINT, as for the provider.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from bakery.config.kinds import TargetSpec
from bakery.config.models import Group
from bakery.config.targets.gcp import GcpGroup, GcpTarget
from bakery.core.catalog import ImageRecord
from bakery.core.retry import GCP_DEADLINE_SECONDS, gcp_retry, request_timeout
from bakery.errors import ConfigError, RolloutRefused, UsageError
from bakery.groups.base import GroupState, HistoryEntry, Release, Rollout
from bakery.groups.budget import Clock
from bakery.groups.gcp.api import GroupApi
from bakery.groups.gcp.bluegreen import BlueGreen
from bakery.groups.gcp.history import History
from bakery.groups.gcp.read import Site
from bakery.groups.gcp.requests import Where, name_of, versions_of
from bakery.groups.gcp.steps import Mover
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory, guarded_by
from bakery.providers.gcp.api import gcp_errors
from bakery.providers.gcp.provider import default_clients
from bakery.steps import Journal, Step
from bakery.workspace import Workspace

OPERATION_DEADLINE = 300.0  # seconds for an operation to be DONE (a MIG patch is DONE before it moves)

_guarded = guarded_by(gcp_errors)


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> GcpDriver:
    return GcpDriver(reporter, clients or default_clients)


def endpoint(spec: GcpTarget) -> str | None:
    """The target's endpoint, else $BAKERY_GCP_ENDPOINT, else Google's (as the provider's)."""
    return spec.endpoint or os.environ.get("BAKERY_GCP_ENDPOINT") or None


class GcpDriver:
    kind = "gcp"

    def __init__(
        self,
        reporter: Reporter,
        clients: ClientFactory,
        *,
        timeout: float | None = None,
        operation_deadline: float = OPERATION_DEADLINE,
        clock: Clock | None = None,
    ) -> None:
        self.reporter = reporter
        self.clock = clock  # where watches get the time and wait (tests: simulated time)
        self._factory = clients
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self.timeout = timeout if timeout is not None else request_timeout()
        self.retry = gcp_retry(deadline=min(GCP_DEADLINE_SECONDS, 3 * self.timeout))
        self.operation_deadline = operation_deadline

    def _client(self, project: str, where: str | None) -> Callable[[str], Any]:
        def client(service: str) -> Any:
            key = (service, project, where)
            if key not in self._clients:
                self._clients[key] = self._factory(service, project, where)
            return self._clients[key]

        return client

    def api(self, spec: GcpTarget, where: Where) -> GroupApi:
        return GroupApi(
            self._client(where.project, endpoint(spec)),
            where,
            self.reporter,
            timeout=self.timeout,
            retry=self.retry,
            operation_deadline=self.operation_deadline,
        )

    def site(self, name: str, group: Group, target_spec: TargetSpec) -> Site:
        if not isinstance(target_spec, GcpTarget):
            raise ConfigError(f"group {name}: its target is {getattr(target_spec, 'kind', '?')}, not gcp")
        gcp = group.block(GcpGroup)
        if not isinstance(gcp, GcpGroup):
            raise ConfigError(f"group {name} has no gcp settings (mig, zone or region)")
        where = Where.of(target_spec.project, gcp)
        return Site(name, group, gcp, where, self.api(target_spec, where))

    # --- reading ------------------------------------------------------------------------------

    @_guarded("reading the managed instance group")
    def read(self, name: str, group: Group, target_spec: TargetSpec) -> GroupState:
        site = self.site(name, group, target_spec)
        live = site.live()
        managed = site.api.managed(live["name"])
        family = site.family() if site.gcp.backend_service else None
        return GroupState(
            group=name,
            kind=self.kind,
            running=True,
            intended=site.intended(live),
            instances=site.instances(live, managed),
            active=History(site).unless_finished(site.active(live, family, managed)),
            desired=int(live.get("target_size", 0)),
        )

    @_guarded("looking up the image")
    def release_of(self, record: ImageRecord, target_spec: TargetSpec) -> Release:
        if not isinstance(target_spec, GcpTarget):
            raise UsageError(f"{record.ref} is not on a gcp target")
        if not record.locations:
            raise UsageError(f"{record.ref} has no location on {record.target}")
        project, _, image = record.locations[0].partition("/")
        path = f"projects/{project}/global/images/{image}"
        api = self.api(target_spec, Where(target_spec.project, zone=target_spec.zone))
        if api.image(path) is None:
            raise UsageError(
                f"{record.ref}: image {path} does not exist (or project {target_spec.project} cannot see it)",
                hint="`bakery images` lists what exists; bake it again if it was deleted",
            )
        return Release.of(record, path)

    # --- moving -------------------------------------------------------------------------------

    def _mover(self, rollout: Rollout) -> Mover:
        site = self.site(rollout.group, rollout.spec, rollout.target_spec)
        where_from = f"{socket.gethostname()}:{os.getpid()}"
        kind = BlueGreen if rollout.plan.strategy == "blue-green" else Mover
        return kind(site, rollout, self.reporter, where_from, self.clock)

    def rollout_steps(self, rollout: Rollout) -> Sequence[Step]:
        return [_guard(step) for step in self._mover(rollout).steps()]

    def rollback_steps(self, rollout: Rollout) -> Sequence[Step]:
        return [_guard(step) for step in self._mover(rollout).rollback_steps()]

    @_guarded("reading the managed instance groups")
    def refuse_takeover(self, name: str, group: Group, target_spec: TargetSpec, state: GroupState, stuck: str) -> None:
        """A new rollout starts over what `stuck` (the unfinished rollback or rollout it replaces)
        left: its check takes the MIG as it is (moving for `stuck`, or stopped by its interruption:
        `stuck` is recorded as over first), its patch of the versions retargets every instance,
        whichever template it runs, and its rollback patches them back to the MIG's base version.
        A half-done blue-green swap (a second MIG serving beside the first) is not taken over:
        RolloutRefused says what to do by hand, naming the MIG bakery reads the group from (the
        live one), what each serving MIG runs, and the backend service where it is (global or
        regional, as read)."""
        active = state.active
        if active is None or not active.step.startswith("blue-green"):
            return
        site = self.site(name, group, target_spec)
        service = str(site.gcp.backend_service)  # a blue-green group has one
        region = site.backends().get("region")
        scope = f"--region {name_of(str(region))}" if region else "--global"
        live_mig = site.live()
        live = str(live_mig["name"])
        serving = [m for m in site.family() if int(m.get("target_size", 0)) > 0]

        def runs(mig: dict[str, Any]) -> str:
            versions = versions_of(mig)
            return site.release(versions[-1][0]).describe() if versions else "no template"

        others = [m for m in serving if m["name"] != live]
        other = str(others[0]["name"]) if len(others) == 1 else "OTHER"
        beside = "; ".join(f"{m['name']} runs {runs(m)}" for m in others) or "none"
        where = f"--zone {site.where.zone}" if site.where.zone else f"--region {site.where.region}"
        raise RolloutRefused(
            f"group {name}: the blue-green swap of {stuck} is half done ({active.describe()}): bakery starts no "
            "rollout over two serving MIGs",
            hint=f"MIG {live} is live (the first of backend service {service}'s backends with instances, what bakery "
            f"reads the group from) and runs {runs(live_mig)}; beside it, {beside}. By hand, keep the MIG that "
            f"runs the image to keep and take the other out of {service}, then resize it to 0; to keep {live}: "
            f"`gcloud compute backend-services remove-backend {service} --instance-group {other} "
            f"--instance-group-{where[2:]} {scope} --project {site.where.project}` and `gcloud compute "
            f"instance-groups managed resize {other} --size 0 {where} --project {site.where.project}`; then run "
            "this command again",
        )

    # --- history ------------------------------------------------------------------------------

    @_guarded("recording the rollout")
    def record(self, name: str, group: Group, target_spec: TargetSpec, entry: HistoryEntry) -> None:
        History(self.site(name, group, target_spec)).write(entry)

    @_guarded("reading the group's history")
    def history(self, name: str, group: Group, target_spec: TargetSpec) -> list[HistoryEntry]:
        return History(self.site(name, group, target_spec)).entries()

    @_guarded("pruning the group's templates")
    def prune(self, name: str, group: Group, target_spec: TargetSpec, keep: int) -> list[str]:
        site = self.site(name, group, target_spec)
        return History(site).prune(keep, group.strategy.retention_seconds)

    def down(self, name: str, group: Group, target_spec: TargetSpec) -> list[str]:
        raise UsageError(
            f"group {name} is a GCP managed instance group: bakery moves it between images but does not stop it",
            hint="resize it with `gcloud compute instance-groups managed resize` if you mean to",
        )


def _guard(step: Step) -> Step:
    """The step with its SDK errors turned into one-line ProviderErrors."""

    def guarded(run: Callable[[Journal], None]) -> Callable[[Journal], None]:
        def inner(journal: Journal) -> None:
            with gcp_errors(f"rollout step {step.name}"):
                run(journal)

        return inner

    return dataclasses.replace(step, run=guarded(step.run), stop=guarded(step.stop) if step.stop is not None else None)
