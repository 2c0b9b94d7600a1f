"""What this workspace (or CI job) remembers of an audit log, so that the log cannot go back in
time unnoticed: the newest head it has seen (from reading the log, or from appending to it), and
how far it has verified the log, with the revocations the verified events record.

Modelled on TUF's rollback protection and on the checkpoints a transparency log's clients keep: a
registry that later shows an older log, a different event at a seq seen before (a fork), or no log
at all is refused, naming what was remembered and what was found. A reader that has never seen
the log sees whatever it is shown: the first look is trusted, as in TUF (an S3 Object Lock or GCS
retention checkpoint closes that gap for those registries).

The file is this machine's, not the registry's: $BAKERY_AUDIT_WITNESS names it (a CI job keeps it
in its cache between runs), else it is trust/audit-witness.json in the workspace. One file holds
every registry the workspace has used, each under its address.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bakery.core import documents
from bakery.errors import TrustError
from bakery.workspace import Workspace, exclusive

ENV = "BAKERY_AUDIT_WITNESS"
FILE = "trust/audit-witness.json"


@dataclass(frozen=True)
class Mark:
    seq: int  # 0: nothing
    digest: str
    time: str = ""  # when this machine saw it (UTC)
    # For a verified mark: the keyids whose signatures the check accepted, and the threshold it
    # asked of each event. A mark verified under keys no longer all trusted vouches for nothing.
    keys: tuple[str, ...] = ()
    threshold: int = 0

    def covered_by(self, keyids: Iterable[str], threshold: int) -> bool:
        """Whether a reader trusting `keyids` at `threshold` may rely on this verified mark: the
        check behind it accepted no key the reader does not trust, and asked as many signatures."""
        return bool(self.keys) and set(self.keys) <= set(keyids) and self.threshold >= threshold


@dataclass(frozen=True)
class Revoked:
    """The newest revoke or unrevoke event of one image on one target in the verified log."""

    state: str  # revoked | active
    seq: int
    at: str
    by: str
    reason: str


@dataclass(frozen=True)
class Remembered:
    seen: Mark  # the newest event known to exist (read or appended)
    verified: Mark  # the log is verified up to here
    revocations: dict[str, Revoked] = field(default_factory=dict)  # "TARGET REF" ->
    channels: dict[str, int] = field(default_factory=dict)  # "CHANNEL TARGET IMAGE" -> newest move seq
    tests: dict[str, str] = field(default_factory=dict)  # "TARGET REF" -> passed | failed (its newest run)

    @staticmethod
    def nothing() -> Remembered:
        return Remembered(Mark(0, ""), Mark(0, ""))


def key(target: str, ref: str) -> str:
    return f"{target} {ref}"


class Witness:
    """The remembered state of the audit log in the registry at `where`."""

    def __init__(self, path: Path, where: str) -> None:
        self.path = path
        self.where = where

    @classmethod
    def of(cls, workspace: Workspace, where: str, environ: Mapping[str, str] = os.environ) -> Witness:
        named = environ.get(ENV, "").strip()
        return cls(Path(named).expanduser() if named else workspace.root / FILE, where)

    def load(self) -> Remembered:
        return self._entry(self._all())

    def saw(self, seq: int, digest: str, time: str) -> None:
        """Remember that event `seq` with `digest` exists (this machine appended or read it)."""
        with self._updating() as everything:
            now = self._entry(everything)
            if seq > now.seen.seq:
                saw = Mark(seq, digest, time)
                everything[self.where] = _dump(Remembered(saw, now.verified, now.revocations, now.channels, now.tests))

    def verified(
        self,
        upto: Mark,
        revocations: dict[str, Revoked],
        channels: dict[str, int] | None = None,
        tests: dict[str, str] | None = None,
    ) -> None:
        """Remember that the log verified up to `upto`, recording what it says then."""
        with self._updating() as everything:
            now = self._entry(everything)
            if upto.seq < now.verified.seq:
                return  # another process of this workspace verified further meanwhile
            seen = upto if upto.seq >= now.seen.seq else now.seen
            everything[self.where] = _dump(Remembered(seen, upto, revocations, dict(channels or {}), dict(tests or {})))

    # ------------------------------------------------------------------------------ internals

    def _entry(self, everything: dict[str, Any]) -> Remembered:
        if self.where not in everything:
            return Remembered.nothing()
        return Witness._parse(everything[self.where], self)

    @staticmethod
    def _parse(entry: Any, witness: Witness) -> Remembered:
        try:
            return Remembered(
                seen=Mark(**entry["seen"]),
                verified=_mark(entry["verified"]),
                revocations={k: Revoked(**v) for k, v in entry.get("revocations", {}).items()},
                channels={str(k): int(v) for k, v in entry.get("channels", {}).items()},
                tests={str(k): str(v) for k, v in entry.get("tests", {}).items()},
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise witness._damaged(f"its entry for {witness.where} is not readable ({exc})") from None

    def _all(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(16 * 1024 * 1024)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise self._damaged(f"it cannot be read ({exc.strerror or exc})") from None
        try:
            return documents.parse_object(data).get("registries", {})  # type: ignore[no-any-return]
        except ValueError as exc:
            raise self._damaged(str(exc)) from None

    @contextlib.contextmanager
    def _updating(self) -> Iterator[dict[str, Any]]:
        with exclusive(self.path.with_name(self.path.name + ".lock")):
            everything = self._all()
            yield everything
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump({"registries": everything}, out, indent=2, sort_keys=True)
                    out.write("\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _damaged(self, why: str) -> TrustError:
        return TrustError(
            f"the audit witness {self.path} (what this machine remembers of audit logs) is damaged: {why}",
            hint="restore it from a backup; removing it makes this machine trust the next log it is shown",
        )


def _mark(entry: Any) -> Mark:
    """A verified mark as the witness file holds it (its keys a JSON list of keyids)."""
    keys = entry.get("keys", [])
    if not isinstance(keys, list) or any(not isinstance(k, str) for k in keys):
        raise TypeError("its verified keys are not a list of keyids")
    return Mark(**{**entry, "keys": tuple(keys)})


def _dump(remembered: Remembered) -> dict[str, Any]:
    return {
        "seen": asdict(remembered.seen),
        "verified": asdict(remembered.verified),
        "revocations": {k: asdict(v) for k, v in sorted(remembered.revocations.items())},
        "channels": dict(sorted(remembered.channels.items())),
        "tests": dict(sorted(remembered.tests.items())),
    }
