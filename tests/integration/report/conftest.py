"""The report's browser test builds its estate in the unit tier's world (a fake cloud, a stand-in
packer, an in-memory group driver: no QEMU), which stands on the root project_dir, not on the
integration tier's own."""

from __future__ import annotations

from tests.conftest import project_dir  # noqa: F401 (the fixture, as the unit tier has it)
