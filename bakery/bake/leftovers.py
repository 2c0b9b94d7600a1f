"""A bake's duties toward what bakes leave on a target: clear a dead bake's debris before
baking, keep this bake's heartbeat while Packer runs, keep one image per version, and remove
everything this bake created when it fails or is stopped."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

from bakery import runner
from bakery.core import debris
from bakery.core.debris import Leftover, Owner
from bakery.errors import BakeryError, ProviderError
from bakery.progress import Reporter
from bakery.providers.base import Provider

# Packer lines after which an image may have appeared: beat at once rather than at the next tick.
_CREATED = re.compile(r"(?i)\bAMI: ami-[0-9a-f]{8,}|copying to:|creating image\b|image created")
_MIN_BEAT_SECONDS = 5.0


def clear(provider: Provider, target: str, name: str, reporter: Reporter) -> list[Leftover]:
    """Remove what dead bakes of `name` left on `target`; refuse while one may still run.

    Returns the leftovers seen, so their version numbers are not handed out again.
    Raises ProviderError naming a bake that is still running (when and where it started).
    """
    found = [item for item in provider.marked(target, name) if item.state != "complete"]
    verdicts = [(item, debris.judge(item)) for item in found]
    for item, verdict in verdicts:
        if not verdict.dead:
            continue
        reporter.note(f"removing {item.ref} on {target} ({', '.join(item.locations)}), left by {verdict.why}")
        with runner.cleanup_phase(lambda item=item: ", ".join(item.locations), reporter.note):  # type: ignore[misc]
            removed = provider.remove(item)
        reporter.note("removed " + ("; ".join(removed) if removed else "nothing: it was already gone"))
    for item, verdict in verdicts:
        if not verdict.dead:
            raise ProviderError(
                f"another bake of {item.ref} on {target} is under way: {verdict.why} ({', '.join(item.locations)})",
                hint="wait for it to finish; once its bake is provably dead, the next bake removes what it left",
            )
    return found


def claim(provider: Provider, target: str, name: str, version: str, invocation: str) -> None:
    """One version, one image: raise if another bake's image claimed `version` first (created
    earlier; ties broken by invocation). Every bake applies the same order, so exactly one keeps it."""
    claims = provider.marked(target, name, version=version)
    mine = next((c for c in claims if c.invocation == invocation), None)
    ours = mine.order() if mine else (debris.iso(datetime.now(UTC)), invocation)
    rivals = sorted((c for c in claims if c.invocation != invocation and c.order() < ours), key=Leftover.order)
    if rivals:
        first = rivals[0]
        who = first.owner.describe() if first.owner else f"the bake {first.invocation}"
        raise ProviderError(
            f"{name}@{version} on {target} was taken first by {who} ({', '.join(first.locations)}, "
            f"created {first.created}); this bake's image is removed",
            hint="bake again: the next bake takes the next version",
        )


def remove_own(provider: Provider, target: str, name: str, invocation: str, reporter: Reporter) -> None:
    """After a failure or an interrupt: find every image this bake created, in every region or
    project of the target and in any state, and remove it. A signal during this cleanup first
    says what stopping would leave behind; the next one abandons it."""
    left: list[str] = ["(not looked up yet)"]
    with runner.cleanup_phase(lambda: ", ".join(left) or "nothing", reporter.note):
        try:
            mine = provider.marked(target, name, invocation=invocation)
            left[:] = [location for item in mine for location in item.locations]
            if left:
                reporter.note(f"removing what this bake created on {target}: {', '.join(left)}")
            for item in mine:
                removed = provider.remove(item)
                left[:] = [loc for loc in left if loc not in item.locations]
                reporter.note(
                    f"removed what this bake created on {target}: " + ("; ".join(removed) or "(already gone)")
                )
        except BakeryError as exc:
            reporter.note(
                f"could not remove what this bake created on {target} ({', '.join(left)}): {exc.message}; "
                f"the next bake of {name} on {target} removes it once this bake is provably dead"
            )


class Heartbeat:
    """Renews this bake's heartbeat (and owner) on what it has created, from a thread, while
    Packer runs: every HEARTBEAT_SECONDS, and soon after Packer says an image appeared."""

    def __init__(self, beat: Callable[[], None], reporter: Reporter, *, every: float = debris.HEARTBEAT_SECONDS):
        self._beat = beat
        self._reporter = reporter
        self._every = every
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bakery-heartbeat", daemon=True)
        self._warned = False

    @classmethod
    def of(cls, provider: Provider, target: str, name: str, owner: Owner, reporter: Reporter) -> Heartbeat:
        return cls(lambda: provider.heartbeat(target, name, owner), reporter)

    def saw(self, line: str) -> None:
        """A line of Packer's output: wake the beat if it may announce a new image."""
        if _CREATED.search(line):
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._every)
            if self._stop.is_set():
                return
            self._wake.clear()  # a poke from now on asks for another beat
            try:
                self._beat()
            except BakeryError as exc:
                if not self._warned:  # a missed beat is not fatal: the lease outlasts many
                    self._reporter.note(f"heartbeat not written: {exc.message}")
                    self._warned = True
            except Exception as exc:  # this thread's last line of defence
                # A bug must not silently end the heartbeat (other hosts would then take this
                # running bake for dead): say it, with its type, and keep beating.
                self._reporter.note(f"heartbeat failed (a bug, please report it): {type(exc).__name__}: {exc}")
            self._stop.wait(_MIN_BEAT_SECONDS)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
