"""The steps of a rolling or canary rollout of a managed instance group, and of its rollback.

    check     the group is at rest (or moving for this very rollout), its health check is the MIG's
    template  the instance template to move to: made once (the current one with the new image), or
              the one a rollback after completion restores
    canary    versions [current, new with targetSize = the canary wave], PROACTIVE; until stable
              with the canaries ready                                                   (canary)
    hold      the canary wave's hold_seconds with the gate green                        (canary)
    roll      versions [new], PROACTIVE; until every instance runs it, ready
    policy    the MIG's own update policy back, as check saved it in the journal
    restore   (rollback) versions [previous], PROACTIVE; until every instance runs it
    policy    (rollback) the MIG's own update policy back

Each step reads the MIG first and patches only what differs, so a rerun carries on. A failed gate
freezes the MIG (updatePolicy OPPORTUNISTIC: nothing more is replaced) before it is reported, and so
does an interruption (Step.stop); the next patch of a rerun or of the rollback sets PROACTIVE again.
After a failure with the group's rollback off, the MIG stays OPPORTUNISTIC (nothing moves while
nobody watches); its own policy, also written on the rollout's template, comes back at the end of
the next rollout or rollback.

The canary's base is the MIG's live base version, read by check; check refuses a rollout planned
from another template (rollout.previous, what a rollback restores) before anything moves.
Rollback steps read only the journal's values saved by forward steps, never its `done` list (the
engine clears it when the phase turns to rollback).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bakery import steps as engine
from bakery.errors import Conflict, GateFailed, OperationFailed, ProviderError, RolloutRefused
from bakery.groups.base import Rollout
from bakery.groups.budget import CallBudget, Clock
from bakery.groups.gcp.history import History
from bakery.groups.gcp.read import Site
from bakery.groups.gcp.requests import (
    FROZEN,
    TEMPLATE_MARKER,
    all_on,
    bare_policy,
    canary,
    describe,
    fixed_of,
    instance_labels,
    listed_versions,
    name_of,
    next_template,
    policy_notes,
    resource_path,
    same_versions,
    shown_versions,
    template_facts,
    template_name,
    update_policy,
    versions_of,
    zones_of,
)
from bakery.groups.gcp.watch import Goal, Look, Watcher, health_of, ready, state_of
from bakery.progress import GroupView, Reporter
from bakery.steps import Step

# Journal keys (the steps' notebook, see bakery.steps).
MIG, PREVIOUS, TEMPLATE, SIZE = "gcp.mig", "gcp.previous", "gcp.template", "gcp.size"
STOPPED, HOLD_STARTED = "gcp.stopped", "gcp.hold-started"
POLICY = "gcp.policy"  # the MIG's own updatePolicy before this rollout changed it
VERSIONS = "gcp.versions"  # the MIG's versions as this rollout planned them, then as it last set them
ATTEMPT = "gcp.template-attempt"  # template inserts whose operation failed: each retry is a new request
PATCH_ATTEMPTS = 3  # PATCHes that lost the fingerprint race to a change that left the versions alone


class Mover:
    """Moves one MIG between instance templates for one rollout."""

    def __init__(
        self, site: Site, rollout: Rollout, reporter: Reporter, where_from: str, clock: Clock | None = None
    ) -> None:
        self.site = site
        self.rollout = rollout
        self.reporter = reporter
        self.where_from = where_from  # host:pid of this process, written on the template it makes
        self.budget = CallBudget.for_rollout(clock)  # one for every watch of the rollout (bakery.groups.budget)

    # --- shared with blue-green ----------------------------------------------------------------

    def check(self, journal: engine.Journal) -> None:
        live = self.site.live()
        family = self.site.family() if self.site.gcp.backend_service else None
        active = History(self.site).unless_finished(self.site.active(live, family))
        if active is not None and active.id != self.rollout.id:
            raise RolloutRefused(
                f"group {self.site.name}: {self.site.where.mig(live['name'])} is moving now: {active.describe()}",
                hint="wait for it to finish, or stop it where it runs (`bakery rollback` there)",
            )
        self.site.require_health_check(live)
        size, zones = int(live.get("target_size", 0)), zones_of(live)
        update_policy(self.site.gcp, size, zones)  # refuses a policy GCE would refuse, before anything moves
        if journal.get(MIG) is not None:
            return
        base = next((path for path, target in versions_of(live) if target is None), None)
        planned = self.rollout.previous.template if self.rollout.previous else None
        if planned and resource_path(planned) != base:
            raise RolloutRefused(
                f"group {self.site.name}: {self.site.where.mig(live['name'])} runs instance template "
                f"{name_of(base) if base else '(none without a target size)'} now, not {name_of(planned)} "
                "as when this rollout was planned: it changed meanwhile, and nothing was moved",
                hint="run the command again: it plans from what the group runs now",
            )
        for note in policy_notes(self.site.gcp, size, zones):
            self.reporter.note(note)
        journal.put(POLICY, self._own_policy(live))
        journal.put(PREVIOUS, base)
        journal.put(SIZE, size)
        journal.put(VERSIONS, [list(v) for v in versions_of(live)])
        journal.put(MIG, live["name"])

    def _own_policy(self, live: dict[str, Any]) -> dict[str, Any]:
        """The MIG's update policy as its owner set it: as read, unless a bakery rollout that failed
        with rollback off left it stopped (OPPORTUNISTIC); then the one that rollout saved."""
        policy = bare_policy(live.get("update_policy"))
        if policy.get("type_") != "OPPORTUNISTIC":
            return policy
        records = History(self.site).records()
        for path, _ in versions_of(live):
            facts = self.site.facts(path) or {}
            found = records.get(str(facts.get("rollout")))
            if isinstance(facts.get("policy"), dict) and found and found[0].entry.result == "failed":
                self.reporter.note(
                    f"{live['name']}: left stopped by rollout {facts.get('rollout')}; "
                    f"its update policy from before that ({facts['policy'].get('type_')}) is what comes back"
                )
                return dict(facts["policy"])
        return policy

    def template(self, journal: engine.Journal) -> None:
        if journal.get(TEMPLATE) and self.site.template(journal.get(TEMPLATE)) is not None:
            return
        if self.rollout.to.template:
            path = resource_path(self.rollout.to.template)
            if self.site.template(path) is None:
                raise ProviderError(
                    f"GCP: instance template {path}, which {self.rollout.to.describe()} ran on, no longer exists",
                    hint="roll out that image again with `bakery rollout --image` (a new template is made)",
                )
            journal.put(TEMPLATE, path)
            return
        journal.put(TEMPLATE, self._make_template(journal))

    def _make_template(self, journal: engine.Journal) -> str:
        current_path = journal.get(PREVIOUS)
        current = self.site.template(current_path) if current_path else None
        if current is None:
            raise ProviderError(
                f"GCP: the group's instance template {current_path} cannot be read, so it cannot be copied"
            )
        scope = current_path.split("/instanceTemplates/")[0].removeprefix(f"projects/{self.site.where.project}/")
        name = template_name(self.site.gcp.mig, self.rollout.id)
        path = f"projects/{self.site.where.project}/{scope}/instanceTemplates/{name}"
        existing = self.site.template(path)
        if existing is not None:
            if (self.site.facts(path) or {}).get("rollout") != self.rollout.id:
                raise ProviderError(f"GCP: instance template {name} exists and is not rollout {self.rollout.id}'s")
            return path
        to = self.rollout.to
        human = f"bakery: {to.image or to.image_id} for group {self.site.name}, rollout {self.rollout.id}"
        body = next_template(
            current,
            name=name,
            image=to.image_id,
            labels=instance_labels(self.rollout),
            description=describe(
                human,
                TEMPLATE_MARKER,
                template_facts(self.rollout, self.site.key, self.where_from, policy=journal.get(POLICY)),
            ),
        )
        self.reporter.note(f"creating instance template {name} ({to.image or to.image_id})")
        # GCE answers a repeated requestId with the first operation, failed or not: a retry after a
        # failed insert is a new request (a kill during the insert repeats the same one, safely).
        attempt = int(journal.get(ATTEMPT) or 0)
        key = self.rollout.id if attempt == 0 else f"{self.rollout.id}:{attempt}"
        try:
            self.site.api.insert_template(scope, body, key)
        except OperationFailed:
            journal.put(ATTEMPT, attempt + 1)
            raise
        self.site.forget(path)
        return path

    def watcher(self, mig: str, new: str, step: str, old: str | None = None) -> Watcher:
        """A watcher of `mig` that shows how far `new` (a template) has got. What `new` and `old`
        run is looked up now, once, so that the watch's looks read only the group."""
        for path in (new, old):
            if path:
                self.site.release(path)
        return Watcher(
            self.site.api, mig, self.site.group, self.reporter, view=self.view(step, new), budget=self.budget
        )

    def view(self, step: str, new_template: str) -> Callable[[Look], GroupView]:
        """The live view of a look at a MIG: its instances per image and state, their health, and
        how far this rollout's template has got."""
        checked = bool(self.site.gcp.health_check)
        waves = self.rollout.plan.waves

        def picture(look: Look) -> GroupView:
            states: dict[str, int] = {}
            health: dict[str, int] = {}
            for template in {i.get("version", {}).get("instance_template", "") for i in look.instances} - {""}:
                if calls := self.site.release_calls(template):  # one nobody expected: in the budget too
                    self.budget.take(calls, f"reading instance template {name_of(template)}")
            for instance in look.instances:
                template = instance.get("version", {}).get("instance_template", "")
                release = self.site.release(template) if template else None
                label = f"{(release.image if release else None) or name_of(template) or '?'} {state_of(instance)}"
                states[label] = states.get(label, 0) + 1
                verdict = "healthy" if ready(instance, checked=checked) else "pending"
                verdict = "unhealthy" if health_of(instance) in ("UNHEALTHY", "TIMEOUT") else verdict
                health[verdict] = health.get(verdict, 0) + 1
            size = max(1, self.rollout.plan.size)
            new = [i for i in look.on(new_template) if ready(i, checked=checked)]
            return GroupView(
                group=self.site.name,
                step=step,
                waves_done=sum(1 for w in waves if w.total <= len(new)),
                waves=len(waves),
                states=states,
                health=health,
                percent=min(100, len(new) * 100 // size),
            )

        return picture

    def apply(self, journal: engine.Journal, mig: str, versions: list[dict[str, Any]]) -> None:
        """Patch the MIG to `versions` with bakery's PROACTIVE policy, unless it has them already.
        The PATCH carries the fingerprint of the MIG as read just before, and the versions read
        must be the ones this rollout planned or last set: a change made by someone else in
        between is named, never overwritten. A fingerprint race that left the versions alone
        (another field changed) is retried."""
        for _ in range(PATCH_ATTEMPTS):
            current = self.site.mig(mig)
            if same_versions(current, versions):
                body: dict[str, Any] = {}
            else:
                self._unchanged_since(journal, mig, current)
                body = {"versions": versions}
            policy = update_policy(self.site.gcp, int(current.get("target_size", 0)), zones_of(current))
            if not has_policy(current, policy):
                body["update_policy"] = policy
            if not body:
                journal.put(VERSIONS, [list(v) for v in versions_of(current)])
                return
            if journal.get(STOPPED):
                self.reporter.note(f"{mig}: it was stopped at {journal.get(STOPPED)}; PROACTIVE again")
            self.reporter.note(f"{mig}: versions [{listed_versions(versions)}], PROACTIVE")
            try:
                self.site.api.patch_mig(
                    mig, body, f"patching {self.site.where.mig(mig)}", fingerprint=current.get("fingerprint")
                )
            except Conflict:
                self.reporter.note(f"{mig}: changed between bakery's read and its PATCH; reading it again")
                continue
            journal.put(VERSIONS, [[resource_path(v["instance_template"]), fixed_of(v)] for v in versions])
            journal.put(STOPPED, None)
            return
        raise ProviderError(
            f"GCP: {self.site.where.mig(mig)} kept changing under bakery's PATCH ({PATCH_ATTEMPTS} fingerprint "
            "races in a row)",
            hint=f"`bakery rollout {self.site.name}` tries again once whatever changes the group has stopped",
        )

    def _unchanged_since(self, journal: engine.Journal, mig: str, current: dict[str, Any]) -> None:
        """ProviderError naming the change when the MIG's versions are no longer the ones this
        rollout planned or last set (someone else patched them)."""
        seen = journal.get(VERSIONS)
        now = [list(v) for v in versions_of(current)]
        if seen is None or now == seen:
            return
        raise ProviderError(
            f"GCP: the versions of {self.site.where.mig(mig)} changed outside this rollout: "
            f"[{shown_versions(seen)}] when bakery last looked, [{shown_versions(now)}] now; bakery stops rather than "
            "overwrite that change",
            hint=f"find who changed it (the MIG's operations), then `bakery rollout {self.site.name}` to carry on "
            f"from what it runs now, or `bakery rollback {self.site.name}`",
        )

    def freeze(self, journal: engine.Journal, mig: str | None = None) -> None:
        """Stop the MIG replacing instances (OPPORTUNISTIC) and say so in the journal."""
        name = mig or journal.get(MIG)
        if not name:
            return
        self.site.api.patch_mig(name, FROZEN, f"stopping {self.site.where.mig(name)}")
        journal.put(STOPPED, engine.now())
        self.reporter.note(
            f"{name}: stopped (updatePolicy OPPORTUNISTIC); a rerun carries on, a rollback returns; "
            "its own update policy comes back when either finishes"
        )

    @contextmanager
    def frozen_on_gate(self, journal: engine.Journal, mig: str | None = None) -> Iterator[None]:
        """A failed gate leaves the MIG frozen, not replacing more instances with a bad template."""
        try:
            yield
        except GateFailed:
            self.freeze(journal, mig)
            if not self.rollout.spec.rollback:
                self.reporter.note(
                    f"{mig or journal.get(MIG)}: the group's rollback is off, so it stays OPPORTUNISTIC "
                    "(nothing is replaced while nobody watches) until a rollout or `bakery rollback` moves it; "
                    f"its own update policy ({(journal.get(POLICY) or {}).get('type_', 'unknown')}) "
                    "comes back when that finishes"
                )
            raise

    def restore_policy(self, journal: engine.Journal) -> None:
        """Put back the MIG's own update policy, as check saved it (nothing when it never moved)."""
        mig, own = journal.get(MIG), journal.get(POLICY)
        if not mig or not own or has_policy(self.site.mig(mig), own):
            return
        self.reporter.note(f"{mig}: its own update policy back ({own.get('type_', 'as it was')})")
        self.site.api.patch_mig(
            mig, {"update_policy": own}, f"restoring the update policy of {self.site.where.mig(mig)}"
        )

    # --- rolling and canary ----------------------------------------------------------------------

    def steps(self) -> list[Step]:
        out = [
            Step("check", self.check, "the group is at rest, and its settings are GCE's"),
            Step("template", self.template, "the instance template with the new image"),
        ]
        if self.rollout.plan.strategy == "canary" and self.rollout.plan.waves:
            wave = self.rollout.plan.waves[0]
            out += [
                Step("canary", self._canary, f"{wave.count} instance(s) on the new template", self.freeze),
                Step("hold", self._hold, f"hold {wave.hold_seconds}s with the gate green", self.freeze),
            ]
        out.append(Step("roll", self._roll, "every instance on the new template", self.freeze))
        out.append(Step("policy", self.restore_policy, "the MIG's own update policy back"))
        return out

    def _canary(self, journal: engine.Journal) -> None:
        count = self.rollout.plan.waves[0].count
        new, mig = journal.get(TEMPLATE), journal.get(MIG)
        with self.frozen_on_gate(journal):
            self.apply(journal, mig, canary(journal.get(PREVIOUS), new, count, self.rollout.id))
            self.watcher(mig, new, "canary", journal.get(PREVIOUS)).until(Goal(new, count))

    def _hold(self, journal: engine.Journal) -> None:
        seconds = self.rollout.plan.waves[0].hold_seconds
        if journal.get(HOLD_STARTED) is None:
            journal.put(HOLD_STARTED, engine.now())
        started = datetime.fromisoformat(journal.get(HOLD_STARTED).replace("Z", "+00:00"))
        left = seconds - (datetime.now(UTC) - started).total_seconds()
        count = self.rollout.plan.waves[0].count
        with self.frozen_on_gate(journal):
            new = journal.get(TEMPLATE)
            self.watcher(journal.get(MIG), new, "hold", journal.get(PREVIOUS)).hold(Goal(new, count), max(0.0, left))

    def _roll(self, journal: engine.Journal) -> None:
        new, mig = journal.get(TEMPLATE), journal.get(MIG)
        with self.frozen_on_gate(journal):
            self.apply(journal, mig, all_on(new, self.rollout.id))
            self.watcher(mig, new, "roll", journal.get(PREVIOUS)).until(Goal(new))

    # --- rollback ---------------------------------------------------------------------------------

    def rollback_steps(self) -> list[Step]:
        return [
            Step("restore", self._restore, "every instance back on the previous template", self.freeze),
            Step("policy", self.restore_policy, "the MIG's own update policy back"),
        ]

    def _restore(self, journal: engine.Journal) -> None:
        previous = (self.rollout.previous.template if self.rollout.previous else None) or journal.get(PREVIOUS)
        mig = journal.get(MIG)
        if mig is None or journal.get(TEMPLATE) is None:  # the MIG is patched only after both are known
            self.reporter.note(f"{self.site.gcp.mig}: this rollout never moved it; nothing to return")
            return
        if previous is None:
            raise ProviderError(f"GCP: {self.site.where.mig(mig)}: bakery does not know which template it ran before")
        previous = resource_path(previous)
        self.apply(journal, mig, all_on(previous, "stable"))
        self.watcher(mig, previous, "restore", journal.get(TEMPLATE)).until(Goal(previous, gate=False))


def has_policy(mig: dict[str, Any], policy: dict[str, Any]) -> bool:
    """Whether the MIG's update policy is `policy` (GCE adds fields, such as `calculated`)."""
    have = mig.get("update_policy", {})
    for key, value in policy.items():
        if isinstance(value, dict):
            if {k: (have.get(key) or {}).get(k) for k in value} != value:
                return False
        elif have.get(key) != value:
            return False
    return True
