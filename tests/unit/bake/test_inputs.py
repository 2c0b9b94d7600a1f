"""The bake key (bakery/bake/inputs.py): it changes with everything that changes the image, and with
nothing that differs from one bake of the same inputs to the next (the version, the bake's key
and mark, paths on this machine, the endpoint it talks to)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bakery.bake import inputs, render
from bakery.core.catalog import ImageRecord
from bakery.core.provenance import Dependency
from bakery.providers.aws.variables import AwsMarks, AwsPrepared
from bakery.providers.base import BuildMarks, Prepared
from bakery.providers.gcp.variables import GcpMarks
from bakery.providers.local.variables import LocalPrepared

TOOLS = {"packer": "1.6.6", "ansible": "2.17.0"}
BASE = Prepared(base="ami-0123456789abcdef0", base_dependency=None)


def key(
    project_dir: Any,
    target: str = "aws",
    *,
    version: str = "1.0.0",
    prepared: Prepared = BASE,
    marks: BuildMarks | None = None,
    tools: dict[str, str] = TOOLS,
) -> str:
    """The bake key as a bake computes it (render.variables, then inputs.bake_key)."""
    project = project_dir.load()
    eff = project.effective("web", target)
    values = render.variables(project, eff, version, prepared, marks)
    return inputs.bake_key(project, eff, values, prepared, tools)


def edit(project_dir: Any, old: str, new: str) -> dict[str, Any]:
    """Edit images.yaml; returns the arguments of key() that change with it (none: the files do)."""
    text = project_dir.config.read_text()
    assert old in text, old
    project_dir.write(text.replace(old, new, 1))
    return {}


def append(project_dir: Any, path: str, text: str) -> dict[str, Any]:
    file = project_dir.root / path
    file.write_text(file.read_text() + text)
    return {}


def test_the_key_is_a_sha256_and_the_same_for_the_same_inputs(project_dir: Any) -> None:
    first = key(project_dir)
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    assert key(project_dir) == first
    project = project_dir.load()
    eff = project.effective("web", "aws")
    values = render.variables(project, eff, "1.0.0")
    # Files hashed once by the caller give the same key as files hashed here.
    assert inputs.bake_key(project, eff, values, BASE, TOOLS, render.input_files(project, eff)) == first


# --- what changes the image changes the key ------------------------------------------------------

CHANGES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "a playbook": lambda p: append(p, "playbooks/web.yml", "# one more line\n"),
    "a role's template": lambda p: append(p, "playbooks/roles/nginx_page/templates/index.html.j2", "<!-- -->\n"),
    "the Packer template": lambda p: append(p, "templates/amazon-ebs.pkr.hcl", "\n# changed\n"),
    "a var": lambda p: edit(p, "page_title: Hello", "page_title: Bye"),
    "the description": lambda p: edit(p, "description: the web image", "description: the new web image"),
    "the playbooks' order": lambda p: edit(
        p,
        "      - playbooks/base.yml\n      - playbooks/web.yml",
        "      - playbooks/web.yml\n      - playbooks/base.yml",
    ),
    "a tag (on AWS, tags are on the image)": lambda p: edit(p, "team: platform", "team: web"),
    "a secret's name": lambda p: edit(
        p, "    tags:\n      team", "    secrets: {db_password: DB_PW}\n    tags:\n      team"
    ),
    "a setting of the target": lambda p: edit(
        p, "    region: eu-west-1\n", "    region: eu-west-1\n    instance_type: t3.large\n"
    ),
    "the base": lambda p: {"prepared": Prepared(base="ami-0fffffffffffffff0", base_dependency=None)},
    "the parent's inputs": lambda p: {"prepared": _with_parent("sha256:" + "2" * 64)},
    "Packer's version": lambda p: {"tools": {**TOOLS, "packer": "1.11.2"}},
    "Ansible's version": lambda p: {"tools": {**TOOLS, "ansible": "2.18.1"}},
}


def _with_parent(digest: str) -> Prepared:
    parent = ImageRecord("base", "1.0.4", "aws", "aws", digest, "2026-01-01T00:00:00Z", "ami-0base")
    return Prepared(base=parent.ref, base_dependency=None, parent=parent)


@pytest.mark.parametrize("change", list(CHANGES))
def test_the_key_changes_with_what_changes_the_image(project_dir: Any, change: str) -> None:
    before = key(project_dir, prepared=_with_parent("sha256:" + "1" * 64)) if "parent" in change else key(project_dir)
    kwargs = CHANGES[change](project_dir)
    assert key(project_dir, **kwargs) != before


# --- what differs per bake, or per machine, does not ----------------------------------------------

SAME: dict[str, tuple[str, dict[str, Any]]] = {
    "the version": ("aws", {"version": "1.0.7"}),
    "the bake's mark on AWS": (
        "aws",
        {
            "prepared": AwsPrepared(
                base=BASE.base,
                base_dependency=None,
                build_tags={"bakery:invocation": "0123456789ab", "bakery:state": "pending"},
                endpoint="http://127.0.0.1:5000",
            ),
            "marks": AwsMarks(
                ami_name="web-1.0.0-0123456789ab", image_description="the web image [bakery:0123456789ab]"
            ),
        },
    ),
    "the bake's labels on GCP": (
        "gcp",
        {
            "marks": GcpMarks(
                image_description="the web image",
                gcp_build_labels={"bakery-invocation": "0123456789ab"},
            )
        },
    ),
    "the bake's key and paths on this machine": (
        "local",
        {
            "prepared": LocalPrepared(
                base=BASE.base,
                base_dependency=None,
                base_disk="/home/u/.bakery/cache/base/ab12/disk.qcow2",
                kernel="/home/u/.bakery/cache/base/ab12/vmlinuz",
                initrd="/home/u/.bakery/cache/base/ab12/initrd.img",
                kernel_cmdline="root=/dev/vda rw bakery.ssh_key=c3NoLWVkMjU1MTk=",
                ssh_private_key_file="/home/u/.bakery/builds/web-local-0123/build-key",
                output_directory="/home/u/.bakery/builds/web-local-0123/output",
                accelerator="kvm",
            )
        },
    ),
}


@pytest.mark.parametrize("what", list(SAME))
def test_the_key_does_not_change_with_what_differs_per_bake(project_dir: Any, what: str) -> None:
    target, kwargs = SAME[what]
    assert key(project_dir, target, **kwargs) == key(project_dir, target)


def test_the_endpoint_a_target_talks_to_is_not_an_input(project_dir: Any) -> None:
    before = key(project_dir)
    edit(project_dir, "    region: eu-west-1\n", "    region: eu-west-1\n    endpoint: http://127.0.0.1:5000\n")
    assert key(project_dir) == before


def test_another_targets_source_is_not_an_input(project_dir: Any) -> None:
    before = key(project_dir, "aws")
    edit(project_dir, "family: debian-12", "family: debian-13")
    assert key(project_dir, "aws") == before
    edit(project_dir, "ami: ami-0123456789abcdef0", "ami: ami-0fedcba9876543210")
    assert key(project_dir, "aws") != before


def test_tags_do_not_enter_a_local_images_key(project_dir: Any) -> None:
    """A local image carries no tags: changing them changes nothing that is baked there."""
    before = key(project_dir, "local")
    edit(project_dir, "team: platform", "team: web")
    assert key(project_dir, "local") == before


def test_a_secrets_value_is_never_an_input(project_dir: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(project_dir, "    tags:\n      team", "    secrets: {db_password: DB_PW}\n    tags:\n      team")
    monkeypatch.setenv("DB_PW", "one-value-1234")
    before = key(project_dir)
    monkeypatch.setenv("DB_PW", "another-value-5678")
    assert key(project_dir) == before


# --- the provenance skeleton -------------------------------------------------------------------


def test_the_statement_lists_what_the_key_was_computed_from(project_dir: Any) -> None:
    project = project_dir.load()
    eff = project.effective("web", "aws")
    prepared = Prepared(
        base="ami-0123456789abcdef0",
        base_dependency=Dependency(name="ami:eu-west-1", uri="ami-0123456789abcdef0", digest={"awsImageId": "x"}),
    )
    skeleton = inputs.statement_skeleton(
        project,
        eff,
        version="1.0.3",
        prepared=prepared,
        digest="sha256:" + "a" * 64,
        tools=TOOLS,
        git={"uri": "git+file:///src", "commit": "c" * 40, "dirty": False},
        invocation="0123456789ab",
        started="2026-01-02T03:04:05Z",
        builder="amazon-ebs",
    )
    build = skeleton["predicate"]["buildDefinition"]
    names = [d["name"] for d in build["resolvedDependencies"]]
    assert names[:2] == ["git", "ami:eu-west-1"]
    assert names[-1] == "images.yaml#images.web"
    assert set(render.input_files(project, eff)) == set(names[2:-1])
    entry = build["resolvedDependencies"][-1]["annotations"]["entry"]
    assert entry == inputs.resolved_entry(project, eff)
    assert build["internalParameters"]["inputsDigest"] == "sha256:" + "a" * 64
    assert build["externalParameters"] == {"image": "web", "target": "aws", "version": "1.0.3"}
