"""The registry of target kinds and the typed Packer variables: unknown kinds are errors that list
the known ones, and a field's flag (not a list kept elsewhere) says whether it enters the bake key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bakery.bake import render
from bakery.config import kinds
from bakery.errors import UsageError
from bakery.groups.base import get_driver
from bakery.progress import Recording
from bakery.providers.base import PackerVariables, get_provider, packer_variables, per_bake
from bakery.workspace import Workspace

COMMON_KEYED = {"image_name", "image_tags", "galaxy_file"}
KEYED = {
    "local": COMMON_KEYED | {"memory", "cpus", "disk_size", "ssh_timeout"},
    "aws": COMMON_KEYED
    | {
        "region",
        "source_ami",
        "source_ami_filter_name",
        "source_ami_filter_owners",
        "source_ami_most_recent",
        "instance_type",
        "subnet_id",
        "vpc_id",
        "security_group_ids",
        "iam_instance_profile",
        "encrypt_boot",
        "kms_key_id",
        "volume_size",
        "ssh_username",
        "ssh_interface",
        "ami_regions",
        "ami_users",
        "communicator",
    },
    "gcp": COMMON_KEYED
    | {
        "project_id",
        "zone",
        "machine_type",
        "source_image",
        "source_image_family",
        "source_image_project_id",
        "image_family",
        "network",
        "subnetwork",
        "service_account_email",
        "disk_size",
        "ssh_username",
        "use_internal_ip",
        "network_tags",
    },
}


def test_the_built_in_kinds_in_the_order_they_were_registered() -> None:
    assert kinds.names() == ("local", "aws", "gcp")
    assert [kinds.get(k).builder for k in kinds.names()] == ["qemu", "amazon-ebs", "googlecompute"]


def test_an_unknown_kind_is_an_error_listing_the_known_ones(tmp_path: Any) -> None:
    with pytest.raises(UsageError, match="unknown target kind 'azure'; valid kinds: aws, gcp, local"):
        kinds.get("azure")
    ws = Workspace(tmp_path)
    with pytest.raises(UsageError, match="no provider for target kind 'azure'; valid kinds: aws, gcp, local"):
        get_provider("azure", ws, Recording())
    with pytest.raises(UsageError, match="no group driver for target kind 'azure'; valid kinds: aws, gcp, local"):
        get_driver("azure", ws, Recording())
    with pytest.raises(UsageError, match="no provider for target kind 'azure'"):
        packer_variables("azure")


@pytest.mark.parametrize("name", ["Azure", "image", "require_signed", "a-b", ""])
def test_a_kind_cannot_take_a_name_images_yaml_cannot_hold(name: str) -> None:
    local = kinds.get("local")
    with pytest.raises(UsageError, match="cannot register target kind"):
        kinds.register(kinds.Kind(**{**local.__dict__, "name": name}))
    assert kinds.names() == ("local", "aws", "gcp")


@dataclass(frozen=True, kw_only=True)
class Sample(PackerVariables):
    kept: str
    unset: str | None = None
    changing: str = per_bake()
    listed: tuple[str, ...] = ()


def test_a_field_says_whether_it_enters_the_bake_key() -> None:
    sample = Sample(kept="a", changing="b", listed=("x", "y"))
    assert sample.as_dict() == {"kept": "a", "changing": "b", "listed": ["x", "y"]}  # None: not written
    assert [(name, keyed) for name, _, keyed in sample.items()] == [
        ("kept", True),
        ("changing", False),
        ("listed", True),
    ]


@pytest.mark.parametrize("target", ["local", "aws", "gcp"])
def test_what_enters_the_bake_key_of_each_kind(project_dir: Any, target: str) -> None:
    project = project_dir.load()
    values = render.variables(project, project.effective("web", target), "1.0.0")
    assert set(values.keyed()) == KEYED[target]
    per_bake_names = set(values.as_dict()) - KEYED[target]
    assert {"image_version", "image_description", "ansible_extra_vars"} <= per_bake_names


@pytest.mark.parametrize(
    "first",
    [
        "bakery.config.targets.gcp",
        "bakery.config.targets.aws",
        "bakery.config.targets.local",
        "bakery.providers.gcp.provider",
    ],
)
def test_every_built_in_kind_is_known_whichever_module_is_imported_first(first: str) -> None:
    """A kind's own module imported before anything else (as a test module or a plugin may) must not
    leave the registry with the kinds registered before it: the import system's questions to
    bakery.config.models (`__path__`, `__spec__`) never read the registry half-way."""
    import subprocess
    import sys

    code = f"import {first}\nfrom bakery.config import kinds\nprint(','.join(kinds.names()))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "local,aws,gcp"
