"""The report command: the estate on one static page."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from bakery.cli.common import FileOpt, JsonOpt, TerminalReporter, emit, err, handled, project_of, workspace_of


@handled
def report(
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the site into (made if missing)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write the estate as a static HTML page that opens from disk: lineage, versions, groups.

    The lineage graph (images and parents per target, channel heads, the groups running each
    version; revoked, untrusted (a stored scan or SBOM that cannot be trusted), vulnerable, untested
    and drifting marked), and per version its provenance,
    signatures, tests, approvals, SBOM, findings and where it runs; per group its rollout history.
    It reads only: nothing is signed or recorded. What cannot be read is named on the page."""
    from bakery.report.build import build
    from bakery.report.readers import registry_readers
    from bakery.report.render import write

    project = project_of(file)
    reporter = TerminalReporter(verbose=False)
    workspace = workspace_of(project)
    written = write(build(project, workspace, reporter, registry_readers(project, workspace, reporter)), out)
    for problem in written.problems:
        err(f"warning: {problem}")

    def text() -> str:
        c = written.counts
        return (
            f"wrote {written.index}: {c['versions']} versions ({c['revoked']} revoked, {c['untrusted']} with a scan or "
            f"SBOM that cannot be trusted, {c['vulnerable']} vulnerable, {c['untested']} untested), "
            f"{c['drifting']} groups drifting"
        )

    emit("report", dataclasses.asdict(written), as_json=as_json, text=text)


COMMANDS = (report,)
