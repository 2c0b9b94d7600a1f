"""Rolling and canary rollouts of an Auto Scaling group, on AWS's instance refresh.

Forward: a new numbered launch template version (aws_moves), then StartInstanceRefresh pinned to
it, with SkipMatching, the group's alarms and AutoRollback; bakery watches it to its final state
with its gate after every poll; at each canary checkpoint and after AWS's "Successful" it waits
until every new instance is healthy (GateFailed otherwise: the service rolls back). The group
itself is never updated: AWS points it at the new version when the refresh succeeds, so a
rollback always has the old version to return to.

Interrupted: the refresh is cancelled (nothing proceeds without bakery's gate) and the journal
says so; a rerun starts a refresh to the same version, which skips the instances already on it.

Rollback: RollbackInstanceRefresh while the refresh is active; once none is, and the group or any
instance is still on another version, a refresh back to the previous numbered version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bakery.errors import GateFailed, RolloutRefused
from bakery.groups.aws import requests as aws_requests
from bakery.groups.aws.marks import ACTIVE_TAG, Mark
from bakery.groups.aws.moves import Mover, active_rollout, refusal
from bakery.groups.aws.resources import ACTIVE, template_of
from bakery.groups.aws.watch import Look, watch
from bakery.progress import GroupView
from bakery.providers.aws.errors import aws_errors
from bakery.steps import Journal, Step


class RefreshMover(Mover):
    def steps(self) -> Sequence[Step]:
        return [
            self.template_step(),
            Step(
                "instance-refresh",
                self.refresh,
                f"{self.rollout.plan.strategy} instance refresh, bakery's gate after every poll",
                stop=self.cancel,
            ),
            Step("finish", self.finish, "clear bakery's mark"),
        ]

    def rollback_steps(self) -> Sequence[Step]:
        previous = self.rollout.previous.describe() if self.rollout.previous else "the previous version"
        return [
            Step("roll-back", self.roll_back, f"return the group to {previous}"),
            Step("finish-rollback", self.finish, "clear bakery's mark"),
        ]

    # --- forward ------------------------------------------------------------------------------

    def refresh(self, journal: Journal) -> None:
        asg, template_id, version = journal.get("asg"), journal.get("template"), int(journal.get("version"))
        with aws_errors(f"rolling Auto Scaling group {asg}"):
            self.api.target_group_arns()  # looked up once, before the watch: its gate reads only health
            refresh_id = journal.get("refresh")
            if refresh_id:
                found = self.api.refresh(asg, refresh_id)
                if found.get("Status") == "Cancelling":
                    found = watch(self.api, self.reporter, asg, refresh_id, budget=self.budget)
                if found.get("Status") in ACTIVE:
                    self._follow(asg, refresh_id, version)
                    return
                if found.get("Status") == "Successful":
                    self._settle(asg, version)
                    return
                if found.get("Status") != "Cancelled":
                    error = aws_requests.outcome_error(found, asg)
                    if error is not None:
                        raise error
                self.reporter.note(
                    f"instance refresh {refresh_id} was cancelled; a new one to version {version} "
                    "skips the instances already replaced"
                )
            refresh_id = self._start(journal, asg, template_id, version)
            self._follow(asg, refresh_id, version)

    def _start(self, journal: Journal, asg: str, template_id: str, version: int) -> str:
        active = self.api.active_refresh(asg)
        if active is not None:
            mark = Mark.decode(self.api.template_tags(template_id).get(ACTIVE_TAG))
            ours = mark is not None and mark.rollout == self.rollout.id
            if ours and aws_requests.desired_version(active) == str(version):
                refresh_id = str(active["InstanceRefreshId"])  # started by a run killed before it saved the id
                journal.put("refresh", refresh_id)
                return refresh_id
            raise refusal(self.name, asg, active_rollout(self.api, template_id, active, mark))
        try:
            self.gate.alarms()
        except GateFailed as failed:
            raise RolloutRefused(f"group {self.name}: {failed.message}; bakery starts no rollout then") from None
        self.mark(journal, "")
        request = aws_requests.refresh_request(
            asg,
            template_id,
            version,
            self.rollout.plan,
            self.settings,
            auto_rollback=self.rollout.spec.rollback,
            alarms=self.gate.watch_alarms,
        )
        refresh_id = self.api.start_refresh(request)
        journal.put("refresh", refresh_id)
        self.mark(journal, refresh_id)
        self.reporter.note(f"instance refresh {refresh_id} of {asg} started, to launch template version {version}")
        return refresh_id

    def _follow(self, asg: str, refresh_id: str, version: int) -> None:
        checkpoints = set(self.rollout.plan.checkpoints) - {100} if self.rollout.plan.strategy == "canary" else set()
        seen: set[int] = set()
        shown: list[GroupView] = []

        def gate(refresh: dict[str, Any]) -> None:
            look = self.gate.check(asg, version)
            percent = int(refresh.get("PercentageComplete") or 0)
            self._show(look, version, percent, shown)
            for point in sorted(checkpoints - seen):
                if percent >= point:
                    seen.add(point)
                    look = self.gate.settle(
                        asg, version, f"the gate at checkpoint {point}%", self.reporter, final=False
                    )
                    self._show(look, version, percent, shown)
                    self.reporter.note(f"checkpoint {point}%: bakery's gate is green ({self._green(look)})")

        try:
            final = watch(
                self.api, self.reporter, asg, refresh_id, budget=self.budget, gate=gate, gate_calls=self.gate.calls()
            )
            error = aws_requests.outcome_error(final, asg)
            if error is not None:
                raise error
            # Successful at AWS says only that instances launched: bakery's gate has the last word.
            self._settle(asg, version)
        except GateFailed:
            if not self.rollout.spec.rollback and self.api.cancel_refresh(asg):
                # nobody rolls back: at least nothing goes on unwatched
                self.reporter.note(f"instance refresh {refresh_id} cancelled (the group's rollback is off)")
            raise

    def _settle(self, asg: str, version: int) -> None:
        look = self.gate.settle(asg, version, f"the gate on {asg}", self.reporter, final=True)
        self.reporter.note(f"bakery's gate is green on every instance of {asg} ({self._green(look)})")

    def _green(self, look: Look) -> str:
        alarms = ", alarms not in ALARM" if self.gate.watch_alarms else ""
        return f"{look.passed} new instance(s) healthy{alarms}"

    def _show(self, look: Look, version: int, percent: int, shown: list[GroupView]) -> None:
        view = self._view(look, version, percent)
        if view not in shown:
            self.reporter.progress(view)
            shown[:] = [view]

    def _view(self, look: Look, version: int, percent: int) -> GroupView:
        new = self.rollout.to.image or self.rollout.to.image_id
        old = (self.rollout.previous.image if self.rollout.previous else None) or "previous"
        states: dict[str, int] = {}
        for instance in look.group.get("Instances", []):
            image = new if instance.get("LaunchTemplate", {}).get("Version") == str(version) else old
            label = f"{image} {instance.get('LifecycleState', '?')}"
            states[label] = states.get(label, 0) + 1
        health = {"healthy": look.passed, "pending": look.new - look.passed}
        return GroupView(
            group=self.name,
            step="instance refresh",
            waves_done=len([w for w in self.rollout.plan.waves if w.percent <= percent]),
            waves=len(self.rollout.plan.waves),
            states=states,
            health={k: v for k, v in health.items() if v},
            percent=percent,
        )

    def cancel(self, journal: Journal) -> None:
        """On an interrupt: cancel the refresh, so that nothing proceeds without bakery's gate.
        Only this rollout's: the one whose id it saved, else (killed before it saved the id) one
        that pins the launch template version this rollout made; never someone else's."""
        asg, refresh_id = journal.get("asg"), journal.get("refresh")
        if not asg:
            return
        with aws_errors(f"cancelling the instance refresh of {asg}"):
            active = self.api.active_refresh(asg)
            if active is None or active.get("Status") in ("Cancelling", "RollbackInProgress"):
                return
            if not self._ours(active, refresh_id, journal):
                return
            if self.api.cancel_refresh(asg):
                journal.put("cancelled", active["InstanceRefreshId"])
                self.reporter.note(
                    f"instance refresh {active['InstanceRefreshId']} of {asg} cancelled: "
                    f"`bakery rollout {self.name}` resumes it, `bakery rollback {self.name}` returns the group "
                    "to its previous image"
                )

    @staticmethod
    def _ours(active: dict[str, Any], refresh_id: str | None, journal: Journal) -> bool:
        if refresh_id:
            return bool(active.get("InstanceRefreshId") == refresh_id)
        pinned = active.get("DesiredConfiguration", {}).get("LaunchTemplate", {})
        version = journal.get("version")
        return (
            version is not None
            and pinned.get("LaunchTemplateId") == journal.get("template")
            and aws_requests.desired_version(active) == str(version)
        )

    # --- rollback -----------------------------------------------------------------------------

    def roll_back(self, journal: Journal) -> None:
        asg = journal.get("asg") or self.api.live_group(self.name)["AutoScalingGroupName"]
        with aws_errors(f"rolling back Auto Scaling group {asg}"):
            if not self._moved(journal, asg):
                self.reporter.note(f"{asg} was not changed: no instance refresh was started")
                return
            template_id, number = self.previous_version()
            restore = journal.get("restore")
            if restore:
                found = self.api.refresh(asg, restore)
                if found.get("Status") == "Successful":
                    return
                if found.get("Status") in ACTIVE:
                    self._end_restore(asg, restore)
                    return
            active = self.api.active_refresh(asg)
            if active is not None:
                self._unwind(asg, active)
            if self._back_on(asg, number):
                self.reporter.note(f"{asg} runs launch template version {number} again")
                return
            request = aws_requests.refresh_request(
                asg,
                template_id,
                number,
                self.rollout.plan,
                self.settings,
                auto_rollback=False,
                checkpoints=False,
                alarms=False,
            )
            restore = self.api.start_refresh(request)
            journal.put("restore", restore)
            previous = self.rollout.previous
            self.mark(journal, restore, to=(previous.image or previous.image_id) if previous else None)
            self.reporter.note(f"instance refresh {restore} of {asg} started, back to launch template version {number}")
            self._end_restore(asg, restore)

    def _moved(self, journal: Journal, asg: str) -> bool:
        """Whether this rollout started a refresh (one saved in the journal, or an active one
        carrying this rollout's mark: started by a run killed before it saved the id)."""
        if journal.get("refresh") or journal.get("restore"):
            return True
        active = self.api.active_refresh(asg)
        if active is None:
            return False
        mark = Mark.decode(self.api.template_tags(self.api.template()["LaunchTemplateId"]).get(ACTIVE_TAG))
        return mark is not None and mark.rollout == self.rollout.id

    def _unwind(self, asg: str, active: dict[str, Any]) -> None:
        """Roll back (or, when AWS cannot, cancel) the active refresh and wait for its end."""
        refresh_id = str(active["InstanceRefreshId"])
        moving = ("Pending", "InProgress", "Baking")
        if active.get("Status") in moving:
            if self.api.rollback_refresh(asg) is not None:
                self.reporter.note(f"RollbackInstanceRefresh: AWS rolls back instance refresh {refresh_id}")
            elif self.api.refresh(asg, refresh_id).get("Status") in moving:  # not one AWS can roll back
                self.api.cancel_refresh(asg)
            # else: AWS began rolling it back on its own (an alarm of its AlarmSpecification)
        final = watch(self.api, self.reporter, asg, refresh_id, budget=self.budget)
        if final.get("Status") == "RollbackFailed":
            error = aws_requests.outcome_error(final, asg)
            assert error is not None
            raise error

    def _end_restore(self, asg: str, refresh_id: str) -> None:
        final = watch(self.api, self.reporter, asg, refresh_id, budget=self.budget)
        error = aws_requests.outcome_error(final, asg)
        if error is not None:
            raise type(error)(f"the rollback failed: {error.message}", hint=error.hint)

    def _back_on(self, asg: str, number: int) -> bool:
        group = self.api.must_group(asg)
        ref = template_of(group)
        if ref is None or ref.number != number:
            return False
        return all(i.get("LaunchTemplate", {}).get("Version") == str(number) for i in group.get("Instances", []))
