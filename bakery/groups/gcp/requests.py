"""What the GCP group driver writes: names, descriptions and request bodies. Pure, tested by equality.

Bodies are google-cloud-compute messages as dicts with their Python field names (`type_`,
`max_surge`), as `compute_v1.X.to_dict` gives and `compute_v1.X(mapping)` takes.

Names (GCE's rule: [a-z]([-a-z0-9]*[a-z0-9])?, at most 63 characters) carry the rollout id
("r-" + 12 hex), so a rerun finds what an interrupted one made:
- the rollout's instance template: `<mig>-<rollout>`;
- a history record (an instance template whose description holds one HistoryEntry):
  `<mig>-<rollout>-h<n>`, n growing each time the entry is written again;
- the second group of a blue-green rollout: `<mig>-<rollout>`, in the group's zone or region.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from bakery.config.targets.gcp import GcpGroup
from bakery.core import provenance
from bakery.errors import ConfigError, ProviderError
from bakery.groups.base import HistoryEntry, Release, Rollout, instance_tags

API_ROOT = "https://www.googleapis.com/compute/v1/"
# Between the human line of a description and the JSON bakery reads back.
TEMPLATE_MARKER = "\n\nbakery-rollout:"
RECORD_MARKER = "\n\nbakery-history:"
DESCRIPTION_MAX = 2048  # GCE's limit for a resource's description
_ROLLOUT_ID = r"r-[0-9a-f]{12}"


@dataclass(frozen=True)
class Where:
    """A managed instance group's project and zone (zonal) or region (regional)."""

    project: str
    zone: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, project: str, gcp: GcpGroup) -> Where:
        return cls(project, gcp.zone, gcp.region)

    @property
    def location(self) -> str:
        return self.zone or self.region or ""

    @property
    def scope(self) -> str:
        return f"zones/{self.zone}" if self.zone else f"regions/{self.region}"

    @property
    def template_scopes(self) -> tuple[str, str]:
        """Where the group's instance templates may be: global, or its region's (europe-west1-b is in
        europe-west1)."""
        return ("global", f"regions/{self.region or str(self.zone).rpartition('-')[0]}")

    def mig(self, name: str) -> str:
        return f"MIG {name} ({self.location})"


def _short(mig: str, room: int) -> str:
    return mig[:room].rstrip("-")


def template_name(mig: str, rollout_id: str) -> str:
    return f"{_short(mig, 38)}-{rollout_id}"


def record_name(mig: str, rollout_id: str, serial: int) -> str:
    return f"{_short(mig, 38)}-{rollout_id}-h{serial}"


def successor_name(mig: str, rollout_id: str) -> str:
    """The blue-green group a rollout makes beside `mig` (the images.yaml group's MIG)."""
    return f"{_short(mig, 48)}-{rollout_id}"


def templates_filter(mig: str) -> str:
    """A list filter for the rollout templates and records of `mig`'s group (GCE's `eq` takes a regex)."""
    return f"name eq '{_short(mig, 38)}-{_ROLLOUT_ID}(-h[0-9]+)?'"


def successors_filter(mig: str) -> str:
    return f"name eq '{_short(mig, 48)}-{_ROLLOUT_ID}'"


def is_successor(mig: str, name: str) -> bool:
    """Whether `name` is a MIG a blue-green rollout made beside `mig`."""
    return re.fullmatch(re.escape(_short(mig, 48)) + "-" + _ROLLOUT_ID, name) is not None


def record_serial(name: str) -> int | None:
    found = re.search(r"-h([0-9]+)$", name)
    return int(found.group(1)) if found else None


def image_path(source: str, project: str) -> str:
    """A boot image as 'projects/P/global/images/NAME' (or '.../images/family/F'), whichever way a
    template names it: a full URL, 'projects/...', or 'global/images/...' (in `project`)."""
    path = source.removeprefix(API_ROOT).removeprefix("https://compute.googleapis.com/compute/v1/")
    return path if path.startswith("projects/") else f"projects/{project}/{path.lstrip('/')}"


def resource_path(url: str) -> str:
    """'projects/p/global/instanceTemplates/t' from a URL or a path."""
    found = re.search(r"projects/.*$", url)
    return found.group(0) if found else url


def name_of(url: str) -> str:
    return url.rstrip("/").rpartition("/")[2]


# --- the update policy and versions --------------------------------------------------------


def fixed_or_percent(value: int | str, size: int) -> dict[str, int]:
    """A group's max_surge / max_unavailable as GCE's FixedOrPercent. GCE takes a percentage only
    for groups of 10 instances or more: below that it is turned into a number (rounded up)."""
    if isinstance(value, int):
        return {"fixed": value}
    percent = int(value.rstrip("%"))
    return {"percent": percent} if size >= 10 else {"fixed": math.ceil(percent * size / 100)}


def zones_of(mig: dict[str, Any]) -> int:
    """How many zones a MIG (as read) spreads over: its distribution policy's, 1 for a zonal MIG."""
    return len((mig.get("distribution_policy") or {}).get("zones") or []) or 1


def _at_zones(value: dict[str, int], zones: int) -> dict[str, int]:
    """A fixed value GCE takes for a MIG over `zones` zones: 0, or at least `zones`."""
    fixed = value.get("fixed")
    return {"fixed": zones} if fixed is not None and 0 < fixed < zones else value


def update_policy(gcp: GcpGroup, size: int, zones: int = 1) -> dict[str, Any]:
    """PROACTIVE replacement at the group's maxSurge/maxUnavailable. For a regional MIG over `zones`
    zones, GCE refuses a fixed value that is neither 0 nor at least `zones`: such a value is raised
    to `zones` (policy_notes says so). Raises ConfigError when both are 0 (GCE refuses: nothing
    could move)."""
    surge, unavailable = fixed_or_percent(gcp.max_surge, size), fixed_or_percent(gcp.max_unavailable, size)
    if not any(surge.values()) and not any(unavailable.values()):
        raise ConfigError(
            f"gcp group {gcp.mig}: max_surge and max_unavailable are both 0, so no instance could be replaced",
            hint="set max_surge: 1 (a new instance starts before an old one stops)",
        )
    return {
        "type_": "PROACTIVE",
        "minimal_action": "REPLACE",
        "max_surge": _at_zones(surge, zones),
        "max_unavailable": _at_zones(unavailable, zones),
    }


def policy_notes(gcp: GcpGroup, size: int, zones: int) -> list[str]:
    """What update_policy raised to the zone count, for the reporter."""
    out = []
    for key, value in (("max_surge", gcp.max_surge), ("max_unavailable", gcp.max_unavailable)):
        wanted = fixed_or_percent(value, size)
        if _at_zones(wanted, zones) != wanted:
            out.append(
                f"gcp group {gcp.mig}: {key} {value} is sent as {zones}: GCE takes for a regional MIG "
                f"a fixed {key} of 0 or at least its number of zones ({zones})"
            )
    return out


def bare_policy(policy: dict[str, Any] | None) -> dict[str, Any]:
    """An update policy as read, without what GCE computes (`calculated`): what a patch can send back."""
    out: dict[str, Any] = {}
    for key, value in (policy or {}).items():
        out[key] = {k: v for k, v in value.items() if k != "calculated"} if isinstance(value, dict) else value
    return out


# The update policy that stops the MIG moving: no instance is replaced unless it is recreated anyway.
FROZEN = {"update_policy": {"type_": "OPPORTUNISTIC"}}


def all_on(template: str, rollout_id: str) -> list[dict[str, Any]]:
    """Versions that put every instance on `template`."""
    return [{"name": rollout_id, "instance_template": template}]


def canary(current: str, new: str, count: int, rollout_id: str) -> list[dict[str, Any]]:
    """Versions that put `count` instances on `new` and leave the rest on `current`."""
    return [
        {"name": "stable", "instance_template": current},
        {"name": rollout_id, "instance_template": new, "target_size": {"fixed": count}},
    ]


def versions_of(mig: dict[str, Any]) -> list[tuple[str, int | None]]:
    """(template path, fixed target or None) per version of a MIG as read; its instanceTemplate
    when it lists no version."""
    out = []
    for version in mig.get("versions") or []:
        target = version.get("target_size") or {}
        out.append((resource_path(version["instance_template"]), target.get("fixed", target.get("calculated"))))
    if not out and mig.get("instance_template"):
        out.append((resource_path(mig["instance_template"]), None))
    return out


def same_versions(mig: dict[str, Any], wanted: list[dict[str, Any]]) -> bool:
    want = [(resource_path(v["instance_template"]), (v.get("target_size") or {}).get("fixed")) for v in wanted]
    return versions_of(mig) == want


def fixed_of(version: dict[str, Any]) -> int | None:
    """The fixed target size of a version bakery writes (None: the rest of the group)."""
    fixed = (version.get("target_size") or {}).get("fixed")
    return int(fixed) if fixed is not None else None


def listed_versions(versions: list[dict[str, Any]]) -> str:
    """Versions as bakery writes them, in words: 'web-mig-r1 x1, web-tmpl'."""
    return ", ".join(
        name_of(v["instance_template"]) + (f" x{v['target_size']['fixed']}" if "target_size" in v else "")
        for v in versions
    )


def shown_versions(versions: list[list[Any]]) -> str:
    """Versions as a journal keeps them ([path, size]), in words."""
    shown = [name_of(str(path)) + (f" x{size}" if size is not None else "") for path, size in versions]
    return ", ".join(shown) or "none"


# --- templates --------------------------------------------------------------------------------


def boot_image(template: dict[str, Any]) -> str | None:
    """The source image of the template's boot disk, as the template writes it."""
    for disk in template.get("properties", {}).get("disks", []):
        if disk.get("boot"):
            return (disk.get("initialize_params") or {}).get("source_image") or None
    return None


def instance_labels(rollout: Rollout) -> dict[str, str]:
    """The traceability marks (base.instance_tags) as GCP labels: `bakery-image`, `bakery-version`,
    `bakery-inputs-digest` (base32), `bakery-rollout`, encoded as the image stamp is."""
    return provenance.gcp_stamp_labels({key.removeprefix("bakery:"): v for key, v in instance_tags(rollout).items()})


def next_template(
    current: dict[str, Any], *, name: str, image: str, labels: dict[str, str], description: str
) -> dict[str, Any]:
    """The group's current template with another boot image and bakery's labels (on every instance
    it creates). Raises ProviderError when the template does not boot from an image."""
    properties = copy.deepcopy(current.get("properties") or {})
    boots = [d for d in properties.get("disks", []) if d.get("boot") and (d.get("initialize_params") or {})]
    if len(boots) != 1 or not boots[0]["initialize_params"].get("source_image"):
        raise ProviderError(
            f"GCP: instance template {current.get('name')} does not create its boot disk from an image, "
            "so bakery cannot put a new image in a copy of it",
            hint="give the group a template whose boot disk has initializeParams.sourceImage",
        )
    boots[0]["initialize_params"]["source_image"] = image
    kept = {k: v for k, v in (properties.get("labels") or {}).items() if not k.startswith(provenance.GCP_PREFIX)}
    if len(kept) + len(labels) > provenance.GCP_MAX_LABELS:
        raise ConfigError(
            f"instance template {current.get('name')} has {len(kept)} labels; with bakery's {len(labels)} "
            f"they exceed GCP's {provenance.GCP_MAX_LABELS}: remove some from the template"
        )
    properties["labels"] = {**kept, **labels}
    return {"name": name, "description": description, "properties": properties}


def describe(human: str, marker: str, facts: dict[str, Any]) -> str:
    """A description: a line for people, then the facts bakery reads back (compact JSON).
    Raises ProviderError when they cannot fit in GCE's limit."""
    text = human + marker + json.dumps(facts, separators=(",", ":"), sort_keys=True)
    if len(text) > DESCRIPTION_MAX:
        raise ProviderError(f"GCP: bakery's record is {len(text)} characters, over GCE's {DESCRIPTION_MAX}")
    return text


def facts_of(description: str | None, marker: str) -> dict[str, Any] | None:
    """The facts `describe` wrote; None for a description bakery did not write (or cannot read)."""
    if not description or marker not in description:
        return None
    try:
        facts = json.loads(description.split(marker, 1)[1])
    except ValueError:
        return None
    return facts if isinstance(facts, dict) else None


def template_facts(
    rollout: Rollout, group_key: str, where_from: str, *, policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the rollout's template says about it: whose, what, from where, since when, and the
    MIG's own update policy (what comes back after it, even if the journal is lost)."""
    facts: dict[str, Any] = {
        "group": group_key,
        "rollout": rollout.id,
        "kind": rollout.kind,
        "to": release_json(rollout.to),
        "from": release_json(rollout.previous),
        "strategy": rollout.plan.strategy,
        "who": rollout.who,
        "where": where_from,
        "started": rollout.started,
    }
    if policy:
        facts["policy"] = policy
    return facts


# --- history entries --------------------------------------------------------------------------

REASON_MAX = 400


def release_json(release: Release | None) -> dict[str, Any] | None:
    return None if release is None else {k: v for k, v in asdict(release).items() if v is not None}


def release_from(data: Any) -> Release | None:
    if not isinstance(data, dict) or "image_id" not in data:
        return None
    return Release(data.get("image"), data["image_id"], data.get("template"), data.get("inputs_digest"))


def entry_json(entry: HistoryEntry, group_key: str, mig: str) -> dict[str, Any]:
    """A history entry as a record's facts, with the group it is of and the MIG it left serving."""
    reason = entry.reason if entry.reason is None or len(entry.reason) <= REASON_MAX else entry.reason[:REASON_MAX]
    return {
        "group": group_key,
        "mig": mig,
        "id": entry.id,
        "kind": entry.kind,
        "started": entry.started,
        "who": entry.who,
        "from": release_json(entry.from_),
        "to": release_json(entry.to),
        "strategy": entry.strategy,
        "result": entry.result,
        "finished": entry.finished,
        "reason": reason,
    }


def entry_from(facts: dict[str, Any]) -> HistoryEntry | None:
    """The entry in a record's facts; None when they are not one bakery can read."""
    to = release_from(facts.get("to"))
    if to is None or facts.get("kind") not in ("rollout", "rollback"):
        return None
    return HistoryEntry(
        id=str(facts.get("id", "")),
        kind=facts["kind"],
        started=str(facts.get("started", "")),
        who=str(facts.get("who", "")),
        from_=release_from(facts.get("from")),
        to=to,
        strategy=str(facts.get("strategy", "")),
        result=str(facts.get("result", "")),
        finished=facts.get("finished"),
        reason=facts.get("reason"),
    )
