"""The bake key: stable for the same inputs, different when any input differs."""

from __future__ import annotations

import pytest

from bakery.core.digest import digest_json, inputs_digest

INPUTS = {
    "files": {"playbooks/web.yml": "a" * 64, "templates/amazon-ebs.pkr.hcl": "b" * 64},
    "variables": {"region": "eu-west-1", "image_tags": {"team": "platform", "service": "web"}, "volume_size": 8},
    "entry": {"image": "web", "entry": {"version": "1.0", "playbooks": ["playbooks/web.yml"]}},
    "base": "ami-0123456789abcdef0",
    "parent_digest": None,
    "tools": {"packer": "1.11.2", "ansible": "2.19.0"},
}


def digest(**changes):
    return inputs_digest(**{**INPUTS, **changes})


def reordered(mapping):
    out = {}
    for key in reversed(list(mapping)):
        value = mapping[key]
        out[key] = reordered(value) if isinstance(value, dict) else value
    return out


def test_digest_form_and_stability():
    first = digest()
    assert first.startswith("sha256:") and len(first) == 71
    assert all(c in "0123456789abcdef" for c in first[7:])
    assert digest() == first


def test_digest_does_not_depend_on_dict_order():
    changed = {name: reordered(value) if isinstance(value, dict) else value for name, value in INPUTS.items()}
    assert list(changed["variables"]) != list(INPUTS["variables"])
    assert inputs_digest(**changed) == digest()


@pytest.mark.parametrize(
    "change",
    [
        {"files": {**INPUTS["files"], "playbooks/web.yml": "c" * 64}},
        {"files": {**INPUTS["files"], "playbooks/roles/x/tasks/main.yml": "d" * 64}},
        {"files": {"playbooks/web.yml": "a" * 64}},
        {"variables": {**INPUTS["variables"], "region": "eu-central-1"}},
        {"variables": {**INPUTS["variables"], "image_tags": {"team": "platform"}}},
        {"variables": {**INPUTS["variables"], "volume_size": "8"}},
        {"entry": {"image": "web", "entry": {"version": "1.1", "playbooks": ["playbooks/web.yml"]}}},
        {"base": "ami-0fedcba9876543210"},
        {"parent_digest": "sha256:" + "e" * 64},
        {"tools": {"packer": "1.11.3", "ansible": "2.19.0"}},
        {"tools": {"packer": "1.11.2", "ansible": "2.19.1"}},
    ],
    ids=[
        "file-content",
        "file-added",
        "file-removed",
        "variable",
        "nested-variable",
        "variable-type",
        "entry",
        "base",
        "parent",
        "packer",
        "ansible",
    ],
)
def test_digest_changes_with_every_input(change):
    assert digest(**change) != digest()


def test_digest_json_is_sorted_compact_utf8():
    assert digest_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()
