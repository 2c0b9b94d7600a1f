"""`bakery rollout --behind`: which groups that follow a channel do not run its head, and what
stops one of them (an unfinished rollout elsewhere, a channel with no head left)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bakery.config.models import Group
from bakery.groups.base import Release, Rollout
from bakery.trust.heads import Heads


@dataclass(frozen=True)
class Behind:
    """The groups behind their channel (`Rollouts.behind`), in name order."""

    roll: tuple[str, ...]  # to roll onto the head (an unfinished rollout to the head resumes)
    stopped: Mapping[str, str]  # group -> its unfinished rollout goes elsewhere, and what to do
    headless: Mapping[str, str]  # group -> its channel has no head left, and what to do

    @property
    def groups(self) -> list[str]:
        """The groups --behind takes one at a time, in name order (it stops at a stopped one)."""
        return sorted([*self.roll, *self.stopped])


def behind(
    groups: Mapping[str, Group],
    heads: Heads,
    unfinished: Callable[[str, Group], Rollout | None],
    intended: Callable[[str], Release | None],
) -> Behind:
    """The groups of `groups` that follow a channel and do not run its head (`intended`: what a
    group intends now; `unfinished`: its unfinished rollout, if any), in name order: those to
    roll, those whose unfinished rollout goes elsewhere than the head (resuming it would finish
    an off-channel rollout), and those whose channel has no head left (every head revoked or no
    longer verifying), each with what to do."""
    roll: list[str] = []
    stopped: dict[str, str] = {}
    headless: dict[str, str] = {}
    for name, group in sorted(groups.items()):
        if group.channel is None:
            continue
        head = heads.head(group.channel, group.target, group.image)
        if head.ref is None:
            if head.moved_past:
                headless[name] = (
                    f"channel {group.channel} has no head left for {group.image} on {group.target}: every head "
                    f"is revoked or no longer verifies ({'; '.join(head.moved_past)}); promote a good version to "
                    f"{group.channel}, or `bakery rollback {name}`"
                )
            continue
        rollout = unfinished(name, group)
        if rollout is not None:
            if rollout.to.image == head.ref:
                roll.append(name)
            else:
                way = (
                    f"`bakery rollback {name}` resumes it by hand (an unfinished rollback is resumed, never "
                    f"undone), after which --behind rolls the head again"
                    if rollout.kind == "rollback"
                    else f"`bakery rollback {name}` undoes it, or `bakery rollout {name}` resumes it by hand"
                )
                stopped[name] = (
                    f"{rollout.kind} {rollout.id} of {name} to {rollout.to.describe()} is unfinished, and "
                    f"{rollout.to.image or 'its image'} is not the head of channel {group.channel} "
                    f"({head.ref}): {way}"
                )
            continue
        now = intended(name)
        if now is None or now.image != head.ref:
            roll.append(name)
    return Behind(tuple(roll), stopped, headless)
