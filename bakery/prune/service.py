"""The prune service: verdicts for every recorded version (a dry run), and with `act` the removal
of those that go, each through its provider's steps on a journal of its own in the workspace.

A removal's journal is written before anything is removed and discarded only after its audit
event is appended: a prune interrupted at any point is finished (not started again) by the next
`bakery prune --yes`, before anything new is decided."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bakery import runner
from bakery.config.load import Project
from bakery.config.models import Prune
from bakery.core import locks
from bakery.core.catalog import ImageRecord, parse_ref, version_key
from bakery.core.debris import iso
from bakery.core.identity import who
from bakery.errors import BakeryError, InUse, UsageError
from bakery.groups.base import GroupDriver, get_driver
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory, Provider, get_provider
from bakery.prune.decide import KEEP, REMOVE, Verdict, decide
from bakery.prune.facts import candidates
from bakery.prune.journals import destroying, record_from, record_of
from bakery.steps import SUCCEEDED, Journal, execute
from bakery.trust.context import TrustContext
from bakery.workspace import Workspace


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
    # What else was done (or, in a dry run, would be): abandoned prunes, images restored to ACTIVE.
    notes: tuple[str, ...] = ()
    # The next rung of each removal on a ladder (GCP), for the dry run: (image, target) -> rung.
    next_rungs: Mapping[tuple[str, str], str] = field(default_factory=dict)

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
        policies = {n: self._policy(i.prune, keep, older_than_days) for n, i in config.images.items()}
        if not act:
            return self._run(name, target, policies, act=False)
        what = "bakery prune --yes" + (f" {name}" if name else "") + (f" --target {target}" if target else "")
        with locks.held(self.lock, what, who(), _refuse):
            return self._run(name, target, policies, act=True)

    @property
    def lock(self) -> Path:
        """Held by a `prune --yes` for its whole run: one at a time on this machine."""
        return self.ws.locks / "prune.lock"

    def _run(self, name: str | None, target: str | None, policies: dict[str, Prune], *, act: bool) -> PruneResult:
        if act:  # what signs the audit events of the removals must work before anything is removed
            self.trust.signer()
        notes: list[str] = []
        running = None if act else locks.holder(self.lock)
        if running is not None:
            notes.append(f"a `bakery prune --yes` is running ({running}): what it removes may not be gone yet")
        finished = self._finish_interrupted(notes) if act else []
        unfinished = () if act else tuple(self._look_at_interrupted(notes))
        now = self.clock()
        verdicts: list[Verdict] = []
        for where in [target] if target else self._targets(name):
            provider = self.provider(where)
            records = provider.images(where)  # every image: a kept child keeps its parent
            found = decide(
                candidates(self.project, self.trust, where, provider, self._driver(where), records), policies, now
            )
            verdicts += [v for v in found if name is None or v.image.startswith(f"{name}@")]
        notes += self._restore(verdicts, act=act)
        removals = list(finished)
        rungs: dict[tuple[str, str], str] = {}
        for verdict in verdicts:
            if verdict.action != REMOVE or verdict.record is None:
                continue
            replacement = _newest_kept(verdicts, verdict)
            policy = policies[verdict.record.name]
            if not act:
                rung = self.provider(verdict.target).prune_next(verdict.record, replacement=replacement, now=iso(now))
                if rung is not None:
                    rungs[(verdict.image, verdict.target)] = rung
                continue
            runner.check_interrupted("prune")  # between two removals: each is whole or journaled
            removal = self._remove(verdict.record, replacement, now, policy, notes)
            if removal is not None:
                removals.append(removal)
        return PruneResult(tuple(verdicts), act, tuple(removals), unfinished, tuple(notes), rungs)

    def _driver(self, where: str) -> Callable[[], GroupDriver]:
        def driver() -> GroupDriver:
            return get_driver(self.project.config.targets[where].kind, self.ws, self.reporter, self.clients)

        return driver

    def _in_use_now(self, record: ImageRecord) -> tuple[str, ...]:
        """What uses `record` now (as a prune's verdict names it), read live again."""
        provider = self.provider(record.target)
        found = candidates(self.project, self.trust, record.target, provider, self._driver(record.target), [record])
        return tuple(f"in use: {use}" for use in found[0].uses) + found[0].heads

    def _restore(self, verdicts: list[Verdict], *, act: bool) -> list[str]:
        """Put back to ACTIVE each kept image a prune's ladder had deprecated (GCP)."""
        lines = []
        for verdict in verdicts:
            record = verdict.record
            if verdict.action != KEEP or record is None or not record.revoked_marks:
                continue  # an image with no deprecation of any kind stands on no rung
            was = self.provider(record.target).prune_restore(record, act=act)
            if was is None:
                continue
            why = "; ".join(verdict.reasons)
            if not act:
                lines.append(f"{record.ref} on {record.target} would be restored to ACTIVE (now {was}): {why}")
                continue
            self.trust.record(
                "prune",
                f"{record.ref} on {record.target}",
                "restored",
                details={"was": was, "reasons": list(verdict.reasons), "inputs_digest": record.inputs_digest},
                strict=True,
            )
            lines.append(f"restored {record.ref} on {record.target} to ACTIVE (was {was}): {why}")
        return lines

    @staticmethod
    def _policy(policy: Prune, keep: int | None, older_than_days: int | None) -> Prune:
        """`policy` with the command line's values over it, validated as images.yaml's are."""
        changes: dict[str, Any] = {}
        if keep is not None:
            changes["keep"] = keep
        if older_than_days is not None:
            changes["older_than_days"] = older_than_days
        if not changes:
            return policy
        try:
            return Prune.model_validate({**policy.model_dump(), **changes})
        except ValidationError as exc:
            error = exc.errors()[0]
            option = {"keep": "--keep", "older_than_days": "--older-than"}.get(str(error["loc"][0]), str(error["loc"]))
            raise UsageError(f"{option} {error.get('input')}: {error['msg']}") from None

    def _targets(self, name: str | None) -> list[str]:
        names = [name] if name else list(self.project.config.images)
        return sorted({t for n in names for t in self.project.targets_of(n)})

    # --- removing, on a journal -----------------------------------------------------------------

    def _path(self, record: ImageRecord) -> Path:
        return self.journals / f"{record.target}--{record.name}@{record.version}.json"

    def _remove(
        self, record: ImageRecord, replacement: ImageRecord | None, now: datetime, policy: Prune, notes: list[str]
    ) -> Removal | None:
        try:
            journal = Journal.create(
                self._path(record),
                exclusive=True,
                record=record.as_dict(),
                replacement=replacement.as_dict() if replacement else None,
                now=iso(now),
                policy=policy.model_dump(mode="json"),
            )
        except FileExistsError:
            raise BakeryError(
                f"another prune of {record.ref} on {record.target} is under way: its journal "
                f"{self._path(record)} exists",
                hint="wait for it; an interrupted one is finished by the next `bakery prune --yes`",
            ) from None
        return self._carry_out(journal, record, replacement, resumed=False, said=notes)

    def _carry_out(
        self,
        journal: Journal,
        record: ImageRecord,
        replacement: ImageRecord | None,
        *,
        resumed: bool,
        said: list[str],
    ) -> Removal | None:
        policy = Prune.model_validate(journal.data.get("policy") or {})
        steps = self.provider(record.target).prune_steps(
            record, replacement=replacement, now=journal.data["now"], policy=policy
        )
        try:
            execute(steps, journal, self.reporter)
        except InUse as exc:  # read again right before the first destructive call
            self._abandon(journal, record, tuple(f"in use: {use}" for use in exc.uses), said)
            return None
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

    def _finish_interrupted(self, notes: list[str]) -> list[Removal]:
        """Finish each interrupted removal whose image nothing uses now; abandon the others that
        removed nothing yet (their image is kept), refuse to go on for one that did."""
        done = []
        for journal in self._open_journals():
            record = record_of(journal)
            uses = self._in_use_now(record)
            if uses:
                self._abandon(journal, record, uses, notes)
                continue
            self.reporter.note(f"finishing the interrupted prune of {record.ref} on {record.target}")
            removal = self._carry_out(journal, record, self._replacement(journal, record), resumed=True, said=notes)
            if removal is not None:
                done.append(removal)
        return done

    def _abandon(self, journal: Journal, record: ImageRecord, uses: tuple[str, ...], notes: list[str]) -> None:
        what = f"{record.ref} on {record.target}"
        if destroying(journal):
            raise BakeryError(
                f"the interrupted prune of {what} removed part of it already, and the rest is {'; '.join(uses)}",
                hint=f"stop that use, then `bakery prune --yes` finishes it; or move {journal.path} away",
            )
        undone = self.provider(record.target).prune_abandon(record)
        self.trust.record(
            "prune",
            what,
            "abandoned",
            details={
                "why": f"prune abandoned: {'; '.join(uses)}",
                "undone": undone,
                "inputs_digest": record.inputs_digest,
            },
            strict=True,
        )
        journal.discard()
        notes.append(f"abandoned the prune of {what}, kept: {'; '.join(uses)}")

    def _replacement(self, journal: Journal, record: ImageRecord) -> ImageRecord | None:
        """What the interrupted removal named as the image's replacement (GCP's deprecation names
        it); for a journal that did not save it, the image's newest other version."""
        saved = journal.data.get("replacement")
        if isinstance(saved, dict):
            return record_from(saved, journal)
        others = [
            r for r in self.provider(record.target).images(record.target, record.name) if r.version != record.version
        ]
        return max(others, key=lambda r: version_key(r.version)) if others else None

    def _look_at_interrupted(self, notes: list[str]) -> list[str]:
        """For the dry run: the interrupted removals a `--yes` would finish; those it would
        abandon (or refuse to finish) go to `notes`."""
        unfinished = []
        for journal in self._open_journals():
            record = record_of(journal)
            line = f"{record.ref} on {record.target} (interrupted during {journal.data.get('current') or 'its record'})"
            uses = self._in_use_now(record)
            if not uses:
                unfinished.append(line)
            elif destroying(journal):
                notes.append(
                    f"interrupted prune of {line} would be refused: part of it is gone, the rest is {'; '.join(uses)}"
                )
            else:
                notes.append(f"interrupted prune of {line} would be abandoned: {'; '.join(uses)}")
        return unfinished


def _refuse(holder: str) -> BakeryError:
    return BakeryError(
        f"another `bakery prune --yes` is running: {holder}",
        hint="wait for it to finish: two prunes at once would each remove what the other is deciding on",
    )


def _newest_kept(verdicts: list[Verdict], gone: Verdict) -> ImageRecord | None:
    """What replaces a removed version (GCP's deprecation names it): its image's newest kept one."""
    name = gone.image.split("@")[0]
    kept = [
        v.record
        for v in verdicts
        if v.action == KEEP and v.target == gone.target and v.image.startswith(f"{name}@") and v.record
    ]
    return max(kept, key=lambda r: version_key(r.version)) if kept else None
