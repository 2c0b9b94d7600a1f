"""The toy kind's one registration line, and a context manager for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bakery.config import kinds
from tests.toykind import driver, provider
from tests.toykind.models import ToyGroup, ToySource, ToyTarget

TOY = kinds.Kind(
    name="toy",
    target=ToyTarget,
    source=ToySource,
    group=ToyGroup,
    builder="toy",  # the template: toy.pkr.hcl
    provider="tests.toykind.provider",
    driver="tests.toykind.driver",
    group_example="toy: {size: 2}",
)


@contextmanager
def registered() -> Iterator[kinds.Kind]:
    """The toy kind, known to bakery for the duration of the block (and its clouds forgotten after)."""
    try:
        with kinds.registered(TOY) as kind:
            yield kind
    finally:
        provider.forget()
        driver.forget()
