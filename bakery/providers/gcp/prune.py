"""A GCP image's deprecation ladder for `bakery prune` (what uses it: usage.py): DEPRECATED (with its
replacement, and the times of the next rungs written on the image itself), OBSOLETE once
`obsolete_after_days` have passed, deleted `delete_after_days` after that. Each prune climbs
the rungs that are due; every rung is one call, so an interruption leaves a whole image."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bakery.config.models import Prune
from bakery.core.catalog import ImageRecord
from bakery.core.debris import iso, utc
from bakery.errors import ProviderError
from bakery.providers.gcp.access import GcpAccess
from bakery.providers.gcp.trust import located
from bakery.steps import Journal, Step


def prune_steps(
    provider: GcpAccess, record: ImageRecord, *, replacement: ImageRecord | None, now: str, policy: Prune
) -> Sequence[Step]:
    spec = provider.specs[record.target]
    project, name = located(record)

    def climb(journal: Journal) -> None:
        api = provider.compute(spec)
        moment = utc(now)
        if moment is None:
            raise ProviderError(f"prune of {record.ref}: {now!r} is not a time")
        changed = False
        while True:
            image = api.find(project, name)
            if image is None:
                journal.put("removed", journal.get("removed") or [f"image {project}/{name} (already gone)"])
                break
            status = image.deprecated if "deprecated" in image else None
            state = status.state if status is not None else ""
            obsolete_at = utc(status.obsolete) if status is not None and status.obsolete else None
            delete_at = utc(status.deleted) if status is not None and status.deleted else None
            if state in ("", "ACTIVE") or obsolete_at is None or delete_at is None:
                api.deprecate(project, name, _deprecation(api, moment, policy, replacement))
            elif state == "DEPRECATED" and moment >= obsolete_at:
                api.deprecate(project, name, {**_as_dict(status), "state": "OBSOLETE"})
            elif state == "OBSOLETE" and moment >= delete_at:
                journal.put("destroying", True)
                api.delete(project, name)
                journal.put("removed", [f"image {project}/{name}"])
                changed = True
                break
            else:
                when = obsolete_at if state == "DEPRECATED" else delete_at
                then = "obsolete" if state == "DEPRECATED" else "deleted"
                journal.put("rung", f"{state.lower()} (to be {then} from {iso(when)})")
                break
            changed = True
        journal.put("changed", changed)

    return [Step("ladder", climb, f"deprecating {record.ref} (DEPRECATED, OBSOLETE, then deleted)")]


def next_rung(provider: GcpAccess, record: ImageRecord, *, replacement: ImageRecord | None, now: str) -> str:
    """The rung `climb` would take next, for the dry run."""
    project, name = located(record)
    image = provider.compute(provider.specs[record.target]).find(project, name)
    if image is None:
        return "already gone"
    status = image.deprecated if "deprecated" in image else None
    state = status.state if status is not None else ""
    obsolete_at = utc(status.obsolete) if status is not None and status.obsolete else None
    delete_at = utc(status.deleted) if status is not None and status.deleted else None
    moment = utc(now)
    if state in ("", "ACTIVE") or obsolete_at is None or delete_at is None or moment is None:
        instead = f", replacement {located(replacement)[1]}" if replacement and replacement.kind == "gcp" else ""
        return f"deprecate (DEPRECATED{instead})"
    if state == "DEPRECATED":
        return "obsolete" if moment >= obsolete_at else f"wait (obsolete from {iso(obsolete_at)})"
    return "delete" if moment >= delete_at else f"wait (delete from {iso(delete_at)})"


def restore(provider: GcpAccess, record: ImageRecord, *, act: bool) -> str | None:
    """Clear the deprecation a prune's ladder set (it names the times of the next rungs; a
    revocation's does not) on an image that is kept now; what it was, or None."""
    api = provider.compute(provider.specs[record.target])
    project, name = located(record)
    image = api.find(project, name)
    status = image.deprecated if image is not None and "deprecated" in image else None
    if status is None or status.state not in ("DEPRECATED", "OBSOLETE") or not (status.obsolete and status.deleted):
        return None
    if act:
        now = api.deprecate(project, name, {"state": "ACTIVE"})
        state = now.deprecated.state if "deprecated" in now else "ACTIVE"
        if (state or "ACTIVE") != "ACTIVE":
            raise ProviderError(f"{record.ref}: GCP image {project}/{name} is {state} after it was set ACTIVE")
    return f"{status.state.lower()} image {project}/{name}"


def _deprecation(api: Any, moment: datetime, policy: Prune, replacement: ImageRecord | None) -> dict[str, str]:
    obsolete = moment + timedelta(days=policy.obsolete_after_days)
    status = {
        "state": "DEPRECATED",
        "deprecated": iso(moment),
        "obsolete": iso(obsolete),
        "deleted": iso(obsolete + timedelta(days=policy.delete_after_days)),
    }
    if replacement is not None and replacement.kind == "gcp":
        other_project, other = located(replacement)
        status["replacement"] = api.get(other_project, other, what=f"replacement {replacement.ref}").self_link
    return status


def _as_dict(status: Any) -> dict[str, str]:
    return {k: getattr(status, k) for k in ("deprecated", "obsolete", "deleted", "replacement") if getattr(status, k)}
