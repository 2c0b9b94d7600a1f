"""The report's pure parts: anchors made only of safe characters, DOT that quotes every label,
and a page that escapes every text and shows the SBOM and scan sections once they are plugged in."""

from __future__ import annotations

import re

from bakery.report import graph, model, render

HOSTILE = '1.0.0"]; evil [label="x"] <script>alert(1)</script>'


def version(ref: str = "web@1.0.0", **kw: object) -> model.Version:
    name, number = ref.split("@")
    base: dict[str, object] = dict(
        anchor=model.anchor("version", "aws", name, number),
        name=name,
        version=number,
        target="aws",
        created="2026-12-01T00:00:00Z",
        inputs_digest="sha256:ab",
        base="debian-12",
        parent=None,
        parent_anchor=None,
        locations=("eu-west-1:ami-1",),
        verified=True,
        checks=(model.Check("signature", True, "signed by ops"),),
        signed_by=("ops",),
        revoked="",
        provenance=model.Provenance("sha256:cd"),
        tests=model.Tests("passed", "3 tests"),
    )
    base.update(kw)
    return model.Version(**base)  # type: ignore[arg-type]


def estate(*versions: model.Version, groups: tuple[model.Group, ...] = ()) -> model.Estate:
    return model.Estate("images.yaml", "2026-12-06T00:00:00Z", ("aws",), versions, groups, ())


def test_anchors_keep_only_safe_characters_and_two_names_never_share_one() -> None:
    assert model.anchor("version", "aws", "web", "1.0.3") == "version-aws-web-1.0.3"
    hostile = model.anchor("version", "aws", "web", HOSTILE)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", hostile), hostile
    assert model.anchor("group", "a b") != model.anchor("group", "a/b")


def test_dot_quotes_every_label_so_text_cannot_add_nodes_or_attributes() -> None:
    source = graph.dot_source(estate(version(f"web@{HOSTILE}")))
    [line] = [line for line in source.splitlines() if "label=" in line and "web@" in line]
    assert 'label="web@1.0.0\\"]; evil [label=\\"x\\"] <script>alert(1)</script>"' in line
    assert "evil [" not in source.replace('\\"]; evil [label=\\"', "")


def test_the_graph_marks_revoked_and_untested_versions_and_drifting_groups() -> None:
    bad = version("web@1.0.1", revoked="revoked since 2026-12-01: CVE-1", tests=model.Tests("none", "no result"))
    group = model.Group(
        model.anchor("group", "web-eu"), "web-eu", "web", "aws", "aws", "web@1.0.1", bad.anchor,
        (model.Running("web@1.0.1", 2, bad.anchor),), ("runs revoked image web@1.0.1",),
    )  # fmt: skip
    source = graph.dot_source(estate(version(), bad, groups=(group,)))
    assert 'label="web@1.0.1 (REVOKED, untested)"' in source
    assert f'fillcolor="{graph.REVOKED[0]}"' in source
    assert 'label="group web-eu (DRIFT)"' in source
    assert f'"group-web-eu" -> "{bad.anchor}" [label="2 running"];' in source


def test_the_page_escapes_registry_text_and_makes_no_request_of_its_own() -> None:
    v = version(
        revoked=f"revoked: {HOSTILE}", approvals=(model.Approval("stable", "alice", "<b>me</b>", "t", HOSTILE),)
    )
    html = render.page(estate(v), "<svg></svg>")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>me</b>" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html and "<script" not in html
    assert "no SBOM recorded" in html and "not scanned" in html


def test_sbom_and_findings_show_once_a_reader_hands_them_in_and_mark_the_version_vulnerable() -> None:
    findings = model.Findings(
        "debian-security.json", "2026-12-05", (model.Finding("CVE-2026-7", "openssl", "3.0.1", "high"),), True
    )
    v = version(sbom=model.Sbom(212, "Debian 12", (model.Package("openssl", "3.0.1"),)), findings=findings)
    html = render.page(estate(v), "<svg></svg>")
    assert "212 packages on Debian 12" in html and "CVE-2026-7" in html and "not yet fixed" in html
    assert "no SBOM recorded" not in html and "not scanned" not in html
    assert v.vulnerable and estate(v).counts()["vulnerable"] == 1
    assert 'label="web@1.0.0 (VULNERABLE)"' in graph.dot_source(estate(v))


def test_a_stored_scan_or_sbom_that_cannot_be_trusted_is_shown_so_and_why_not_as_none_and_marked() -> None:
    scan = model.Untrusted(f"scan/aws/web/1.0.0.json does not verify: {HOSTILE}")
    v = version(
        findings=scan, sbom=model.Untrusted("sbom/aws/web/1.0.0.json: its subject is not this image's provenance")
    )
    html = render.page(estate(v), "<svg></svg>")
    assert "not scanned" not in html and "no SBOM recorded" not in html
    assert (
        '<p class="untrusted">a scan is stored, but it cannot be trusted: scan/aws/web/1.0.0.json does not verify: '
        "1.0.0&#34;]; evil [label=&#34;x&#34;] &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    ) in html
    assert (
        '<p class="untrusted">an SBOM is stored, but it cannot be trusted: sbom/aws/web/1.0.0.json: its subject is '
        "not this image&#39;s provenance</p>"
    ) in html
    assert '<span class="badge untrusted">SCAN UNTRUSTED</span>' in html and 'class="version untrusted"' in html
    assert (v.untrusted, v.vulnerable) == (True, False) and estate(v).counts()["untrusted"] == 1
    assert "1 with a scan or SBOM that cannot be trusted" in html
    [node] = [line for line in graph.dot_source(estate(v)).splitlines() if 'label="web@1.0.0' in line]
    assert 'label="web@1.0.0 (SCAN UNTRUSTED, SBOM UNTRUSTED)"' in node
    assert f'fillcolor="{graph.UNTRUSTED[0]}"' in node and 'peripheries="2"' in node
    fine = [line for line in graph.dot_source(estate(version())).splitlines() if 'label="web@1.0.0' in line]
    assert f'fillcolor="{graph.FINE[0]}"' in fine[0] and 'peripheries="1"' in fine[0]


def test_a_finding_whose_severity_could_not_be_read_says_why_on_the_page() -> None:
    why = 'its CVSS_V3 vector could not be read: Unknown value "Q" in field "AV:Q"'
    finding = model.Finding("CVE-2026-8", "zlib", "1.2", "unknown", unreadable=why)
    html = render.page(estate(version(findings=model.Findings("osv.json", "2026-12-05", (finding,)))), "<svg></svg>")
    assert '<td>unknown <span class="problem">(its CVSS_V3 vector could not be read: Unknown value &#34;Q&#34;' in html
