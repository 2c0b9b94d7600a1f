"""images.yaml -> a validated Project. Every error names file:line:col and the key path."""

from __future__ import annotations

import difflib
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import ValidationError

from bakery.config import imagetests, kinds, limits, yamlload
from bakery.config.imagetests import ImageTests
from bakery.config.model_base import Model
from bakery.config.models import NAME_HINT, Config, Group, Image, config_model
from bakery.config.yamlload import Loc, Marks, key_path
from bakery.errors import ConfigError, UsageError

DEFAULT_FILE = "images.yaml"
EXTENSION_PREFIX = "x-"
Problem = tuple[Loc, str]


@dataclass(frozen=True)
class EffectiveImage:
    """One image as it is baked on one target: overrides applied, parent named."""

    name: str
    target: str
    kind: str
    image: Image
    playbooks: tuple[str, ...]
    vars: dict[str, Any]
    tags: dict[str, str]
    tests: ImageTests = field(default_factory=ImageTests)  # the target's defaults, the image's, its override's


@dataclass(frozen=True)
class Project:
    """A validated images.yaml and the directory it lives in."""

    path: Path
    config: Config
    marks: Marks = field(repr=False, default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    def image(self, name: str) -> Image:
        if name not in self.config.images:
            raise UsageError(_unknown("image", name, self.config.images), hint="bakery validate lists them")
        return self.config.images[name]

    def lineage(self, name: str) -> tuple[str, ...]:
        """The image and its ancestors, the image first."""
        chain = [name]
        while (parent := self.config.images[chain[-1]].parent) is not None:
            chain.append(parent)
        return tuple(chain)

    def root_source_kinds(self, name: str) -> tuple[str, ...]:
        source = self.config.images[self.lineage(name)[-1]].source
        return source.kinds() if source else ()

    def targets_of(self, name: str) -> tuple[str, ...]:
        """Targets an image bakes on: its explicit list, else every target its root source fits."""
        image = self.config.images[name]
        if image.targets is not None:
            return image.targets
        kinds = self.root_source_kinds(name)
        return tuple(t for t, spec in self.config.targets.items() if spec.kind in kinds)

    def effective(self, name: str, target: str) -> EffectiveImage:
        image = self.image(name)
        if target not in self.config.targets:
            raise UsageError(_unknown("target", target, self.config.targets))
        if target not in self.targets_of(name):
            raise UsageError(
                f"image '{name}' does not bake on target '{target}'",
                hint=f"its targets: {', '.join(self.targets_of(name)) or 'none'} "
                "(add a matching 'source' or list the target under 'targets')",
            )
        override = image.override_for(target)
        return EffectiveImage(
            name=name,
            target=target,
            kind=self.config.targets[target].kind,
            image=image,
            playbooks=override.playbooks if override.playbooks is not None else image.playbooks,
            vars={**image.vars, **override.vars},
            tags={**image.tags, **override.tags},
            tests=imagetests.resolve(self.config.targets[target].tests, image.tests, override.tests),
        )

    def lineages_ok(self) -> bool:
        """Whether every `from:` names a known image and none makes a cycle (lineages end)."""
        images = self.config.images
        known = all(i.parent is None or i.parent in images for i in images.values())
        return known and not _cycles("images", "from", {n: i.parent for n, i in images.items()})

    def order(self, names: list[str] | None = None) -> tuple[str, ...]:
        """Images in dependency order (parents first, then by name), limited to `names` and their
        ancestors."""
        wanted = set(self.config.images) if not names else {a for n in names for a in self.lineage(n)}
        sorter = TopologicalSorter(_parents({n: self.config.images[n].parent for n in sorted(wanted)}))
        sorter.prepare()
        done: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            done += ready
            sorter.done(*ready)
        return tuple(done)


def _unknown(what: str, name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {what} '{name}'{hint}; known: {', '.join(sorted(known)) or 'none'}"


def find_config(explicit: str | None) -> Path:
    path = Path(explicit or os.environ.get("BAKERY_CONFIG") or DEFAULT_FILE)
    if not path.is_file():
        raise UsageError(
            f"{path}: no such file",
            hint="run bakery in the directory that holds images.yaml, or pass --file PATH",
        )
    return path.resolve()


def load(path: Path) -> Project:
    """Read, validate and cross-check images.yaml. Raises ConfigError listing every problem."""
    data, marks = yamlload.read(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1:1: expected a mapping with 'images' and 'targets' at the top level")
    # Top-level `x-` keys are the file's own (a home for anchors that `<<:` merges), not bakery's.
    data = {k: v for k, v in data.items() if not k.startswith(EXTENSION_PREFIX)}
    try:
        config = config_model().model_validate(data)
    except ValidationError as exc:
        raise _config_error(path, marks, _pydantic_problems(exc, data)) from None
    project = Project(path=path, config=config, marks=marks)
    problems = _cross_check(project)
    if problems:
        raise _config_error(path, marks, problems)
    return project


# --- problems -> one message --------------------------------------------------------------------


def _allowed_at(data: Any, loc: Loc) -> list[str]:
    """Keys allowed at `loc`, found by walking the models along the path (for 'did you mean')."""
    node: Any = config_model()
    value: Any = data
    for part in loc:
        value = value.get(part) if isinstance(value, dict) else None
        node = _field_type(node, part, value)
        if node is None:
            return []
    return node.keys() if isinstance(node, type) and issubclass(node, Model) else []


def _field_type(node: Any, part: str | int, value: Any) -> Any:
    if isinstance(node, type) and issubclass(node, Model):
        field = next((f for n, f in node.model_fields.items() if part in (n, f.alias)), None)
        return _unwrap(field.annotation, value) if field else None
    origin = get_origin(node)
    if origin is dict:
        return _unwrap(get_args(node)[1], value)
    if origin is tuple or origin is list:
        return _unwrap(get_args(node)[0], value)
    return None


def _unwrap(annotation: Any, value: Any) -> Any:
    """Strip Optional/Annotated; pick a union member by the data's 'kind' where there is one."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [_unwrap(a, value) for a in get_args(annotation) if a is not type(None)]
        models = [m for m in members if isinstance(m, type) and issubclass(m, Model)]
        kind = value.get("kind") if isinstance(value, dict) else None
        for model in models:
            kind_field = model.model_fields.get("kind")
            if kind_field is not None and kind in get_args(kind_field.annotation):
                return model
        return models[0] if len(models) == 1 else (members[0] if len(members) == 1 else None)
    return annotation


def _pydantic_problems(exc: ValidationError, data: Any) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        # pydantic appends the discriminator tag to union paths ('targets.x.aws.region'): drop it.
        if len(loc) > 2 and loc[0] == "targets" and loc[2] in kinds.names():
            loc = loc[:2] + loc[3:]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = _allowed_at(data, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
            message = (
                f"unknown key '{loc[-1]}'"
                + (f" (did you mean '{close[0]}'?)" if close else "")
                + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
            )
        elif err["type"] == "string_pattern_mismatch" and err["loc"][-1] == "[key]":
            loc = loc[:-1]
            message = f"name {err['input']!r} is not allowed: use {NAME_HINT}"
        elif err["type"] == "string_pattern_mismatch" and len(loc) > 1 and loc[-2] == "secrets":
            message = f"secret '{loc[-1]}' must name an environment variable, got {err['input']!r}"
        elif err["type"] == "union_tag_invalid":
            message = f"'kind' must be one of {', '.join(kinds.names())}, got {err['ctx']['tag']!r}"
            loc = (*loc, "kind")
        elif err["type"] == "union_tag_not_found":
            message = f"missing 'kind' (one of {', '.join(kinds.names())})"
        elif err["type"] == "string_pattern_mismatch":
            message = f"{err['input']!r} does not have the expected form (pattern {err['ctx']['pattern']})"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append((tuple(p for p in loc if p != "[key]"), message))
    return problems


def _config_error(path: Path, marks: Marks, problems: list[Problem]) -> ConfigError:
    lines = []
    for loc, message in problems:
        probe = loc
        while probe not in marks and probe:
            probe = probe[:-1]
        line, col = marks.get(probe, (1, 1))
        lines.append((line, col, f"{path}:{line}:{col}: {key_path(loc)}: {message}"))
    lines.sort()
    rendered = tuple(text for _, _, text in lines)
    count = f"{len(rendered)} problem{'s' if len(rendered) != 1 else ''}"
    return ConfigError(
        f"{path} is not valid ({count}):\n  " + "\n  ".join(rendered),
        problems=rendered,
        hint="fix the keys above; `bakery schema` prints the JSON Schema for your editor",
    )


def _cross_check(project: Project) -> list[Problem]:
    """References between sections, reference cycles, files on disk and what the targets accept."""
    cfg, root = project.config, project.root
    problems: list[Problem] = []
    for name, image in cfg.images.items():
        here: Loc = ("images", name)
        if image.parent is not None and image.parent not in cfg.images:
            problems.append(((*here, "from"), _unknown("image", image.parent, cfg.images)))
        for target in image.targets or ():
            if target not in cfg.targets:
                problems.append(((*here, "targets"), _unknown("target", target, cfg.targets)))
        for target in image.overrides:
            if target not in cfg.targets:
                problems.append(((*here, "overrides", target), _unknown("target", target, cfg.targets)))
        books = [((*here, "playbooks", i), p) for i, p in enumerate(image.playbooks)]
        for target, override in image.overrides.items():
            books += [((*here, "overrides", target, "playbooks", i), p) for i, p in enumerate(override.playbooks or ())]
        for loc, book in books:
            if not (root / book).is_file():
                problems.append((loc, f"playbook '{book}' not found (looked in {root / book})"))
            elif Path(book).is_absolute() or ".." in Path(book).parts:
                problems.append((loc, f"playbook '{book}' must be a path inside {root}"))
    problems += imagetests.problems(
        cfg, root, lambda kind: not kinds.known(kind) or kinds.get(kind).launcher is not None
    )
    cycles = _cycles("images", "from", {n: i.parent for n, i in cfg.images.items()})
    # Lineages are only followed once every `from:` names a known image and none makes a cycle.
    lineages_ok = project.lineages_ok()
    problems += cycles
    if lineages_ok:
        problems += _target_fit(project) + _cloud_limits(project)
    for name, group in cfg.groups.items():
        here = ("groups", name)
        if group.image not in cfg.images:
            problems.append(((*here, "image"), _unknown("image", group.image, cfg.images)))
        if group.target not in cfg.targets:
            problems.append(((*here, "target"), _unknown("target", group.target, cfg.targets)))
        elif group.image in cfg.images and lineages_ok and group.target not in project.targets_of(group.image):
            problems.append(((*here, "target"), f"image '{group.image}' does not bake on target '{group.target}'"))
        if group.channel is not None and group.channel not in cfg.channels:
            problems.append(((*here, "channel"), _unknown("channel", group.channel, cfg.channels)))
        problems += _group_kind(name, group, cfg.targets.get(group.target))
    for kind in kinds.all_kinds():
        if kind.checks is not None:
            problems += kind.checks(project)
    for name, channel in cfg.channels.items():
        if channel.promote_from is not None and channel.promote_from not in cfg.channels:
            problems.append(
                (("channels", name, "promote_from"), _unknown("channel", channel.promote_from, cfg.channels))
            )
        if channel.soak is not None and channel.promote_from is None:
            problems.append(
                (("channels", name, "soak"), "'soak' needs 'promote_from': the channel a version soaks in first")
            )
        if channel.auto and channel.tests != "passed":
            problems.append(
                (
                    ("channels", name, "auto"),
                    "'auto: true' promotes every tested bake: add 'tests: passed', so that a bake whose tests "
                    "failed or did not run (--no-test, no tests:) is never promoted by it",
                )
            )
        if channel.auto and channel.approvals:
            problems.append(
                (
                    ("channels", name, "auto"),
                    "'auto: true' promotes every tested bake as it is made, which no approval can precede: "
                    "remove 'approvals' or 'auto'",
                )
            )
    problems += _cycles("channels", "promote_from", {n: c.promote_from for n, c in cfg.channels.items()})
    return problems


def _group_kind(name: str, group: Group, target: Any) -> list[Problem]:
    """A group has exactly the settings block of its target's kind (aws:, gcp: or local:)."""
    here = ("groups", name)
    given = list(group.blocks())
    problems: list[Problem] = [
        (
            (*here, kind),
            f"this group's target '{group.target}' is {target.kind}: remove '{kind}:' (settings for {kind} groups)",
        )
        for kind in given
        if target is not None and kind != target.kind
    ]
    if target is not None and target.kind not in given:
        needs = kinds.get(target.kind).group_example
        problems.append((here, f"a group on {target.kind} target '{group.target}' needs its settings: {needs}"))
    return problems


def _parents(edges: Mapping[str, str | None]) -> dict[str, set[str]]:
    """A graph for TopologicalSorter: each node and the one it names (when that is a node)."""
    return {node: {to} if to is not None and to in edges else set() for node, to in edges.items()}


def _cycles(section: str, key: str, edges: Mapping[str, str | None]) -> list[Problem]:
    """Every cycle that `key` (one reference per entry) makes, reported at each entry on it and
    named in the order the references run: 'a -> b -> a' where a names b and b names a."""
    graph = _parents(edges)
    problems: list[Problem] = []
    while True:
        try:
            TopologicalSorter(graph).prepare()
            return problems
        except CycleError as exc:
            # Each node of the reported cycle is an immediate predecessor (the one named) of the next.
            cycle: list[str] = list(reversed(exc.args[1]))[:-1]
            for i, node in enumerate(cycle):
                chain = " -> ".join([*cycle[i:], *cycle[: i + 1]])
                problems.append(((section, node, key), f"'{key}' makes a cycle: {chain}"))
            # then look for the next cycle among the other entries
            graph = {n: deps - set(cycle) for n, deps in graph.items() if n not in cycle}


def _kinds(project: Project, name: str) -> dict[str, str]:
    """The targets image `name` bakes on and their kinds (unknown names are reported elsewhere)."""
    targets = project.config.targets
    return {t: targets[t].kind for t in project.targets_of(name) if t in targets}


def _cloud_limits(project: Project) -> list[Problem]:
    problems: list[Problem] = []
    for name, image in project.config.images.items():
        problems += limits.image_problems(name, image, _kinds(project, name))
    return problems


def _target_fit(project: Project) -> list[Problem]:
    problems: list[Problem] = []
    templates = template_dirs(project.root)
    for name in project.config.images:
        source_kinds = project.root_source_kinds(name)
        for target, kind in _kinds(project, name).items():
            if kind not in source_kinds:
                problems.append(
                    (
                        ("images", name, "targets"),
                        f"target '{target}' is {kind}, but the image's source has no '{kind}'",
                    )
                )
            template = f"{kinds.get(kind).builder}.pkr.hcl"
            if not any((d / template).is_file() for d in templates):
                problems.append((("targets", target, "kind"), f"no template {template} in {templates[0]}"))
    return problems


def template_dirs(root: Path) -> tuple[Path, ...]:
    """Project templates/ first, then the copy shipped with bakery."""
    package = Path(__file__).resolve().parents[1]  # bakery/: its wheel ships _templates, a checkout has ../templates
    candidates = (root / "templates", package / "_templates", package.parent / "templates")
    return tuple(dict.fromkeys(d for d in candidates if d.is_dir())) or (root / "templates",)
