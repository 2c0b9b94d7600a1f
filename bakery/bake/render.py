"""Project + one image on one target -> a self-contained Packer build directory.

Pure: reads templates and playbooks, writes files; no subprocess, no network. Everything a
provider had to look up first (a resolved AMI, the base disk, the build key) comes in as its
typed `Prepared`, and the kind's Packer variables come from the kind's provider module.
`packer build DIR` runs the result without bakery.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bakery.bake import hcl
from bakery.config import kinds, secrets
from bakery.config.load import EffectiveImage, Project, template_dirs
from bakery.errors import ConfigError
from bakery.packer import parse_version, wants_required_plugins
from bakery.providers.base import BuildMarks, PackerVariables, Prepared, packer_variables, per_bake

VARS_FILE = "bakery.auto.pkrvars.hcl"
PLUGINS_FILE = "plugins.pkr.hcl"
COMMON_TEMPLATE = "common-variables.pkr.hcl"
SCRIPTS = ("hygiene.sh", "stage-boot.sh")
# Directories Ansible resolves relative to a playbook; they travel with it.
PLAYBOOK_SIBLINGS = ("roles", "templates", "files", "vars", "group_vars", "host_vars")
GALAXY_FILES = ("requirements.yml", "requirements.yaml")
# Packer >= 1.7 loads builders as plugins and wants them declared (each kind names its builder's).
ANSIBLE_PLUGIN = ("github.com/hashicorp/ansible", ">= 1.1.0")


@dataclass(frozen=True, kw_only=True)
class CommonVariables(PackerVariables):
    """The Packer variables every template reads (common-variables.pkr.hcl)."""

    image_name: str
    image_version: str = per_bake()
    image_description: str = per_bake()
    image_tags: Mapping[str, str]
    # Carries the version; everything else in it comes from the images.yaml entry, which is in the key.
    ansible_extra_vars: str = per_bake()
    galaxy_file: str


@dataclass(frozen=True)
class BakeVariables:
    """Every Packer variable of one bake: the common ones, then the kind's (which may replace a
    common one: a local image's tags, a cloud image's description with the bake's mark)."""

    common: CommonVariables
    kind: PackerVariables

    def _items(self) -> dict[str, tuple[Any, bool]]:
        merged = {name: (value, keyed) for name, value, keyed in self.common.items()}
        merged.update({name: (value, keyed) for name, value, keyed in self.kind.items()})
        return merged

    def as_dict(self) -> dict[str, Any]:
        """Name -> value, as the variables file holds them."""
        return {name: value for name, (value, _) in self._items().items()}

    def keyed(self) -> dict[str, Any]:
        """What enters the bake key: every variable not declared per_bake()."""
        return {name: value for name, (value, keyed) in self._items().items() if keyed}


@dataclass(frozen=True)
class Rendered:
    directory: Path
    builder: str
    variables: BakeVariables
    files: dict[str, str]  # path inside the directory -> sha256 of its content


@dataclass(frozen=True)
class RenderResult:
    """What `bakery render` wrote: a build directory for `packer build`, or a preview (offline)."""

    directory: str
    image: str
    target: str
    version: str
    builder: str
    files: list[str]
    preview: bool = False  # rendered offline: for review and `packer validate`, never built or recorded


_GATE = re.compile(
    r"^[ \t]*# bakery:(packer>=(\d+\.\d+)|provision)[^\n]*\n(.*?)^[ \t]*# bakery:end[^\n]*\n", re.M | re.S
)


def gate_sections(template: str, packer_version: str, *, provision: bool = True) -> str:
    """Keep `# bakery:packer>=X.Y ... # bakery:end` sections only for Packer >= X.Y, and
    `# bakery:provision ... # bakery:end` sections only when the target provisions.

    Templates are written for current Packer; the few settings older Packer rejects are marked,
    and so are the provisioners, which an API-only target (communicator: none) cannot run.
    """
    have = parse_version(packer_version)[:2]

    def keep(match: re.Match[str]) -> str:
        if match.group(1) == "provision":
            return match.group(3) if provision else ""
        need = tuple(int(p) for p in match.group(2).split("."))
        return match.group(3) if have >= need else ""

    return _GATE.sub(keep, template)


def provisions(project: Project, eff: EffectiveImage) -> bool:
    """False for an API-only target (communicator: none): no instance to provision."""
    return project.config.targets[eff.target].provisions()


def template_path(project: Project, name: str) -> Path:
    for directory in template_dirs(project.root):
        if (directory / name).is_file():
            return directory / name
    raise ConfigError(f"template {name} not found in {', '.join(map(str, template_dirs(project.root)))}")


def variables(
    project: Project,
    eff: EffectiveImage,
    version: str,
    prepared: Prepared | None = None,
    marks: BuildMarks | None = None,
    *,
    galaxy_file: str = "",
) -> BakeVariables:
    """Every Packer variable of this bake: the common ones, and the kind's from its provider
    (`prepared` and `marks` as the provider gave them; None: nothing resolved yet). Raises
    UsageError for a target kind nobody registered."""
    spec = project.config.targets[eff.target]
    extra_vars = {
        **eff.vars,
        "bakery_image": eff.name,
        "bakery_version": version,
        "bakery_target": eff.target,
        "bakery_description": eff.image.description,
    }
    common = CommonVariables(
        image_name=eff.name,
        image_version=version,
        image_description=eff.image.description,
        image_tags=dict(eff.tags),
        ansible_extra_vars=json.dumps(extra_vars, sort_keys=True, ensure_ascii=False, default=str),
        galaxy_file=galaxy_file,
    )
    return BakeVariables(common, packer_variables(spec.kind)(eff, spec, version, prepared, marks))


def render(
    project: Project,
    eff: EffectiveImage,
    *,
    version: str,
    packer_version: str,
    out: Path,
    prepared: Prepared | None = None,
    marks: BuildMarks | None = None,
) -> Rendered:
    """Write the build directory `out` (created; must be empty or absent). Raises ConfigError."""
    fresh_directory(out)
    kind = kinds.get(eff.kind)
    builder = kind.builder
    for name in (COMMON_TEMPLATE, f"{builder}.pkr.hcl"):
        text = template_path(project, name).read_text(encoding="utf-8")
        (out / name).write_text(
            gate_sections(text, packer_version, provision=provisions(project, eff)), encoding="utf-8"
        )
    (out / "scripts").mkdir()
    for script in SCRIPTS:
        shutil.copyfile(template_path(project, f"scripts/{script}"), out / "scripts" / script)
    galaxy = _copy_playbooks(project, eff.playbooks, out / "ansible")
    # Names only: the values reach ansible-playbook through its environment (bakery.secrets).
    (out / "ansible" / secrets.VARS_FILE).write_text(secrets.vars_file(eff.image.secrets), encoding="utf-8")
    values = variables(project, eff, version, prepared, marks, galaxy_file=galaxy or "")
    (out / VARS_FILE).write_text(
        "# Written by bakery from images.yaml; every value is a quoted HCL literal.\n"
        + hcl.dumps_assignments(values.as_dict()),
        encoding="utf-8",
    )
    if wants_required_plugins(packer_version):
        plugins = {builder: kind.plugin} if kind.plugin else {}
        (out / PLUGINS_FILE).write_text(plugins_block({**plugins, "ansible": ANSIBLE_PLUGIN}), encoding="utf-8")
    files = {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != VARS_FILE
    }
    return Rendered(directory=out, builder=builder, variables=values, files=files)


def fresh_directory(out: Path) -> None:
    """Create `out` for a render; ConfigError if it already holds a Packer build."""
    if out.exists() and any(out.glob("*.pkr.hcl")):
        raise ConfigError(f"{out} already holds a Packer build; render into a new directory")
    out.mkdir(parents=True, exist_ok=True)


def plugins_block(plugins: Mapping[str, tuple[str, str]]) -> str:
    """`packer { required_plugins { ... } }` for builders and provisioners: name -> (source, version)."""
    import hcl2

    required = {
        name.replace("-ebs", ""): {"source": hcl.literal(source), "version": hcl.literal(version)}
        for name, (source, version) in plugins.items()
    }
    doc: Any = hcl2.Builder()
    packer_block: Any = doc.block("packer")
    packer_block.block("required_plugins", **required)
    return hcl.dumps_body(doc.build())


def _copy_playbooks(project: Project, playbooks: tuple[str, ...], dest: Path) -> str | None:
    """Copy playbooks with what Ansible resolves beside them; write site.yml importing them in order."""
    dest.mkdir()
    galaxy: str | None = None
    for book in playbooks:
        src = project.root / book
        target = dest / book
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        for sibling in PLAYBOOK_SIBLINGS:
            if (src.parent / sibling).is_dir() and not (target.parent / sibling).exists():
                shutil.copytree(src.parent / sibling, target.parent / sibling, ignore=_ignored)
        for name in GALAXY_FILES:
            if galaxy is None and (src.parent / name).is_file():
                shutil.copyfile(src.parent / name, target.parent / name)
                galaxy = str(Path(book).parent / name)
    site: list[dict[str, Any]] = [{"import_playbook": book} for book in playbooks] or [
        {"name": "no playbooks", "hosts": "all", "gather_facts": False, "tasks": []}
    ]
    (dest / "site.yml").write_text(
        "# Written by bakery: the image's playbooks, in order.\n" + yaml.safe_dump(site, sort_keys=False),
        encoding="utf-8",
    )
    return galaxy


def _ignored(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n.startswith(".") or n == "__pycache__" or n.endswith((".retry", ".pyc"))]


def input_files(project: Project, eff: EffectiveImage) -> dict[str, str]:
    """Project-relative path -> sha256 for every file a bake of `eff` reads (templates, playbooks, roles)."""
    paths: list[Path] = [
        template_path(project, COMMON_TEMPLATE),
        template_path(project, f"{kinds.get(eff.kind).builder}.pkr.hcl"),
        *(template_path(project, f"scripts/{s}") for s in SCRIPTS),
    ]
    for book in eff.playbooks:
        src = project.root / book
        paths.append(src)
        for sibling in PLAYBOOK_SIBLINGS:
            tree = src.parent / sibling
            if tree.is_dir():
                paths += [p for p in sorted(tree.rglob("*")) if p.is_file() and not _hidden(p, tree)]
        paths += [src.parent / g for g in GALAXY_FILES if (src.parent / g).is_file()]
    out: dict[str, str] = {}
    for path in paths:
        try:
            name = str(path.relative_to(project.root))
        except ValueError:
            name = f"bakery:{path.relative_to(path.parents[1])}"
        out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(out.items()))


def _hidden(path: Path, tree: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(tree).parts)
