"""Replacing a function of bakery's for one test, wherever bakery's modules hold it.

A module that does `from bakery.providers.base import get_provider` keeps its own reference: a
patch of `bakery.providers.base.get_provider` alone misses it, and a module first imported while
the patch is on takes the fake for good (monkeypatch restores only what it replaced), which
leaked a test's fake cloud into later tests. `everywhere` replaces every loaded copy, and after
the test gives the real function back to any module that took the fake meanwhile.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def everywhere(monkeypatch: pytest.MonkeyPatch, module: str, name: str, fake: Callable[..., Any]) -> Iterator[None]:
    """`module.name` is `fake` in every loaded bakery module while the block runs."""
    real = getattr(importlib.import_module(module), name)
    for held in _bakery_modules():
        if getattr(held, name, None) is real:
            monkeypatch.setattr(held, name, fake)
    try:
        yield
    finally:
        for held in _bakery_modules():
            if getattr(held, name, None) is fake:
                setattr(held, name, real)


def _bakery_modules() -> list[Any]:
    return [m for n, m in list(sys.modules.items()) if (n == "bakery" or n.startswith("bakery.")) and m is not None]
