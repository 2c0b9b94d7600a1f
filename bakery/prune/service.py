"""The prune service: verdicts for every recorded version (a dry run), and with `act` the removal
of those that go, each through its provider's steps on a journal of its own in the workspace.

A removal's journal is written before anything is removed and discarded only after its audit
event is appended: a prune interrupted at any point is finished (not started again) by the next
`bakery prune --yes`, before anything new is decided."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bakery import runner
from bakery.config.load import Project
from bakery.config.models import Prune
from bakery.core.catalog import ImageRecord, parse_ref, version_key
from bakery.core.debris import iso
from bakery.errors import BakeryError, UsageError
from bakery.groups.base import GroupDriver, get_driver
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory, Provider, get_provider
from bakery.prune.decide import KEEP, REMOVE, Verdict, decide
from bakery.prune.facts import candidates
from bakery.steps import SUCCEEDED, Journal, execute
from bakery.trust.context import TrustContext
from bakery.workspace import Workspace

_RECORD_FIELDS = {f.name for f in dataclasses.fields(ImageRecord)}


@dataclass(frozen=True)
class Removal:
    image: str  # "web@1.0.0"
    target: str
    removed: tuple[str, ...]  # what went, one line each ("ami-0abc in eu-west-1 with snap-1")
    notes: tuple[str, ...] = ()  # "deprecation not supported by this endpoint"
    resumed: bool = False  # finished from an interrupted prune's journal
    rung: str | None = None  # where a deprecation ladder (GCP) stopped, when the image is not gone yet


@dataclass(frozen=True)
class PruneResult:
    verdicts: tuple[Verdict, ...]
    acted: bool  # False: a dry run
    removals: tuple[Removal, ...] = ()
    unfinished: tuple[str, ...] = ()  # interrupted removals a dry run found ("web@1.0.0 on aws")

    @property
    def to_remove(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.action == REMOVE)


class Pruner:
    def __init__(
        self,
        project: Project,
        workspace: Workspace,
        reporter: Reporter,
        *,
        trust: TrustContext | None = None,
        clients: ClientFactory | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.project = project
        self.ws = workspace
        self.reporter = reporter
        self.trust = trust or TrustContext(project, workspace, reporter)
        self.clients = clients
        self.clock = clock
        self._providers: dict[str, Provider] = {}

    @property
    def journals(self) -> Path:
        return self.ws.root / "prune"

    def provider(self, target: str) -> Provider:
        if target not in self._providers:
            kind = self.project.config.targets[target].kind
            self._providers[target] = get_provider(
                kind, self.ws, self.reporter, self.clients, self.project.config.targets
            )
        return self._providers[target]

    def run(
        self,
        image: str | None = None,
        *,
        target: str | None = None,
        keep: int | None = None,
        older_than_days: int | None = None,
        act: bool = False,
    ) -> PruneResult:
        """Decide (and with `act`, remove) for `image` (every image when None) on `target` (every
        target when None). Raises UsageError for an unknown image or target, BakeryError when a
        fact cannot be read or a removal fails (what finished stays journaled for a rerun)."""
        config = self.project.config
        name, version = parse_ref(image) if image else (None, None)
        if version is not None:
            raise UsageError(f"prune takes an image name, not a version ('{image}')", hint=f"bakery prune {name}")
        if name is not None and name not in config.images:
            raise UsageError(f"no image '{name}' in images.yaml; images: {', '.join(sorted(config.images))}")
        if target is not None and target not in config.targets:
            raise UsageError(f"no target '{target}' in images.yaml; targets: {', '.join(sorted(config.targets))}")
        if act:  # what signs the audit events of the removals must work before anything is removed
            self.trust.signer()
        finished = self._finish_interrupted() if act else ()
        unfinished = () if act else tuple(self._describe(j) for j in self._open_journals())
        policies = {n: self._policy(i.prune, keep, older_than_days) for n, i in config.images.items()}
        now = self.clock()
        verdicts: list[Verdict] = []
        for where in [target] if target else self._targets(name):
            provider = self.provider(where)
            records = provider.images(where)  # every image: a kept child keeps its parent

            def driver(where: str = where) -> GroupDriver:
                return get_driver(config.targets[where].kind, self.ws, self.reporter, self.clients)

            found = decide(candidates(self.project, self.trust, where, provider, driver, records), policies, now)
            verdicts += [v for v in found if name is None or v.image.startswith(f"{name}@")]
        removals = list(finished)
        if act:
            for verdict in verdicts:
                if verdict.action == REMOVE and verdict.record is not None:
                    runner.check_interrupted("prune")  # between two removals: each is whole or journaled
                    replacement = _newest_kept(verdicts, verdict)
                    policy = policies[verdict.record.name]
                    removals.append(self._remove(verdict.record, replacement, now, policy))
        return PruneResult(tuple(verdicts), act, tuple(removals), unfinished)

    @staticmethod
    def _policy(policy: Prune, keep: int | None, older_than_days: int | None) -> Prune:
        changes: dict[str, Any] = {}
        if keep is not None:
            changes["keep"] = keep
        if older_than_days is not None:
            changes["older_than_days"] = older_than_days
        return policy.model_copy(update=changes) if changes else policy

    def _targets(self, name: str | None) -> list[str]:
        names = [name] if name else list(self.project.config.images)
        return sorted({t for n in names for t in self.project.targets_of(n)})

    # --- removing, on a journal -----------------------------------------------------------------

    def _path(self, record: ImageRecord) -> Path:
        return self.journals / f"{record.target}--{record.name}@{record.version}.json"

    def _remove(self, record: ImageRecord, replacement: ImageRecord | None, now: datetime, policy: Prune) -> Removal:
        journal = Journal.create(
            self._path(record), record=record.as_dict(), now=iso(now), policy=policy.model_dump(mode="json")
        )
        return self._carry_out(journal, record, replacement, resumed=False)

    def _carry_out(
        self, journal: Journal, record: ImageRecord, replacement: ImageRecord | None, *, resumed: bool
    ) -> Removal:
        policy = Prune.model_validate(journal.data.get("policy") or {})
        steps = self.provider(record.target).prune_steps(
            record, replacement=replacement, now=journal.data["now"], policy=policy
        )
        execute(steps, journal, self.reporter)
        journal.mark(status=SUCCEEDED)
        removed = tuple(str(line) for line in journal.get("removed", []))
        notes = tuple(str(line) for line in journal.get("deprecation", []))
        rung = None if journal.get("removed") is not None else str(journal.get("rung", ""))
        if journal.get("changed", True):
            self.trust.record(
                "prune",
                f"{record.ref} on {record.target}",
                "pruned" if rung is None else rung.split()[0],
                details={
                    "removed": list(removed),
                    "notes": list(notes),
                    "rung": rung,
                    "inputs_digest": record.inputs_digest,
                },
                strict=True,  # the journal stays until the removal is on the record: a rerun records it
            )
        journal.discard()
        return Removal(record.ref, record.target, removed, notes, resumed, rung)

    def _open_journals(self) -> list[Journal]:
        if not self.journals.is_dir():
            return []
        found = []
        for path in sorted(self.journals.glob("*.json")):
            journal = Journal.load(path)
            if journal is not None:
                found.append(journal)
        return found

    def _finish_interrupted(self) -> list[Removal]:
        done = []
        for journal in self._open_journals():
            record = _record_of(journal)
            self.reporter.note(f"finishing the interrupted prune of {record.ref} on {record.target}")
            done.append(self._carry_out(journal, record, None, resumed=True))
        return done

    @staticmethod
    def _describe(journal: Journal) -> str:
        record = _record_of(journal)
        return f"{record.ref} on {record.target} (interrupted during {journal.data.get('current') or 'its record'})"


def _record_of(journal: Journal) -> ImageRecord:
    """The record a journal was written for; BakeryError if the file does not hold one."""
    data = journal.data.get("record")
    if not isinstance(data, dict) or not set(data) <= _RECORD_FIELDS or not isinstance(data.get("version"), str):
        raise BakeryError(f"the prune journal {journal.path} does not hold an image record", hint="move it away")
    if not re.fullmatch(r"\d+\.\d+\.\d+", data["version"]):
        raise BakeryError(f"the prune journal {journal.path} names version {data['version']!r}", hint="move it away")
    fields = {
        **data,
        "locations": tuple(data.get("locations", ())),
        "revoked_marks": tuple(data.get("revoked_marks", ())),
    }
    return ImageRecord(**fields)


def _newest_kept(verdicts: list[Verdict], gone: Verdict) -> ImageRecord | None:
    """What replaces a removed version (GCP's deprecation names it): its image's newest kept one."""
    name = gone.image.split("@")[0]
    kept = [
        v.record
        for v in verdicts
        if v.action == KEEP and v.target == gone.target and v.image.startswith(f"{name}@") and v.record
    ]
    return max(kept, key=lambda r: version_key(r.version)) if kept else None
