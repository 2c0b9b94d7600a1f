"""How long a cloud's test instance may live at most, so that not even a `kill -9` of bakery (or a
machine that dies mid-test) leaves one running for ever.

The bound: the test's boot deadline, plus CHECKS_SECONDS for its playbooks and HTTP checks, plus
MARGIN_SECONDS for the cleanup, in whole minutes (75 minutes with the default boot deadline of
300 s; at most MAX_LIFE_SECONDS, 3 h 10 min, as a boot deadline is at most 7200 s). A test whose
playbooks run longer than CHECKS_SECONDS loses its instance, and fails.

Each cloud enforces it on its own, whatever happens to bakery:
    GCE  scheduling.maxRunDuration with instanceTerminationAction DELETE: GCE deletes it
    EC2  user data (cloud-init's power_state) powers it off that many minutes after its boot,
         and InstanceInitiatedShutdownBehavior terminate makes that a termination; the instance
         carries its deadline in the tag bakery:test-expires (RFC 3339)
and before each test on a cloud target bakery removes, in the target's region or zone, the
instances marked as test instances whose bound has passed (each launcher's `sweep`).

Times read back from a cloud (tags, creation timestamps) are untrusted: parse_time() takes only a
short RFC 3339 text with a time zone.
"""

from __future__ import annotations

import datetime as dt
import math

from bakery.config.imagetests import ImageTests

CHECKS_SECONDS = 3600
MARGIN_SECONDS = 600
# The longest boot deadline images.yaml allows (TestsBlock.boot_deadline) with the rest of the bound.
MAX_LIFE_SECONDS = 7200 + CHECKS_SECONDS + MARGIN_SECONDS
_MAX_TIME_TEXT = 40


def life_minutes(tests: ImageTests) -> int:
    """The bound on a test instance's life of `tests`, in whole minutes (rounded up)."""
    return math.ceil((tests.boot_deadline + CHECKS_SECONDS + MARGIN_SECONDS) / 60)


def life_seconds(tests: ImageTests) -> int:
    return life_minutes(tests) * 60


def rfc3339(when: dt.datetime) -> str:
    """'2026-12-06T18:22:00Z': UTC, whole seconds."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> dt.datetime | None:
    """An RFC 3339 time with a time zone, as a cloud returns it; None for anything else."""
    if not isinstance(text, str) or not text or len(text) > _MAX_TIME_TEXT:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def deadline(expires: object, started: object, life: object = None) -> dt.datetime | None:
    """When a test instance's bound passes: its own deadline `expires` when it carries a readable
    one, else its start `started` plus `life` seconds (its own bound, when it carries a sane one)
    or MAX_LIFE_SECONDS. None when neither time can be read: such an instance is left alone."""
    found = parse_time(expires)
    if found is not None:
        return found
    start = started if isinstance(started, dt.datetime) and started.tzinfo else parse_time(started)
    if start is None:
        return None
    seconds = life if isinstance(life, int) and 0 < life <= MAX_LIFE_SECONDS else MAX_LIFE_SECONDS
    return start + dt.timedelta(seconds=seconds)
