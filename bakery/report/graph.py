"""The lineage graph: the estate as Graphviz DOT (pure), laid out by Graphviz's `dot` (run through
bakery/runner.py) into SVG that the page inlines. Graphviz does every bit of the geometry.

Node names are the model's sanitized anchors; every label is quoted here, and `dot` escapes it
for SVG, so text read from a registry or a cloud reaches the page as text, never as markup."""

from __future__ import annotations

import re
from pathlib import Path

from bakery import runner
from bakery.report.model import Estate, Group, Head, Version

# (fill, border) per state, the first that applies: the same colours as the page's legend
REVOKED = ("#f8d7da", "#b02a37")
UNTRUSTED = ("#ede7f6", "#5e35b1")  # a stored scan or SBOM that cannot be trusted: status exits 1 for it
VULNERABLE = ("#ffe0b2", "#e65100")
UNTESTED = ("#eeeeee", "#757575")
FINE = ("#e8f5e9", "#2e7d32")
DRIFT = ("#fff3cd", "#997404")


def quoted(text: str) -> str:
    """`text` as a DOT double-quoted string that shows exactly that text (no escapes, one line)."""
    return '"' + " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attrs(**values: str) -> str:
    return "[" + " ".join(f"{k}={quoted(v)}" for k, v in values.items()) + "]"


def _marks(v: Version) -> tuple[list[str], tuple[str, str], str]:
    words = []
    if v.revoked:
        words.append("REVOKED")
    if v.scan_untrusted:
        words.append("SCAN UNTRUSTED")
    if v.sbom_untrusted:
        words.append("SBOM UNTRUSTED")
    if v.vulnerable:
        words.append("VULNERABLE")
    if v.untested:
        words.append("untested")
    # What status treats as worse comes first: a record it cannot vouch for (exit 1) before findings (exit 3).
    colours = (
        REVOKED if v.revoked
        else UNTRUSTED if v.untrusted
        else VULNERABLE if v.vulnerable
        else UNTESTED if v.untested
        else FINE
    )  # fmt: skip
    style = "rounded,filled" + (",dashed" if v.untested and not (v.revoked or v.untrusted) else "")
    style += ",bold" if v.revoked or v.untrusted else ""
    return words, colours, style


def dot_source(estate: Estate) -> str:
    """The estate's lineage as DOT: per target a cluster of versions (parent -> child), the
    channels' heads and the groups pointing at the versions they run; each node links to its
    section of the page."""
    lines = [
        "digraph estate {",
        '  graph [rankdir=LR fontname="sans-serif" fontsize=11 nodesep=0.25 ranksep=0.45 bgcolor="transparent"];',
        '  node [fontname="sans-serif" fontsize=10 shape=box style="rounded,filled" penwidth=1.4];',
        '  edge [fontname="sans-serif" fontsize=9 color="#555555"];',
    ]
    ids = {(v.target, v.ref): v.anchor for v in estate.versions}
    for n, target in enumerate(estate.targets):
        inside = [_version(v) for v in estate.versions if v.target == target]
        inside += [line for h in estate.heads if h.target == target for line in _head(h)]
        inside += [line for g in estate.groups if g.target == target for line in _group(g, ids)]
        if inside:  # a target with nothing on it is left out
            lines.append(f"  subgraph cluster_{n} {{")
            lines.append(f"    graph {_attrs(label='target ' + target, style='rounded', color='#9e9e9e')};")
            lines += ["    " + line for line in inside]
            lines.append("  }")
    lines += [f"  {quoted(v.parent_anchor)} -> {quoted(v.anchor)};" for v in estate.versions if v.parent_anchor]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _version(v: Version) -> str:
    words, (fill, border), style = _marks(v)
    label = v.ref + (" (" + ", ".join(words) + ")" if words else "")
    attrs = _attrs(
        label=label,
        URL="#" + v.anchor,
        tooltip=f"{v.ref} on {v.target}",
        id="node-" + v.anchor,
        fillcolor=fill,
        color=border,
        style=style,
        peripheries="2" if v.untrusted and not v.revoked else "1",  # told apart without its colour
    )
    return f"{quoted(v.anchor)} {attrs};"


def _head(h: Head) -> list[str]:
    if h.anchor is None:
        return []
    node = "head-" + h.anchor + "-" + re.sub(r"[^A-Za-z0-9_.-]", "-", h.channel)
    shape = _attrs(label=f"channel {h.channel}", shape="cds", fillcolor="#e3f2fd", color="#1565c0", style="filled")
    return [
        f"{quoted(node)} {shape};",
        f"{quoted(node)} -> {quoted(h.anchor)} {_attrs(style='dashed', color='#1565c0')};",
    ]


def _group(g: Group, ids: dict[tuple[str, str], str]) -> list[str]:
    fill, border = DRIFT if g.drifting else ("#ffffff", "#424242")
    label = f"group {g.name}" + (" (DRIFT)" if g.drifting else "")
    attrs = _attrs(
        label=label, shape="component", URL="#" + g.anchor, id="node-" + g.anchor, fillcolor=fill, color=border,
        style="filled",
    )  # fmt: skip
    lines = [f"{quoted(g.anchor)} {attrs};"]
    for r in g.running:
        anchor = ids.get((g.target, r.image))
        if anchor is not None:
            lines.append(f"{quoted(g.anchor)} -> {quoted(anchor)} {_attrs(label=f'{r.instances} running')};")
    return lines


def layout(source: str, workdir: Path) -> str:
    """`source` laid out by `dot -Tsvg`, as an <svg> element to inline (prolog, doctype and
    comments dropped). Writes lineage.dot and lineage.svg into `workdir`. Raises BuildError when
    dot is missing or fails."""
    dot_file, svg_file = workdir / "lineage.dot", workdir / "lineage.svg"
    dot_file.write_text(source, encoding="utf-8")
    runner.run(["dot", "-Tsvg", "-o", str(svg_file), str(dot_file)], what="dot (the lineage graph's layout)")
    svg = svg_file.read_text(encoding="utf-8")
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else ""
