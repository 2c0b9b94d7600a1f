"""A bake's duties toward what bakes leave on a target (bakery/bake/leftovers.py), against the fake provider."""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from bakery import runner
from bakery.bake import leftovers
from bakery.core.debris import Owner, iso
from bakery.errors import Interrupted, ProviderError
from bakery.progress import Recording
from tests.fakes.provider import FakeProvider, wait_for


def ago(**delta: float) -> str:
    return iso(datetime.now(UTC) - timedelta(**delta))


DEAD = Owner("deadbake0001", "builder-7", 4242, "0ther0b00t00", "2026-01-02T03:04:05Z")
LIVE = Owner("livebake0001", "builder-8", 4343, "0ther0b00t00", "2026-01-02T03:04:06Z")


@pytest.fixture()
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture()
def reporter() -> Recording:
    return Recording()


# --- clear ---------------------------------------------------------------------------------------


def test_clear_removes_what_dead_bakes_left_and_returns_it(fake: FakeProvider, reporter: Recording) -> None:
    beat = ago(minutes=6)
    fake.create("aws", "web", "1.0.4", DEAD.invocation, region="region-a", image_id="img-1", owner=DEAD, heartbeat=beat)
    fake.create("aws", "web", "1.0.4", DEAD.invocation, region="region-b", image_id="img-2", owner=DEAD, heartbeat=beat)
    fake.create("aws", "web", "1.0.3", "complete0001", state="complete", image_id="img-3")  # a recorded version
    fake.create("aws", "api", "1.0.9", "otherimage01", image_id="img-4", created=ago(hours=1))  # another image's

    found = leftovers.clear(fake, "aws", "web", reporter)

    assert [(x.version, x.invocation) for x in found] == [("1.0.4", DEAD.invocation)]
    assert reporter.notes == [
        "removing web@1.0.4 on aws (region-a:img-1, region-b:img-2), left by the bake deadbake0001 started "
        f"2026-01-02T03:04:05Z on builder-7 (pid 4242); its heartbeat stopped at {beat}",
        "removed img-1 in region-a; img-2 in region-b",
    ]
    assert sorted(i.id for i in fake.all_images()) == ["img-3", "img-4"]


def test_clear_removes_an_image_a_bake_marked_but_never_owned_once_the_lease_is_over(
    fake: FakeProvider, reporter: Recording
) -> None:
    created = ago(minutes=6)
    fake.create("aws", "web", "1.0.4", "silentbake01", image_id="img-1", created=created)
    leftovers.clear(fake, "aws", "web", reporter)
    assert reporter.notes[0] == (
        f"removing web@1.0.4 on aws (region-a:img-1), left by the bake silentbake01; it never wrote a heartbeat "
        f"after creating the image at {created}"
    )
    assert fake.all_images() == []


def test_clear_refuses_while_a_bake_may_still_run_and_leaves_its_image(fake: FakeProvider, reporter: Recording) -> None:
    fake.create("aws", "web", "1.0.5", LIVE.invocation, image_id="img-2", owner=LIVE, heartbeat=ago(seconds=10))

    with pytest.raises(ProviderError) as caught:
        leftovers.clear(fake, "aws", "web", reporter)

    assert re.fullmatch(
        r"another bake of web@1\.0\.5 on aws is under way: the bake livebake0001 started 2026-01-02T03:04:06Z on "
        r"builder-8 \(pid 4343\) is still running \(heartbeat 1\ds ago\) \(region-a:img-2\)",
        caught.value.message,
    )
    assert caught.value.hint == (
        "wait for it to finish; once its bake is provably dead, the next bake removes what it left"
    )
    assert [i.id for i in fake.all_images()] == ["img-2"]
    assert fake.called("remove") == []
    assert reporter.notes == []


def test_clear_says_so_when_the_debris_was_already_gone(fake: FakeProvider, reporter: Recording) -> None:
    fake.create("aws", "web", "1.0.4", DEAD.invocation, image_id="img-1", owner=DEAD, heartbeat=ago(minutes=6))
    fake.on("remove", lambda: fake.delete("img-1"))  # another bake removed it a moment earlier
    leftovers.clear(fake, "aws", "web", reporter)
    assert reporter.notes[-1] == "removed nothing: it was already gone"


def test_a_signal_while_clearing_debris_warns_and_the_removal_goes_on(fake: FakeProvider, reporter: Recording) -> None:
    fake.create("aws", "web", "1.0.4", DEAD.invocation, image_id="img-1", owner=DEAD, heartbeat=ago(minutes=6))
    fake.interrupt("remove")
    with runner.signal_guard():
        leftovers.clear(fake, "aws", "web", reporter)
    assert reporter.notes[1] == (
        "cleanup is under way; stopping it now would leave behind: region-a:img-1. "
        "Press Ctrl-C (or send the signal) again to abandon the cleanup."
    )
    assert reporter.notes[2] == "removed img-1 in region-a"
    assert fake.all_images() == []


# --- claim ---------------------------------------------------------------------------------------


def test_claim_passes_when_no_other_image_has_the_version(fake: FakeProvider) -> None:
    fake.create("aws", "web", "1.0.3", "mine00000001")
    fake.create("aws", "web", "1.0.2", "older0000001", created=ago(hours=1))
    leftovers.claim(fake, "aws", "web", "1.0.3", "mine00000001")  # no error: it keeps the version


def test_claim_fails_for_the_image_created_after_a_rivals(fake: FakeProvider) -> None:
    fake.create("aws", "web", "1.0.3", "mine00000001", image_id="img-mine", created="2026-01-02T03:05:00Z")
    fake.create("aws", "web", "1.0.3", LIVE.invocation, image_id="img-r", created="2026-01-02T03:04:59Z", owner=LIVE)
    with pytest.raises(ProviderError) as caught:
        leftovers.claim(fake, "aws", "web", "1.0.3", "mine00000001")
    assert caught.value.message == (
        "web@1.0.3 on aws was taken first by the bake livebake0001 started 2026-01-02T03:04:06Z on builder-8 "
        "(pid 4343) (region-a:img-r, created 2026-01-02T03:04:59Z); this bake's image is removed"
    )
    # The rival, applying the same rule, keeps the version.
    leftovers.claim(fake, "aws", "web", "1.0.3", LIVE.invocation)  # no error: it keeps the version


def test_claim_compares_moments_not_how_a_cloud_writes_them(fake: FakeProvider) -> None:
    fake.create("aws", "web", "1.0.3", "mine00000001", created="2026-01-02T03:05:00Z")
    fake.create("aws", "web", "1.0.3", "rival0000001", created="2026-01-02T04:04:59.000+01:00", image_id="img-r")
    with pytest.raises(ProviderError, match=r"taken first by the bake rival0000001 \(region-a:img-r"):
        leftovers.claim(fake, "aws", "web", "1.0.3", "mine00000001")


def test_claim_breaks_a_tie_by_invocation(fake: FakeProvider) -> None:
    for bake in ("bbbb00000001", "aaaa00000001"):
        fake.create("aws", "web", "1.0.3", bake, created="2026-01-02T03:05:00Z")
    leftovers.claim(fake, "aws", "web", "1.0.3", "aaaa00000001")  # no error: it keeps the version
    with pytest.raises(ProviderError, match="taken first by the bake aaaa00000001"):
        leftovers.claim(fake, "aws", "web", "1.0.3", "bbbb00000001")


def test_claim_without_an_image_of_its_own_loses_to_any_existing_one(fake: FakeProvider) -> None:
    fake.create("aws", "web", "1.0.3", "rival0000001", created=ago(seconds=1))
    with pytest.raises(ProviderError, match="taken first by the bake rival0000001"):
        leftovers.claim(fake, "aws", "web", "1.0.3", "mine00000001")


# --- remove_own ----------------------------------------------------------------------------------


def test_remove_own_removes_every_copy_in_any_state_and_nothing_else(fake: FakeProvider, reporter: Recording) -> None:
    fake.create("aws", "web", "1.0.3", "mine00000001", region="region-a", image_id="img-1", state="complete")
    fake.create("aws", "web", "1.0.3", "mine00000001", region="region-b", image_id="img-2", state="pending")
    fake.create("aws", "web", "1.0.2", "other0000001", image_id="img-3")
    fake.create("aws", "web", "1.0.3", None, image_id="img-4")  # not bakery's

    leftovers.remove_own(fake, "aws", "web", "mine00000001", reporter)

    assert sorted(i.id for i in fake.all_images()) == ["img-3", "img-4"]
    assert reporter.notes == [
        "removing what this bake created on aws: region-a:img-1, region-b:img-2",
        "removed what this bake created on aws: img-1 in region-a; img-2 in region-b",
    ]


def test_remove_own_with_nothing_created_removes_nothing_and_says_nothing(
    fake: FakeProvider, reporter: Recording
) -> None:
    fake.create("aws", "web", "1.0.2", "other0000001")
    leftovers.remove_own(fake, "aws", "web", "mine00000001", reporter)
    assert len(fake.all_images()) == 1 and reporter.notes == [] and fake.called("remove") == []


@pytest.mark.parametrize("failing", ["marked", "remove"])
def test_remove_own_that_cannot_reach_the_cloud_says_what_is_left_and_does_not_raise(
    fake: FakeProvider, reporter: Recording, failing: str
) -> None:
    fake.create("aws", "web", "1.0.3", "mine00000001", image_id="img-1")
    fake.fail(failing)
    leftovers.remove_own(fake, "aws", "web", "mine00000001", reporter)
    left = "(not looked up yet)" if failing == "marked" else "region-a:img-1"
    assert reporter.notes[-1] == (
        f"could not remove what this bake created on aws ({left}): fake cloud: {failing} refused (injected fault); "
        "the next bake of web on aws removes it once this bake is provably dead"
    )
    assert [i.id for i in fake.all_images()] == ["img-1"]


def test_remove_own_abandoned_by_a_second_signal_says_what_it_leaves(fake: FakeProvider, reporter: Recording) -> None:
    fake.create("aws", "web", "1.0.3", "mine00000001", region="region-a", image_id="img-1")
    fake.create("aws", "web", "1.0.3", "mine00000001", region="region-b", image_id="img-2")
    fake.interrupt("remove", presses=2)  # the user presses Ctrl-C twice while the cleanup waits for the cloud

    with pytest.raises(Interrupted) as caught, runner.signal_guard():
        leftovers.remove_own(fake, "aws", "web", "mine00000001", reporter)

    assert caught.value.message == "cleanup abandoned; left behind: region-a:img-1, region-b:img-2"
    assert caught.value.hint == "the next bake of this image on this target removes what a dead bake left"
    assert reporter.notes == [
        "removing what this bake created on aws: region-a:img-1, region-b:img-2",
        "cleanup is under way; stopping it now would leave behind: region-a:img-1, region-b:img-2. "
        "Press Ctrl-C (or send the signal) again to abandon the cleanup.",
    ]
    assert len(fake.all_images()) == 2


# --- Heartbeat -----------------------------------------------------------------------------------


class Beats:
    def __init__(self, error: Exception | None = None) -> None:
        self.count = 0
        self.error = error
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.count += 1
        if self.error is not None:
            raise self.error


def test_heartbeat_beats_at_once_when_packer_announces_an_image(reporter: Recording) -> None:
    beats = Beats()
    with leftovers.Heartbeat(beats, reporter, every=60) as heartbeat:
        heartbeat.saw("1700000000,,ui,say,==> amazon-ebs: Waiting for instance to become ready...")
        assert not wait_for(lambda: beats.count > 0, timeout=0.3)  # an ordinary line does not wake it
        heartbeat.saw("1700000000,,ui,say,    amazon-ebs: AMI: ami-0123456789abcdef0")
        assert wait_for(lambda: beats.count == 1)
    assert beats.count == 1


def test_heartbeat_beats_on_its_own_every_period(reporter: Recording, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leftovers, "_MIN_BEAT_SECONDS", 0.01)
    beats = Beats()
    with leftovers.Heartbeat(beats, reporter, every=0.02):
        assert wait_for(lambda: beats.count >= 3)
    stopped = beats.count
    assert not wait_for(lambda: beats.count > stopped, timeout=0.2)  # none after the bake's end


def test_a_failed_heartbeat_is_noted_once_and_beating_goes_on(
    reporter: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leftovers, "_MIN_BEAT_SECONDS", 0.01)
    beats = Beats(ProviderError("throttled"))
    with leftovers.Heartbeat(beats, reporter, every=0.02):
        assert wait_for(lambda: beats.count >= 3)
    assert reporter.notes == ["heartbeat not written: throttled"]


def test_heartbeat_of_a_provider_writes_this_bakes_owner_on_its_images(fake: FakeProvider, reporter: Recording) -> None:
    owner = Owner.current("mine00000001", "2026-01-02T03:04:05Z")
    fake.create("aws", "web", "1.0.3", "mine00000001", image_id="img-1")
    fake.create("aws", "web", "1.0.2", "other0000001", image_id="img-2")
    with leftovers.Heartbeat.of(fake, "aws", "web", owner, reporter) as heartbeat:
        heartbeat.saw("1700000000,,ui,say,==> googlecompute: Creating image...")
        assert wait_for(lambda: fake.called("heartbeat") != [])
    images = {i.id: i for i in fake.all_images()}
    assert images["img-1"].owner == owner and images["img-1"].heartbeat is not None
    assert images["img-2"].owner is None
    assert owner.pid == os.getpid()


def test_heartbeat_stops_when_the_job_ends_even_without_a_beat(reporter: Recording) -> None:
    beats = Beats()
    with leftovers.Heartbeat(beats, reporter, every=3600):
        assert "bakery-heartbeat" in [t.name for t in threading.enumerate()]
    assert "bakery-heartbeat" not in [t.name for t in threading.enumerate()]  # at once, not an hour later
    assert beats.count == 0
