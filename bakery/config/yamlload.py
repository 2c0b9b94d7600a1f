"""images.yaml as plain data, with the line and column of every key.

A configuration file has no use for most of YAML, and some of it is a way to hurt the reader:
tags (`!Ref`, `!!python/object`) are refused, aliases may not contain themselves nor expand the
file far beyond its size (a "billion laughs"), nesting is bounded. Merge keys (`<<: *defaults`,
`<<: [*a, *b]`) work as YAML 1.1 defines them; explicit keys win. Scalars keep PyYAML's safe
types, except that dates stay the text they are written as. Every refusal is a ConfigError that
names file:line:col.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, cast

import yaml

from bakery.errors import ConfigError

Loc = tuple[str | int, ...]
Marks = dict[Loc, tuple[int, int]]

# Deep enough for any images.yaml (vars included), shallow enough for Python's recursion limit.
MAX_DEPTH = 64
# Aliases repeat nodes: a file may expand to at most this many nodes, plus so many per character
# of its text. Merging a block of defaults into every image stays far below; a bomb does not.
EXPANSION_FLOOR = 10_000
EXPANSION_PER_CHAR = 20

_MERGE = "tag:yaml.org,2002:merge"
_CORE = "tag:yaml.org,2002:"


def key_path(loc: Loc) -> str:
    """('images', 'web', 'playbooks', 1) -> 'images.web.playbooks[1]'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def read(path: Path) -> tuple[Any, Marks]:
    """The document in `path` and the (line, column) of each key path. Raises ConfigError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    text = _decode(path, raw)
    loader = _Loader(text, path)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        said = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise _refused(path, mark, f"not valid YAML: {said}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}:1:1: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if node is None:
        raise ConfigError(f"{path}:1:1: the file is empty; it needs 'images' and 'targets'")
    builder = _Builder(path)
    return builder.build(node, ()), builder.marks


class _Mark(Protocol):
    """Where PyYAML saw something (its pure-Python and its C marks both have these)."""

    line: int
    column: int


def _where(path: Path, mark: _Mark | None) -> str:
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"


def _refused(path: Path, mark: _Mark | None, message: str) -> ConfigError:
    where = f"{_where(path, mark)}: {message}"
    return ConfigError(where, problems=(where,))


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 text, or a ConfigError at the first byte that is not, or at a character YAML refuses."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[start : exc.start].decode("utf-8", errors="replace")) + 1
        where = f"{path}:{line}:{col}"
        message = f"{where}: byte 0x{raw[exc.start]:02x} is not UTF-8 text; save the file as UTF-8"
        raise ConfigError(message, problems=(message,)) from None
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad:
        start = text.rfind("\n", 0, bad.start()) + 1
        where = f"{path}:{text.count(chr(10), 0, bad.start()) + 1}:{bad.start() - start + 1}"
        message = f"{where}: character U+{ord(bad.group()):04X} is not allowed in YAML (a NUL or control character)"
        raise ConfigError(message, problems=(message,))
    return text


def _tag_as_written(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, used to compose nodes only. It refuses tags, recursive aliases, deep
    nesting and expansion beyond a budget as each node is composed: an alias costs one node here,
    so a bomb is refused by counting, before anything is expanded."""

    def __init__(self, text: str, path: Path) -> None:
        super().__init__(text)
        self.path = path
        self.chars = len(text)
        self.budget = EXPANSION_FLOOR + EXPANSION_PER_CHAR * len(text)
        self.depth = 0
        self.open_anchors: dict[str, _Mark] = {}
        self.sizes: dict[int, int] = {}  # id(node) -> nodes it expands to
        self.depths: dict[int, int] = {}  # id(node) -> levels it expands to (aliases included)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]  # (untyped in types-PyYAML)
        if isinstance(event, yaml.AliasEvent):
            anchor = event.anchor
            if anchor in self.open_anchors:
                raise _refused(
                    self.path,
                    event.start_mark,
                    f"alias *{anchor} is inside the node it names (&{anchor} on line "
                    f"{self.open_anchors[anchor].line + 1}): a recursive alias cannot be expanded",
                )
            return cast(yaml.Node, super().compose_node(parent, index))
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _refused(
                self.path,
                event.start_mark,
                f"YAML tag {_tag_as_written(tag)} is not allowed in images.yaml; "
                "write the value without a tag (quote it to make it text)",
            )
        if self.depth >= MAX_DEPTH:
            raise _refused(self.path, event.start_mark, f"nesting deeper than {MAX_DEPTH} levels is not allowed")
        anchor = getattr(event, "anchor", None)
        self.depth += 1
        if anchor is not None:
            self.open_anchors[anchor] = event.start_mark
        try:
            node = cast(yaml.Node, super().compose_node(parent, index))
        finally:
            self.depth -= 1
            if anchor is not None:
                self.open_anchors.pop(anchor, None)
        children = list(_children(node))
        size = 1 + sum(self.sizes[id(child)] for child in children)
        self.sizes[id(node)] = size
        # An alias adds no depth while the text is read, but does once expanded: count it here.
        depth = 1 + max((self.depths.get(id(child), 1) for child in children), default=0)
        self.depths[id(node)] = depth
        if depth > MAX_DEPTH:
            raise _refused(
                self.path,
                node.start_mark,
                f"aliases nest this value deeper than {MAX_DEPTH} levels once expanded; refused",
            )
        if size > self.budget:
            raise _refused(
                self.path,
                node.start_mark,
                f"aliases expand this value to more than {self.budget} nodes, far more than the file's "
                f"{self.chars} characters hold; refused (an alias bomb?)",
            )
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


# Dates and YAML 1.1's `=` and `<<` as values stay the text they are written as.
_AS_WRITTEN = frozenset(_CORE + tag for tag in ("timestamp", "value", "merge"))


class _Builder:
    """Nodes -> dicts, lists and scalars, recording where each key path is written. The loader has
    bounded what this expands, so plain recursion is safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: Marks = {}
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key, key_node, value_node in self.pairs(node, loc):
                self.marks[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, loc)

    def scalar(self, node: yaml.Node, loc: Loc) -> Any:
        if node.tag in _AS_WRITTEN:
            return node.value
        try:
            return self.constructor.construct_object(node)
        except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
            message = f"{key_path(loc)}: a number of {len(node.value)} characters is too long; quote it to make it text"
        except yaml.YAMLError as exc:
            message = f"{key_path(loc)}: cannot read {_short(node)}: {exc}"
        raise _refused(self.path, node.start_mark, message)

    def pairs(self, node: yaml.MappingNode, loc: Loc) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """The mapping's (key, key node, value node), merge keys applied: explicit keys win over
        merged ones, and an earlier mapping in `<<: [*a, *b]` over a later one."""
        entries: list[tuple[str | None, yaml.Node, yaml.Node]] = []  # key None: a merge key
        explicit: set[str] = set()
        for key_node, value_node in node.value:
            key = None if key_node.tag == _MERGE else self.key(key_node, loc)
            if key in explicit:
                raise _refused(
                    self.path, key_node.start_mark, f"{key_path((*loc, key))}: key '{key}' appears twice; keep one"
                )
            if key is not None:
                explicit.add(key)
            entries.append((key, key_node, value_node))
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, key_node, value_node in entries:
            if key is not None:
                out[key] = (key_node, value_node)
                continue
            for source in self.merge_sources(key_node, value_node, loc):
                for key, merged_key, merged_value in self.pairs(source, loc):
                    if key not in explicit and key not in out:
                        out[key] = (merged_key, merged_value)
        return [(key, k, v) for key, (k, v) in out.items()]

    def merge_sources(self, key_node: yaml.Node, value: yaml.Node, loc: Loc) -> list[yaml.MappingNode]:
        if isinstance(value, yaml.MappingNode):
            return [value]
        if isinstance(value, yaml.SequenceNode) and all(isinstance(v, yaml.MappingNode) for v in value.value):
            return list(value.value)
        raise _refused(
            self.path,
            key_node.start_mark,
            f"{key_path(loc)}: a merge key '<<' takes a mapping or a list of mappings (<<: *defaults, <<: [*a, *b])",
        )

    def key(self, node: yaml.Node, loc: Loc) -> str:
        key = self.scalar(node, loc) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            what = type(key).__name__ if isinstance(node, yaml.ScalarNode) else "a collection"
            raise _refused(
                self.path,
                node.start_mark,
                f"{key_path(loc)}: key {_short(node)} is read as {what}; keys must be text: quote it",
            )
        return str(key)


def _short(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        return "[...]"
    text: str = node.value
    return repr(text if len(text) <= 40 else text[:40] + "...")
