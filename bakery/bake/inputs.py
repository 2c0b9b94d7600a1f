"""Everything a bake reads, reduced to the bake key and described in its provenance.

Shared by the bake (which records both) and the plan (which compares the key with the catalog).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bakery import __version__
from bakery.bake import render
from bakery.config import kinds
from bakery.config.load import EffectiveImage, Project
from bakery.core import provenance
from bakery.core.digest import digest_json, inputs_digest, sha256_hex
from bakery.providers.base import Prepared


def resolved_entry(project: Project, eff: EffectiveImage) -> dict[str, Any]:
    """The image's images.yaml entry as this bake sees it (overrides applied, target included)."""
    # Tests check an image, they do not make it: they stay out of the bake key.
    image = eff.image.model_dump(mode="json", by_alias=True, exclude={"overrides", "tests"})
    # Only what this target reads: another target's source or (on local) tags change nothing here.
    if image.get("source"):
        image["source"] = {eff.kind: image["source"].get(eff.kind)}
    image.update(playbooks=list(eff.playbooks), vars=eff.vars, secrets=sorted(eff.image.secrets))
    image["tags"] = eff.tags if kinds.get(eff.kind).tags else {}
    target = project.config.targets[eff.target].model_dump(mode="json", exclude={"endpoint", "tests"})
    return {"image": eff.name, "entry": image, "target": {"name": eff.target, **target}}


def bake_key(
    project: Project,
    eff: EffectiveImage,
    values: render.BakeVariables,
    prepared: Prepared,
    tools: Mapping[str, str],
    files: Mapping[str, str] | None = None,
) -> str:
    """The inputs digest: templates, rendered variables, playbooks and roles, resolved base,
    parent digest, and the Packer and Ansible versions. `files` saves hashing them again."""
    return inputs_digest(
        files=files if files is not None else render.input_files(project, eff),
        variables=values.keyed(),
        entry=resolved_entry(project, eff),
        base=prepared.base,
        parent_digest=prepared.parent.inputs_digest if prepared.parent else None,
        tools={"packer": tools["packer"], "ansible": tools["ansible"]},
    )


def statement_skeleton(
    project: Project,
    eff: EffectiveImage,
    *,
    version: str,
    prepared: Prepared,
    digest: str,
    tools: Mapping[str, str],
    git: Mapping[str, Any],
    invocation: str,
    started: str,
    builder: str,
    files: Mapping[str, str] | None = None,
    built_by: str = "",
) -> dict[str, Any]:
    """The provenance document minus what only the finished build knows (subject, finish time)."""
    entry = resolved_entry(project, eff)
    deps = [
        provenance.Dependency(
            name="git",
            uri=git["uri"],
            digest={"gitCommit": git["commit"]} if git["commit"] else {},
            annotations={"dirty": git["dirty"]},
        )
    ]
    if prepared.base_dependency is not None:
        deps.append(prepared.base_dependency)
    if prepared.parent is not None:
        parent = prepared.parent
        digest_set = {"sha256": parent.subject_sha256} if parent.subject_sha256 else {}
        deps.append(
            provenance.Dependency(
                name=f"parent:{parent.ref}",
                digest=digest_set,
                uri=parent.locations[0] if parent.locations else None,
                annotations={"inputsDigest": parent.inputs_digest, "target": parent.target},
            )
        )
    deps += [
        provenance.Dependency(name=path, digest={"sha256": sha})
        for path, sha in (files if files is not None else render.input_files(project, eff)).items()
    ]
    deps.append(
        provenance.Dependency(
            name=f"{project.path.name}#images.{eff.name}",
            digest={"sha256": sha256_hex(digest_json(entry))},
            annotations={"entry": entry},
        )
    )
    return provenance.statement(
        subject_name="",
        subject_digest={},
        external={"image": eff.name, "target": eff.target, "version": version},
        internal={
            "inputsDigest": digest,
            "builder": builder,
            "builtBy": built_by,  # who baked it: they may not approve it for a channel
            "base": prepared.base,
            "parent": prepared.parent.ref if prepared.parent else None,
        },
        dependencies=deps,
        tool_versions={"bakery": __version__, **tools},
        invocation_id=invocation,
        started=started,
        finished="",
    )
