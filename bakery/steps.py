"""The step engine: a declared sequence of named steps whose progress is saved after each one.

A run is recorded in a Journal (a JSON file written atomically): which steps finished, which one
was running, and the facts steps saved for the ones after them (a refresh id, a template version,
the VMs booted). A rerun skips what finished and runs the interrupted step again, so every step is
written to be safe to run twice: it first looks at what its earlier attempt already did.

What a step makes for the steps after it within one run (a rendered directory, a signed
statement) it returns as a frozen value into Results, read back through its typed Handoff.

A bake, a rollout and a rollback are sequences of steps on this engine; the rollout service
decides, when a forward step fails, whether the group's rollback steps run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from bakery import runner, traces
from bakery.errors import BakeryError, Interrupted
from bakery.progress import Reporter

# A journal's status. "running" with no live process behind it means the process died (kill -9).
RUNNING, INTERRUPTED, FAILED, SUCCEEDED = "running", "interrupted", "failed", "succeeded"
ROLLED_BACK, ROLLBACK_FAILED = "rolled-back", "rollback-failed"
FINAL = (FAILED, SUCCEEDED, ROLLED_BACK, ROLLBACK_FAILED)

T = TypeVar("T")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Journal:
    """The saved state of one run. `values` is the steps' own notebook (JSON values only)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(cls, path: Path, *, exclusive: bool = False, **fields: Any) -> Journal:
        """A new journal at `path`; with `exclusive`, FileExistsError if one is there already."""
        journal = cls(
            path,
            {
                **fields,
                "status": RUNNING,
                "done": [],
                "current": None,
                "phase": "forward",
                "values": {},
                "started": now(),
                "updated": now(),
                "error": None,
            },
        )
        journal.save(exclusive=exclusive)
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        try:
            return cls(path, json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BakeryError(f"cannot read the saved state {path}: {exc}", hint="move it away to start over") from None

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def done(self) -> list[str]:
        return list(self.data["done"])

    @property
    def values(self) -> dict[str, Any]:
        return self.data["values"]  # type: ignore[no-any-return]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def put(self, key: str, value: Any) -> None:
        """Save a fact for later steps (and for a rerun of this one), at once."""
        self.values[key] = value
        self.save()

    def mark(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def discard(self) -> None:
        """Remove the saved state: the run left nothing to resume or to look at."""
        self.path.unlink(missing_ok=True)

    def save(self, *, exclusive: bool = False) -> None:
        self.data["updated"] = now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as out:
            json.dump(self.data, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        if not exclusive:
            os.replace(tmp, self.path)
            return
        try:
            os.link(tmp, self.path)  # fails if the path exists: no other writer is overwritten
        finally:
            os.unlink(tmp)


@dataclass(frozen=True)
class Handoff(Generic[T]):
    """The typed name of what the step `step` hands on: `results[HANDOFF]` is a `T`."""

    step: str


class Results:
    """What the steps of one run handed on, each once, for the steps after them."""

    def __init__(self) -> None:
        self._values: dict[str, object] = {}

    def put(self, handoff: Handoff[T], value: T) -> None:
        if handoff.step in self._values:
            raise ValueError(f"step {handoff.step} handed on its result twice")
        self._values[handoff.step] = value

    def handing(self, handoff: Handoff[T], make: Callable[[Journal], T]) -> Callable[[Journal], None]:
        """A step's `run` that hands on what `make` returns."""
        return lambda journal: self.put(handoff, make(journal))

    def __getitem__(self, handoff: Handoff[T]) -> T:
        if handoff.step not in self._values:  # a sequence that reads a result before its step: a bug
            raise LookupError(f"step {handoff.step} has handed on nothing yet")
        return cast(T, self._values[handoff.step])

    def __contains__(self, handoff: Handoff[Any]) -> bool:
        return handoff.step in self._values


@dataclass(frozen=True)
class Step:
    """One declared step. `run` must be safe to run again after an interruption (it reads the
    journal, and the engine's real state, before acting). `stop` runs when a signal interrupts
    `run`: it leaves the engine safe (a refresh cancelled, a VM half-booted stopped). `describe`
    is the detail of the step's progress line (a callable when it depends on earlier steps);
    `skip` says, when the step's turn comes, that it has nothing to do (recorded as done)."""

    name: str
    run: Callable[[Journal], None]
    describe: str | Callable[[], str] = ""
    stop: Callable[[Journal], None] | None = None
    skip: Callable[[], bool] | None = None


def execute(steps: Sequence[Step], journal: Journal, reporter: Reporter, *, phase: str = "forward") -> None:
    """Run every step of `steps` not yet done in `journal`, saving after each. Raises what a step
    raises, after recording it: a signal (status interrupted) or a BakeryError (status failed)."""
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate step names in {names}")
    if journal.data.get("phase") != phase:
        journal.mark(phase=phase, done=[], current=None)
    for step in steps:
        if step.name in journal.data["done"]:
            continue
        if step.skip is None or not step.skip():
            journal.mark(current=step.name, status=RUNNING)
            reporter.phase(step.name, step.describe() if callable(step.describe) else step.describe)
            with traces.step(step.name, phase=phase), _recorded(step, journal):
                step.run(journal)
        journal.data["done"].append(step.name)
        journal.mark(current=None)


@contextmanager
def _recorded(step: Step, journal: Journal) -> Iterator[None]:
    try:
        yield
    except (Interrupted, KeyboardInterrupt):  # KeyboardInterrupt: the signal guard's own stop
        journal.mark(status=INTERRUPTED, error=f"interrupted during {step.name}")
        if step.stop is not None:
            with runner.cleanup_phase(lambda: f"step '{step.name}' is not made safe", lambda _m: None):
                step.stop(journal)
        raise
    except BakeryError as exc:
        journal.mark(status=FAILED, error=exc.message)
        raise
