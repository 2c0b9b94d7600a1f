"""What the cloud launchers (aws.py, gcp.py) share: how they are made, the cleanup's second look
for an instance whose launch got no answer, and the note on an instance of a stand-in endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable

from bakery.progress import Reporter
from bakery.providers.base import ClientFactory

POLL_SECONDS = 2.0
# How long the cleanup keeps looking for an instance whose launch got no answer.
LEFTOVER_GRACE_SECONDS = 60.0


class CloudLauncher:
    """The part of a cloud's Launcher that does not depend on the cloud: its reporter, its clients
    factory, and how long and how often its cleanup looks for what a launch may have made."""

    def __init__(
        self,
        reporter: Reporter,
        clients: ClientFactory,
        *,
        grace_seconds: float = LEFTOVER_GRACE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.reporter = reporter
        self.clients = clients
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds

    def _look_again(self, note: str, look: Callable[[], list[str]]) -> list[str]:
        """The first non-empty answer of `look()`, called every poll_seconds for up to
        grace_seconds ([] when it found nothing): a launch was sent without an answer, and the
        cloud may make the instance, or show it, only later. `note` (what is looked for) is
        reported first, with the time it may take. Not interruptible: a cleanup."""
        self.reporter.note(f"{note} for up to {self.grace_seconds:g}s")
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() + self.poll_seconds <= deadline:
            time.sleep(self.poll_seconds)
            found = look()
            if found:
                return found
        return []


def stand_in(service: str, endpoint: str | None) -> str | None:
    """Launched.nowhere for an instance that `service` at `endpoint` made: why nothing may connect
    to it when the endpoint is on this machine (moto, the fake GCE: its instances run nowhere),
    else None."""
    from urllib.parse import urlsplit

    if endpoint is None or urlsplit(endpoint).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return f"its {service} endpoint {endpoint} is on this machine: a stand-in"
