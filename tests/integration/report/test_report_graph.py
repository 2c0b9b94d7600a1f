"""The lineage graph laid out by Graphviz's real `dot`: registry text in a label comes out as
escaped SVG text, every node links to its section, and nothing of dot's prolog is kept."""

from __future__ import annotations

from pathlib import Path

from bakery.report import graph
from tests.unit.report.test_model_graph_page import HOSTILE, estate, version


def test_dot_lays_out_the_graph_as_svg_with_hostile_text_escaped_and_links_to_sections(tmp_path: Path) -> None:
    bad = version(f"web@{HOSTILE}")
    svg = graph.layout(graph.dot_source(estate(version(), bad)), tmp_path)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "<!--" not in svg and "<?xml" not in svg
    assert 'xlink:href="#version-aws-web-1.0.0"' in svg
    assert f'xlink:href="#{bad.anchor}"' in svg
    assert svg.count('class="node"') == 2 and (tmp_path / "lineage.dot").exists()
