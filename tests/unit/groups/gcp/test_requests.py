"""What the GCP group driver writes (bakery/groups/gcp/requests.py), by equality: names, update policies,
versions, the new instance template, descriptions and history records."""

from __future__ import annotations

from typing import Any

import pytest

from bakery.config.models import GcpGroup, Group, Strategy
from bakery.core import provenance
from bakery.errors import ConfigError, ProviderError
from bakery.groups.base import HistoryEntry, Release, Rollout
from bakery.groups.gcp import requests as rq
from bakery.groups.gcp.steps import has_policy
from bakery.groups.strategy import plan

RID = "r-0123456789ab"


IMAGE = "projects/p/global/images/web-1-0-1"


def gcp(**settings: Any) -> GcpGroup:
    return GcpGroup(**{"mig": "web-mig", "zone": "europe-west1-b", **settings})


def rollout(**changes: Any) -> Rollout:
    group = Group(image="web", target="gcp", gcp=gcp())
    values: dict[str, Any] = {
        "id": RID,
        "kind": "rollout",
        "group": "web",
        "spec": group,
        "target": "gcp",
        "target_spec": None,
        "to": Release("web@1.0.1", IMAGE, None, "sha256:" + "ab" * 32),
        "to_record": None,
        "previous": Release("web@1.0.0", "projects/p/global/images/web-1-0-0", "projects/p/global/instanceTemplates/t"),
        "plan": plan(Strategy(), 3),
        "who": "alice@laptop",
        "started": "2026-03-01T10:00:00Z",
    }
    return Rollout(**{**values, **changes})


# --- names ------------------------------------------------------------------------------------------


def test_names_carry_the_rollout_and_fit_gce_s_rules() -> None:
    assert rq.template_name("web-mig", RID) == "web-mig-r-0123456789ab"
    assert rq.record_name("web-mig", RID, 3) == "web-mig-r-0123456789ab-h3"
    assert rq.successor_name("web-mig", RID) == "web-mig-r-0123456789ab"
    long = "a" * 37 + "-" + "b" * 25  # 63 characters, the longest MIG name
    assert rq.template_name(long, RID) == "a" * 37 + "-r-0123456789ab"  # no '--' where it is cut
    assert len(rq.successor_name(long, RID)) == 63
    assert len(rq.record_name(long, RID, 999)) <= 63


def test_list_filters_match_the_group_s_templates_and_successors() -> None:
    assert rq.templates_filter("web-mig") == "name eq 'web-mig-r-[0-9a-f]{12}(-h[0-9]+)?'"
    assert rq.successors_filter("web-mig") == "name eq 'web-mig-r-[0-9a-f]{12}'"
    assert rq.record_serial("web-mig-r-0123456789ab-h12") == 12
    assert rq.record_serial("web-mig-r-0123456789ab") is None


def test_image_and_resource_paths_are_normalized() -> None:
    assert rq.image_path("https://www.googleapis.com/compute/v1/projects/p/global/images/x", "q") == (
        "projects/p/global/images/x"
    )
    assert rq.image_path("global/images/family/debian-12", "q") == "projects/q/global/images/family/debian-12"
    assert rq.image_path("projects/p/global/images/x", "q") == "projects/p/global/images/x"
    assert rq.resource_path("https://compute.googleapis.com/compute/v1/projects/p/zones/z/instanceGroups/g") == (
        "projects/p/zones/z/instanceGroups/g"
    )


# --- the update policy and versions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [(2, 3, {"fixed": 2}), ("25%", 12, {"percent": 25}), ("25%", 4, {"fixed": 1}), ("50%", 3, {"fixed": 2})],
)
def test_surge_is_fixed_below_ten_instances(value: int | str, size: int, expected: dict[str, int]) -> None:
    assert rq.fixed_or_percent(value, size) == expected


def test_update_policy_is_proactive_replace_at_the_group_s_surge() -> None:
    assert rq.update_policy(gcp(max_surge=2, max_unavailable="10%"), 20) == {
        "type_": "PROACTIVE",
        "minimal_action": "REPLACE",
        "max_surge": {"fixed": 2},
        "max_unavailable": {"percent": 10},
    }


def test_a_regional_mig_gets_a_fixed_surge_of_zero_or_at_least_its_zones_and_a_note_says_so() -> None:
    regional = {"distribution_policy": {"zones": [{"zone": f"zones/europe-west1-{z}"} for z in "bcd"]}}
    zones = rq.zones_of(regional)
    assert (zones, rq.zones_of({"zone": "zones/europe-west1-b"})) == (3, 1)
    policy = rq.update_policy(gcp(), 4, zones)  # max_surge 1, max_unavailable 0 by default
    assert (policy["max_surge"], policy["max_unavailable"]) == ({"fixed": 3}, {"fixed": 0})
    assert rq.policy_notes(gcp(), 4, zones) == [
        "gcp group web-mig: max_surge 1 is sent as 3: GCE takes for a regional MIG a fixed max_surge "
        "of 0 or at least its number of zones (3)"
    ]
    assert rq.update_policy(gcp(max_unavailable=4), 4, zones)["max_unavailable"] == {"fixed": 4}
    assert rq.update_policy(gcp(max_surge="50%"), 4, zones)["max_surge"] == {"fixed": 3}  # 2 of 4, raised
    assert rq.update_policy(gcp(), 4, 1)["max_surge"] == {"fixed": 1}  # zonal: as set
    assert rq.policy_notes(gcp(), 4, 1) == []


def test_a_policy_as_read_goes_back_without_what_gce_computed() -> None:
    read = {"type_": "PROACTIVE", "max_surge": {"fixed": 2, "calculated": 2}, "min_ready_sec": 5}
    assert rq.bare_policy(read) == {"type_": "PROACTIVE", "max_surge": {"fixed": 2}, "min_ready_sec": 5}
    assert rq.bare_policy(None) == {}


def test_an_update_policy_that_could_move_nothing_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_surge and max_unavailable are both 0"):
        rq.update_policy(gcp(max_surge=0, max_unavailable=0), 3)


def test_versions_for_rolling_and_canary() -> None:
    assert rq.all_on("T1", RID) == [{"name": RID, "instance_template": "T1"}]
    assert rq.canary("T0", "T1", 2, RID) == [
        {"name": "stable", "instance_template": "T0"},
        {"name": RID, "instance_template": "T1", "target_size": {"fixed": 2}},
    ]


def test_versions_as_read_compare_with_what_bakery_patches() -> None:
    url = "https://www.googleapis.com/compute/v1/projects/p/global/instanceTemplates/"
    mig = {
        "versions": [
            {"instance_template": url + "T0", "name": "stable"},
            {"instance_template": url + "T1", "target_size": {"fixed": 2, "calculated": 2}},
        ]
    }
    assert rq.versions_of(mig) == [
        ("projects/p/global/instanceTemplates/T0", None),
        ("projects/p/global/instanceTemplates/T1", 2),
    ]
    paths = "projects/p/global/instanceTemplates/"
    assert rq.same_versions(mig, rq.canary(paths + "T0", paths + "T1", 2, RID))
    assert not rq.same_versions(mig, rq.all_on(paths + "T1", RID))
    assert rq.versions_of({"instance_template": url + "T0"}) == [("projects/p/global/instanceTemplates/T0", None)]


def test_a_policy_gce_filled_in_is_still_bakery_s() -> None:
    policy = rq.update_policy(gcp(), 3)
    read = {"update_policy": {**policy, "max_surge": {"fixed": 1, "calculated": 1}, "replacement_method": "SUBSTITUTE"}}
    assert has_policy(read, policy)
    assert not has_policy({"update_policy": {**policy, "type_": "OPPORTUNISTIC"}}, policy)


# --- the new template ---------------------------------------------------------------------------------

CURRENT = {
    "name": "web-tmpl",
    "properties": {
        "machine_type": "e2-small",
        "labels": {"team": "web", "bakery-rollout": "r-old"},
        "disks": [
            {"boot": True, "initialize_params": {"source_image": "projects/p/global/images/web-1-0-0"}},
            {"boot": False, "initialize_params": {"disk_size_gb": "50"}},
        ],
    },
}


def test_the_new_template_is_the_current_one_with_the_new_image_and_bakery_s_labels() -> None:
    labels = rq.instance_labels(rollout())
    body = rq.next_template(CURRENT, name="web-mig-" + RID, image=IMAGE, labels=labels, description="d")
    assert body == {
        "name": "web-mig-" + RID,
        "description": "d",
        "properties": {
            "machine_type": "e2-small",
            "labels": {"team": "web", **labels},
            "disks": [
                {"boot": True, "initialize_params": {"source_image": IMAGE}},
                {"boot": False, "initialize_params": {"disk_size_gb": "50"}},
            ],
        },
    }
    assert CURRENT["properties"]["disks"][0]["initialize_params"]["source_image"].endswith("web-1-0-0")  # type: ignore[index]


def test_instance_labels_decode_to_the_traceability_marks() -> None:
    labels = rq.instance_labels(rollout())
    stamp, problems = provenance.gcp_stamp(labels)
    assert (stamp, problems) == ({"image": "web", "version": "1.0.1", "inputs-digest": "sha256:" + "ab" * 32}, {})
    assert labels["bakery-rollout"] == RID
    assert all(len(k) <= 63 and len(v) <= 63 for k, v in labels.items())


def test_a_template_that_boots_from_an_existing_disk_cannot_be_copied() -> None:
    template = {"name": "t", "properties": {"disks": [{"boot": True, "source": "zones/z/disks/d"}]}}
    with pytest.raises(ProviderError, match="does not create its boot disk from an image"):
        rq.next_template(template, name="n", image=IMAGE, labels={}, description="")


def test_a_template_with_too_many_labels_is_refused() -> None:
    template = {**CURRENT, "properties": {**CURRENT["properties"], "labels": {f"l{i}": "x" for i in range(62)}}}
    with pytest.raises(ConfigError, match="exceed GCP's 64"):
        rq.next_template(template, name="n", image=IMAGE, labels=rq.instance_labels(rollout()), description="")


# --- descriptions and records ------------------------------------------------------------------------


def test_descriptions_hold_facts_bakery_reads_back() -> None:
    facts = rq.template_facts(rollout(), "p/europe-west1-b/web-mig", "laptop:42")
    text = rq.describe("bakery: web@1.0.1", rq.TEMPLATE_MARKER, facts)
    assert text.startswith("bakery: web@1.0.1\n\nbakery-rollout:{")
    assert rq.facts_of(text, rq.TEMPLATE_MARKER) == facts
    assert facts["to"] == {"image": "web@1.0.1", "image_id": IMAGE, "inputs_digest": "sha256:" + "ab" * 32}
    assert rq.facts_of("a template made by hand", rq.TEMPLATE_MARKER) is None
    assert rq.facts_of("x" + rq.TEMPLATE_MARKER + "{not json", rq.TEMPLATE_MARKER) is None
    with pytest.raises(ProviderError, match="over GCE's 2048"):
        rq.describe("x" * 2100, rq.TEMPLATE_MARKER, {})


def test_a_history_entry_survives_its_record() -> None:
    entry = HistoryEntry(
        RID,
        "rollout",
        "2026-03-01T10:00:00Z",
        "alice@laptop",
        Release("web@1.0.0", "projects/p/global/images/web-1-0-0", "projects/p/global/instanceTemplates/t"),
        Release("web@1.0.1", IMAGE, "projects/p/global/instanceTemplates/web-mig-" + RID, "sha256:" + "ab" * 32),
        "canary",
        "rolled-back",
        "2026-03-01T10:05:00Z",
        "gate failed: " + "x" * 1000,
    )
    facts = rq.entry_json(entry, "p/z/web-mig", "web-mig")
    assert (facts["group"], facts["mig"], len(facts["reason"])) == ("p/z/web-mig", "web-mig", rq.REASON_MAX)
    back = rq.entry_from(facts)
    assert back == HistoryEntry(**{**entry.__dict__, "reason": entry.reason[: rq.REASON_MAX]})  # type: ignore[index]
    assert rq.entry_from({"kind": "rollout"}) is None


def test_a_blue_green_successor_is_known_by_its_name() -> None:
    assert rq.is_successor("web-mig", rq.successor_name("web-mig", RID))
    assert not rq.is_successor("web-mig", "web-mig")
    assert not rq.is_successor("web-mig", "web-mig-r-0123456789ab-h1")
    assert not rq.is_successor("web", "web-mig-r-0123456789ab")
