"""The report renderer: the page model through Jinja2 templates (bakery/report/templates/,
autoescaped) into one self-contained index.html: inline CSS, no script, no request to anything
outside the file. The lineage graph is laid out by Graphviz (report/graph.py) and inlined."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from bakery.errors import UsageError
from bakery.report import graph
from bakery.report.model import Estate


@dataclass(frozen=True)
class Written:
    index: str  # the page to open
    files: tuple[str, ...]
    counts: dict[str, int]
    problems: tuple[str, ...]


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bakery.report", "templates"),
        autoescape=True,  # every value is text, registry and cloud text included: escaped, always
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page(estate: Estate, svg: str) -> str:
    """The page's HTML. `svg` is dot's output (trusted as markup: Graphviz escaped every label)."""
    return environment().get_template("index.html.j2").render(estate=estate, graph=Markup(svg))


def write(estate: Estate, out: Path) -> Written:
    """Write the site into `out` (made if missing): index.html, and the graph's lineage.dot and
    lineage.svg beside it. Raises UsageError when `out` is a file, BuildError when dot fails."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    svg = graph.layout(graph.dot_source(estate), out)
    index = out / "index.html"
    index.write_text(page(estate, svg), encoding="utf-8")
    files = tuple(str(out / name) for name in ("index.html", "lineage.svg", "lineage.dot"))
    return Written(str(index), files, estate.counts(), estate.problems)
