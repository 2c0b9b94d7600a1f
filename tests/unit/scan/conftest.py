"""The scan rooms' world: the promotion world (channels, keys, a group following `testing`) whose
bakes carry the SBOM of tests/fakes/dpkg (openssl 3.0.15-1~deb12u1, glibc 2.36-9+deb12u7, nginx
1.22.1-9+deb12u1, ...), and the fixture feeds of tests/fakes/feeds."""

from pathlib import Path
from typing import Any

from tests.unit.promote.conftest import clock as clock
from tests.unit.promote.conftest import world as world
from tests.unit.trust.conftest import world as trust_world  # noqa: F401

FEEDS = Path(__file__).resolve().parents[2] / "fakes" / "feeds"
TRACKER = FEEDS / "debian-tracker.json"
NEWER = FEEDS / "debian-tracker-newer.json"
OSV = FEEDS / "osv-debian12.json"


def with_policy(world: Any, policy: str, *, feed: Path | None = TRACKER) -> None:
    """images.yaml with `policy` (YAML flow text) as channel testing's scan policy, and `feed` as
    the project's feed (none when None)."""
    text = world.project_dir.config.read_text()
    text = text.replace("  testing: {}\n", f"  testing:\n    scan: {policy}\n")
    if feed is not None:
        text += f"scan: {{feed: {feed}}}\n"
    world.project_dir.write(text)
