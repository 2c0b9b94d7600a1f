"""`tests:` in images.yaml: what boots the finished image and checks it, before anyone runs it.

A target may give defaults (`targets.<t>.tests:`), an image its own (`images.<i>.tests:`), and an
image per target (`images.<i>.overrides.<t>.tests:`); each key given replaces the one before it
(lists are replaced whole, never merged), in that order:

    tests:
      boot_deadline: 300                 # seconds from the launch until SSH and HTTP answer
      playbooks: [playbooks/tests/web.yml]   # run by ansible-runner against the test instance
      http:
        - {path: /healthz, port: 80, status: 200, body: "^ok "}   # body: a regular expression

An image with neither playbooks nor HTTP checks has no tests: `bakery build` records it untested.
Tests never enter the bake key: they check an image, they do not make it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from bakery.config.model_base import Int, Model

DEFAULT_BOOT_DEADLINE = 300
BODY_PATTERN_MAX = 500


class HttpCheck(Model):
    """GET `path` on `port` of the test instance: it must answer `status`, and its body must
    match `body` (a Python regular expression, searched anywhere in the body) when given."""

    path: str = Field("/", pattern=r"^/[!-~]*$")
    port: Int = Field(80, ge=1, le=65535)
    status: Int = Field(200, ge=100, le=599)
    body: str | None = Field(None, min_length=1, max_length=BODY_PATTERN_MAX)

    @field_validator("body")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"'body' is not a regular expression: {exc}") from None
        return value

    @property
    def name(self) -> str:
        """How results name the check: 'GET /healthz on port 80 answers 200 matching ^ok '."""
        body = f" matching {self.body}" if self.body is not None else ""
        return f"GET {self.path} on port {self.port} answers {self.status}{body}"


class TestsBlock(Model):
    """One `tests:` block as written; a key left out takes the value of the block before it."""

    boot_deadline: Int | None = Field(None, ge=10, le=7200)
    playbooks: tuple[str, ...] | None = None
    http: tuple[HttpCheck, ...] | None = None


@dataclass(frozen=True)
class ImageTests:
    """The tests of one image on one target, every layer applied."""

    playbooks: tuple[str, ...] = ()
    http: tuple[HttpCheck, ...] = ()
    boot_deadline: int = DEFAULT_BOOT_DEADLINE

    @property
    def empty(self) -> bool:
        return not self.playbooks and not self.http

    def guest_ports(self) -> tuple[int, ...]:
        """The ports the HTTP checks reach, each once, in order."""
        return tuple(dict.fromkeys(check.port for check in self.http))

    def as_dict(self) -> dict[str, Any]:
        return {
            "boot_deadline": self.boot_deadline,
            "playbooks": list(self.playbooks),
            "http": [check.model_dump(mode="json") for check in self.http],
        }


def resolve(*blocks: TestsBlock | None) -> ImageTests:
    """The blocks (target defaults, the image's, the image's for this target) laid one over the other."""
    found: dict[str, Any] = {}
    for block in blocks:
        if block is not None:
            found.update(block.model_dump(exclude_none=True))
    http = tuple(HttpCheck.model_validate(check) for check in found.get("http", ()))
    return ImageTests(
        playbooks=tuple(found.get("playbooks", ())),
        http=http,
        boot_deadline=int(found.get("boot_deadline", DEFAULT_BOOT_DEADLINE)),
    )


Problem = tuple[tuple[str | int, ...], str]


def problems(config: Any, root: Path, can_test: Callable[[str], bool]) -> list[Problem]:
    """What `validate` refuses of the `tests:` blocks of `config` (the validated images.yaml in
    `root`): a test playbook that is not a file inside the project, tests on a target whose kind
    cannot boot an image (`can_test(kind)` says no)."""
    found: list[Problem] = []
    books: list[tuple[tuple[str | int, ...], str]] = []
    for name, spec in config.targets.items():
        books += _books(("targets", name, "tests"), spec.tests)
        if spec.tests is not None and not can_test(spec.kind):
            found.append((("targets", name, "tests"), f"target kind '{spec.kind}' cannot boot an image to test it"))
    for name, image in config.images.items():
        books += _books(("images", name, "tests"), image.tests)
        for target, override in image.overrides.items():
            books += _books(("images", name, "overrides", target, "tests"), override.tests)
    for loc, book in books:
        if Path(book).is_absolute() or ".." in Path(book).parts:
            found.append((loc, f"playbook '{book}' must be a path inside {root}"))
        elif not (root / book).is_file():
            found.append((loc, f"playbook '{book}' not found (looked in {root / book})"))
    return found


def _books(here: tuple[str | int, ...], block: TestsBlock | None) -> list[tuple[tuple[str | int, ...], str]]:
    playbooks = (block.playbooks or ()) if block is not None else ()
    return [((*here, "playbooks", i), book) for i, book in enumerate(playbooks)]
