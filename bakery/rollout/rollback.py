"""`bakery rollback GROUP` after the group's last rollout completed: a new rollback, back to what
the group ran before that rollout, checked (trust gate, the channel it follows) before it is
planned. An unfinished rollout or rollback is taken up by resume.py instead."""

from __future__ import annotations

import dataclasses

from bakery.config.kinds import TargetSpec
from bakery.config.models import Group
from bakery.core.identity import who
from bakery.groups.base import GroupDriver, Rollout
from bakery.rollout import planning
from bakery.rollout.engine import RecordOf
from bakery.rollout.following import Following
from bakery.rollout.record import shown
from bakery.trust.gate import TrustGate


class Rollbacks:
    def __init__(self, gate: TrustGate, following: Following, record_of: RecordOf) -> None:
        self.gate = gate
        self.following = following
        self.record_of = record_of

    def new(
        self,
        name: str,
        group: Group,
        spec: TargetSpec,
        driver: GroupDriver,
        *,
        reason: str | None,
        allow_unverified: bool,
        allow_off_channel: bool,
    ) -> Rollout:
        """The rollback of `name`'s last completed rollout: back to the release it ran before,
        verified by the trust gate (TrustError when refused; an image bakery did not bake cannot
        verify, so it needs `allow_unverified` where signatures are required). A group following
        a channel goes back only onto an image that was a head of that channel, unless
        `allow_off_channel` (then recorded, as `rollout --image` is): UsageError naming the image
        and the channel. UsageError when there is no completed rollout to undo."""
        state = driver.read(name, group, spec)
        planning.refuse_active(name, state)
        last, before = planning.last_move(name, driver.history(name, group, spec), state)
        record = self.record_of(group, before)
        off = group.channel is not None and self.following.rollback_off_channel(
            name, group, record, before.describe(), allowed=allow_off_channel
        )
        rollout = planning.new(name, group, spec, "rollback", before, record, state, None)
        # The gate is the last check that can refuse (its refusal recorded as one): then what allows it.
        if record is not None:
            self.gate.check(name, group, record, operation="rollback", allow_unverified=allow_unverified, reason=reason)
        else:
            self.gate.check_unrecorded(
                name, group, shown(before), ref=before.image, allow_unverified=allow_unverified, reason=reason
            )
        if off:
            self.following.rolled_back_off_channel(name, group, record, before.describe())
        return dataclasses.replace(rollout, reason=reason or f"rollback of {last.id} requested by {who()}")
