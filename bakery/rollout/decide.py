"""What a rollout does after one of its forward steps failed: a pure decision over plain values.

The rollout engine (engine.py) classifies the error, says whether anything moved and whether the
image to roll back to is barred (revoked, or bakery's but no longer found to verify); `decide`
picks the outcome and the engine carries it out.
"""

from __future__ import annotations

import enum
from typing import Literal

from bakery.errors import BakeryError, ConfigError, GateFailed, ProviderError, RolloutRefused, UsageError


class Failure(enum.Enum):
    """What failed."""

    REFUSED = "refused"  # the group cannot be moved now, or the request is wrong (RolloutRefused, usage, config)
    UNREACHABLE = "unreachable"  # the cloud could not be asked or refused the call (ProviderError)
    GATE = "gate"  # a health gate failed (GateFailed)
    STEP = "step"  # any other failure of a step (a revocation found meanwhile, a build error...)


class Outcome(enum.Enum):
    """What the rollout does about it."""

    STOP = "stop"  # nothing moved: recorded as failed, the error raised as it is
    PAUSE = "pause"  # left as it is, resumable (`bakery rollout`) or undone (`bakery rollback`)
    PAUSE_BARRED = "pause-barred"  # would roll back, but onto an image revoked or unverifiable: paused instead
    FAIL = "fail"  # no rollback wanted (or a rollback failed forward): recorded as failed
    ROLL_BACK = "roll-back"  # the group's rollback steps run


def classify(exc: BakeryError) -> Failure:
    """The kind of failure `exc` is."""
    if isinstance(exc, (RolloutRefused, ConfigError, UsageError)):
        return Failure.REFUSED
    if isinstance(exc, ProviderError):
        return Failure.UNREACHABLE
    if isinstance(exc, GateFailed):
        return Failure.GATE
    return Failure.STEP


def decide(
    failure: Failure,
    *,
    moved: bool,
    rollback: bool,
    kind: Literal["rollout", "rollback"],
    previous_barred: bool,
) -> Outcome:
    """The outcome of a failed forward step of a `kind` whose group has `rollback` on or off.

    `moved`: the journal recorded any step done or any fact saved (the group may have changed).
    `previous_barred`: the image a rollback would restore is revoked, or bakery baked it but its
    record is gone so nothing can verify it (it is only looked up, and only matters, when the
    outcome would otherwise be ROLL_BACK): never rolled back onto without a person's override."""
    if failure is Failure.REFUSED and not moved:
        return Outcome.STOP
    if failure in (Failure.UNREACHABLE, Failure.REFUSED):
        return Outcome.PAUSE  # the cloud could not be asked, or said no halfway: nothing to undo blindly
    if not rollback or kind == "rollback":
        return Outcome.FAIL
    if previous_barred:
        return Outcome.PAUSE_BARRED
    return Outcome.ROLL_BACK
