"""A promoting process killed between writing a channel move and its audit event leaves nothing
half-done: the move's event ("intended", naming the move's digest) is appended before the move is
written, a small "ok" event after. Killed before the write, the intent names no move and is
ignored; killed after it, the move has its intent. Either way readers trust the channel at once
and running the same `bakery promote` again finishes the job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bakery.errors import BakeryError
from bakery.registry.local import LocalStore
from bakery.trust.channels import Channel, Channels, Move, Proposal, facts
from tests.unit.promote.conftest import Clock, json_of
from tests.unit.promote.test_follow import promote
from tests.unit.promote.test_promote import digest_of, trust_of
from tests.unit.trust.conftest import World


def _killed(monkeypatch: pytest.MonkeyPatch, *, after_the_write: bool) -> None:
    """From now on the process "dies" (raises) as it writes a channel's document: before the
    document is written, or right after it, before anything else runs."""
    for name in ("create", "replace"):
        original: Callable[..., str] = getattr(LocalStore, name)

        def put(self: LocalStore, key: str, *args: Any, original: Callable[..., str] = original, **kw: Any) -> str:
            if not key.startswith("channels/"):
                return original(self, key, *args, **kw)
            if after_the_write:
                original(self, key, *args, **kw)
            raise BakeryError("killed")

        monkeypatch.setattr(LocalStore, name, put)


def _moves(world: World) -> list[dict[str, Any]]:
    """The channel moves' audit events of web in testing: (result, seq, move digest)."""
    return [
        {k: e["details"].get(k) for k in ("seq", "move")} | {"result": e["result"]}
        for e in world.audit()
        if e["action"] == "promote" and e["subject"].endswith("to channel testing")
    ]


def _history(world: World) -> list[dict[str, Any]]:
    shown = world.run("channels", "testing", "--json")
    assert shown.exit_code == 0, shown.output
    assert "audit" not in shown.stderr  # nothing to warn about
    channels = json_of(shown)["channels"]
    return list(channels[0]["moves"]) if channels else []


@pytest.mark.parametrize("second", [False, True], ids=["first-move", "second-move"])
def test_killed_after_the_intent_before_the_write_leaves_a_trusted_channel_and_a_rerun_promotes(
    world: World, monkeypatch: pytest.MonkeyPatch, clock: Clock, second: bool
) -> None:
    v1 = world.bake()
    if second:
        promote(world, v1)
    ref = world.bake(force=True) if second else v1
    before = _history(world)
    with monkeypatch.context() as dying:
        _killed(dying, after_the_write=False)
        died = world.run("promote", ref, "--to", "testing", "--target", "aws")
    assert died.exit_code == 1, died.output
    assert "killed" in died.stderr
    assert _history(world) == before  # nothing was moved, and what there is is trusted
    [intent] = _moves(world)[len(before) * 2 :]
    assert intent["result"] == "intended" and intent["seq"] == len(before) + 1

    clock.set(minutes=1)  # the rerun's move is stamped later: another statement, another digest
    again = world.run("promote", ref, "--to", "testing", "--target", "aws")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"promoted: {ref} is the head of testing on aws")
    moves = _history(world)
    assert [m["version"] for m in moves] == [r[4:] for r in ([v1, ref] if second else [ref])]
    stale, new, done = _moves(world)[len(before) * 2 :]  # the same seq intended twice, with two digests
    assert [stale["result"], new["result"], done["result"]] == ["intended", "intended", "ok"]
    assert stale["seq"] == new["seq"] == done["seq"] == len(moves)
    assert stale["move"] != new["move"] == done["move"]
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    assert world.driver.runs("web-eu") == {ref: 2}


def test_killed_after_the_write_before_its_ok_event_leaves_a_trusted_channel_and_a_rerun_finishes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = world.bake()
    promote(world, v1)
    v2 = world.bake(force=True)
    with monkeypatch.context() as dying:
        _killed(dying, after_the_write=True)
        died = world.run("promote", v2, "--to", "testing", "--target", "aws")
    assert died.exit_code == 1, died.output
    assert [m["version"] for m in _history(world)] == [v1[4:], v2[4:]]  # moved, and trusted at once
    assert [e["result"] for e in _moves(world)] == ["intended", "ok", "intended"]
    assert world.run("rollout", "web-eu", "--yes").exit_code == 0
    assert world.driver.runs("web-eu") == {v2: 2}

    again = world.run("promote", v2, "--to", "testing", "--target", "aws")
    assert again.exit_code == 0, again.output
    assert f"{v2} was made the head of testing on aws (move 2) by a run that stopped before recording" in again.stderr
    events = _moves(world)
    assert [e["result"] for e in events] == ["intended", "ok", "intended", "ok"]
    assert events[2]["move"] == events[3]["move"] == _history(world)[1]["digest"]
    twice = world.run("promote", v2, "--to", "testing", "--target", "aws")
    assert twice.exit_code == 2  # done now: nothing left to finish
    assert f"{v2} is already the head of testing on aws" in twice.stderr

    v3 = world.bake(force=True)
    promote(world, v3)
    assert [m["version"] for m in _history(world)] == [v1[4:], v2[4:], v3[4:]]


def test_a_lost_race_writes_its_intent_again_for_the_move_it_makes_next_and_the_stale_one_is_ignored(
    world: World,
) -> None:
    v1, v2 = world.bake(), world.bake(force=True)
    digest = digest_of(world, v1)
    trust = trust_of(world)
    hooked: list[Move] = []

    def propose(current: Channel) -> Proposal:
        if not current.moves:  # another machine promotes v2 as this one writes: this write loses the race
            promote(world, v2)
        return Proposal("promote", v1[4:], digest, "p", "me")

    def intend(move: Move) -> None:
        hooked.append(move)
        trust.record("promote", f"{v1} on aws to channel testing", "intended", details=facts(move), strict=True)

    move = Channels(trust).append("testing", "aws", "web", propose, intend)
    assert move is not None and [(m.seq, m.from_) for m in hooked] == [(1, None), (2, v2[4:])]
    assert hooked[0].digest != hooked[1].digest == move.digest
    assert [(m["seq"], m["version"], m["digest"]) for m in _history(world)] == [
        (1, v2[4:], next(e["move"] for e in _moves(world) if e["result"] == "ok")),
        (2, v1[4:], move.digest),
    ]  # read again, trusted: move 1 matched by its digest, not by the stale intent of seq 1
    # v2's intent and "ok", then this machine's intent for seq 1 (its write lost) and for seq 2
    assert [(e["seq"], e["result"]) for e in _moves(world)] == [
        (1, "intended"),
        (1, "ok"),
        (1, "intended"),
        (2, "intended"),
    ]


def test_a_channel_moved_between_reading_it_and_reading_the_log_is_read_again_not_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, v2 = world.bake(), world.bake(force=True)
    promote(world, v1)
    original = LocalStore.get
    moved: list[str] = []

    def get(self: LocalStore, key: str) -> Any:
        found = original(self, key)
        if key.startswith("channels/") and not moved:
            moved.append(key)
            promote(world, v2)  # another machine moves it (its "ok" event included) before this one reads the log
        return found

    monkeypatch.setattr(LocalStore, "get", get)
    history = Channels(trust_of(world)).read("testing", "aws", "web")  # its log read counts move 2
    assert moved and [m.version for m in history.moves] == [v1[4:], v2[4:]]
