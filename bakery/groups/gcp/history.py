"""A GCP group's history, kept in the project beside the group, and pruning what it no longer needs.

Instance templates cannot change after they are made, and a MIG has no place for notes, so each
history entry is its own small record: an instance template named `<mig>-<rollout>-h<n>` whose
description holds the entry (and the MIG that served after it). It never creates an instance; its
properties are a copy of the rollout's template, which GCE accepts as they are. Writing an entry
again (the same rollout, a later result) makes record n+1, then deletes the older ones. Every
machine with access to the project reads the same history; `gcloud compute instance-templates
list --filter="name~-h[0-9]+$"` shows it.

A rollout template without a record (the process that ran it died before recording) still shows
in the history, as running while the group moves to it, otherwise interrupted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bakery.errors import ProviderError
from bakery.groups.base import ActiveRollout, HistoryEntry
from bakery.groups.gcp.read import Site
from bakery.groups.gcp.requests import (
    RECORD_MARKER,
    TEMPLATE_MARKER,
    describe,
    entry_from,
    entry_json,
    facts_of,
    name_of,
    record_name,
    record_serial,
    release_from,
    resource_path,
    successor_name,
    template_name,
    templates_filter,
    versions_of,
)

FINISHED = ("succeeded", "failed", "rolled-back", "rollback-failed")


@dataclass(frozen=True)
class Record:
    entry: HistoryEntry
    serial: int
    path: str
    mig: str  # the MIG that served after it


class History:
    def __init__(self, site: Site) -> None:
        self.site = site

    def _templates(self) -> list[dict[str, Any]]:
        """The group's rollout templates and records, global and regional."""
        flt = templates_filter(self.site.gcp.mig)
        return [t for scope in self.site.where.template_scopes for t in self.site.api.templates(scope, flt)]

    def records(self, templates: list[dict[str, Any]] | None = None) -> dict[str, list[Record]]:
        """Records per rollout id, newest (highest n) first."""
        out: dict[str, list[Record]] = {}
        for template in self._templates() if templates is None else templates:
            facts = facts_of(template.get("description"), RECORD_MARKER)
            serial = record_serial(template["name"])
            entry = entry_from(facts) if facts and facts.get("group") == self.site.key else None
            if entry is None or serial is None or facts is None:
                continue
            path = resource_path(template["self_link"])
            out.setdefault(entry.id, []).append(Record(entry, serial, path, str(facts.get("mig", ""))))
        for found in out.values():
            found.sort(key=lambda r: r.serial, reverse=True)
        return out

    def entries(self) -> list[HistoryEntry]:
        """Every rollout and rollback of the group, oldest first."""
        templates = self._templates()
        records = self.records(templates)
        entries = [found[0].entry for found in records.values()]
        live = None
        for template in templates:
            facts = facts_of(template.get("description"), TEMPLATE_MARKER)
            if not facts or facts.get("group") != self.site.key or facts.get("rollout") in records:
                continue
            to = release_from(facts.get("to"))
            if to is None:
                continue
            to = dataclasses.replace(to, template=resource_path(template["self_link"]))
            live = live or self.site.live()
            path = resource_path(template["self_link"])
            moving = path in [p for p, _ in versions_of(live)] and self.site.active(live) is not None
            entries.append(
                HistoryEntry(
                    id=str(facts.get("rollout", "")),
                    kind="rollback" if facts.get("kind") == "rollback" else "rollout",
                    started=str(facts.get("started", "")),
                    who=str(facts.get("who", "")),
                    from_=release_from(facts.get("from")),
                    to=to,
                    strategy=str(facts.get("strategy", "")),
                    result="running" if moving else "interrupted",
                    reason=None if moving else "no outcome was recorded (the process running it stopped)",
                )
            )
        return sorted(entries, key=lambda e: (e.started, e.id))

    def unless_finished(self, active: ActiveRollout | None) -> ActiveRollout | None:
        """`active`, unless its rollout's record says it is over: a rollout that failed with the
        group's rollback off leaves the MIG stopped half-way, and nobody is moving it any more (a
        new rollout may take it from there)."""
        if active is None or not active.id:
            return active
        found = self.records().get(active.id)
        return None if found and found[0].entry.result in FINISHED else active

    def made_by(self, rollout_id: str) -> str | None:
        """The path of the template rollout `rollout_id` made, if it exists."""
        name = template_name(self.site.gcp.mig, rollout_id)
        for scope in self.site.where.template_scopes:
            path = f"projects/{self.site.where.project}/{scope}/instanceTemplates/{name}"
            if self.site.template(path) is not None:
                return path
        return None

    def write(self, entry: HistoryEntry) -> None:
        """Keep `entry` as a new record, then delete the earlier records of the same rollout. An
        entry whose `to` names no template gets the one its rollout made (what a rollback of a
        later rollout returns to)."""
        if entry.to.template is None:
            made = self.made_by(entry.id)
            entry = dataclasses.replace(entry, to=dataclasses.replace(entry.to, template=made)) if made else entry
        earlier = self.records().get(entry.id, [])
        serial = (earlier[0].serial + 1) if earlier else 1
        live = self.site.live()
        base_path = entry.to.template if entry.to.template and self.site.template(entry.to.template) else None
        base = self.site.template(base_path or versions_of(live)[0][0])
        if base is None:
            raise ProviderError(f"GCP: no instance template of {self.site.where.mig(live['name'])} to base a record on")
        human = f"bakery history of group {self.site.name}: {entry.kind} {entry.id} -> {entry.result}"
        body = {
            "name": record_name(self.site.gcp.mig, entry.id, serial),
            "description": describe(human, RECORD_MARKER, entry_json(entry, self.site.key, live["name"])),
            "properties": base.get("properties", {}),
        }
        self.site.api.insert_template("global", body, f"{entry.id}/record")
        for record in earlier:
            self.site.api.delete_template(record.path)

    def prune(self, keep: int, retention_seconds: int) -> list[str]:
        """Delete the rollout templates of rollouts older than the last `keep` that no MIG of the
        group uses, and blue-green MIGs retired longer than `retention_seconds` ago. Records stay,
        and so does the template of a rollout not recorded as over (it may be running elsewhere)."""
        entries = self.entries()
        over = {e.id for e in entries if e.result in (*FINISHED, "interrupted")}
        kept: set[str] = set()
        for entry in entries[-keep:] if keep else []:
            kept.update(resource_path(r.template) for r in (entry.to, entry.from_) if r and r.template)
        family = self.site.family()
        for mig in family:
            kept.update(path for path, _ in versions_of(mig))
        removed = []
        for template in self._templates():
            facts = facts_of(template.get("description"), TEMPLATE_MARKER)
            path = resource_path(template["self_link"])
            if not facts or facts.get("group") != self.site.key or path in kept or facts.get("rollout") not in over:
                continue
            if self.site.api.delete_template(path):
                removed.append(f"instance template {name_of(path)}")
        removed += self._retired(family, retention_seconds)
        return removed

    def _retired(self, family: list[dict[str, Any]], retention_seconds: int) -> list[str]:
        """Delete the blue-green MIGs bakery made that no longer serve, past their retention."""
        if not self.site.gcp.backend_service:
            return []
        attached = set(self.site.attached(self.site.backends()))
        ordered = sorted(self.records().values(), key=lambda r: (r[0].entry.started, r[0].entry.id))
        served = _served_until(ordered, self.site.gcp.mig)
        now = datetime.now(UTC)
        removed = []
        for mig in family:
            name = mig["name"]
            if name == self.site.gcp.mig or name in attached or int(mig.get("target_size", 0)) > 0:
                continue
            until = served.get(name)
            if until is None or (now - until).total_seconds() < retention_seconds:
                continue
            if self.site.api.delete_mig(name):
                removed.append(self.site.where.mig(name))
        return removed


def _served_until(ordered: list[list[Record]], mig: str) -> dict[str, datetime]:
    """When each MIG stopped serving: the end of the first recorded rollout after which another
    MIG served. A MIG that never served is retired when the rollout that made it ended."""
    out: dict[str, datetime] = {}
    serving = None
    for found in ordered:
        record = found[0]
        finished = _when(record.entry.finished or record.entry.started)
        if finished is None:
            continue
        made = successor_name(mig, record.entry.id)
        if made != record.mig:
            out.setdefault(made, finished)
        if serving and record.mig and record.mig != serving:
            out[serving] = finished
        if record.mig:
            out.pop(record.mig, None)
            serving = record.mig
    return out


def _when(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
