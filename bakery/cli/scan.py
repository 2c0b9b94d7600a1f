"""`bakery scan`: an image's SBOM against a vulnerability feed, or every channel head's (--heads)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from bakery.cli.common import FileOpt, JsonOpt, TerminalReporter, emit, handled
from bakery.cli.trust import TargetOpt, _trust
from bakery.errors import UsageError


def _scans(file: Path | None, feed: str | None, replace_older: bool) -> Any:
    from bakery.scan.service import Scans

    project, trust, provider_for = _trust(file, TerminalReporter())
    return Scans(project, trust, provider_for, feed=feed, replace_older=replace_older)


@handled
def scan(
    ref: str | None = typer.Argument(None, metavar="[IMAGE@VERSION]", help="The image to scan."),
    heads: bool = typer.Option(False, "--heads", help="Rescan every channel's head instead (the scheduled job)."),
    feed: str | None = typer.Option(
        None, "--feed", help="A Debian Security Tracker JSON export or OSV export (file or URL); else images.yaml's."
    ),
    channel: str | None = typer.Option(None, "--channel", help="Judge against this channel's policy."),
    replace_older: bool = typer.Option(
        False, "--replace-older", help="Store the scan even when the stored one was made with a newer feed."
    ),
    target: str | None = TargetOpt,
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Match an image's signed SBOM against a vulnerability feed, by source package and Debian
    version order; sign and store the result, bound to its provenance.

    The feed is only ever the one named (--feed, or scan: {feed:} in images.yaml). Fixed and
    not-yet-fixed findings are listed apart; each channel's scan policy it is the head of (or
    --channel's) judges them. Exit 0 when scanned, 1 when a policy is violated (or the SBOM,
    provenance or feed cannot be trusted or read, or holds no advisory for the image's release;
    with --heads: a head could not be scanned).
    A scan made with an older feed than the stored one's is refused (exit 1) unless
    --replace-older."""
    if heads == (ref is not None):
        raise UsageError("say IMAGE@VERSION or --heads (one of them)")
    if heads and (channel or target):
        raise UsageError("--heads scans every channel's head: --channel and --target do not go with it")
    scans = _scans(file, feed, replace_older)
    if heads:
        result = scans.rescan_heads()
        body = dataclasses.asdict(result)
        for each, head in zip(body["heads"], result.heads, strict=True):
            each["scan"] = _apart(head.scan)
        emit("scan-heads", body, as_json=as_json, text=lambda: _heads_text(result))
    else:
        found = scans.image(ref, target, channel)
        emit("scan", {**dataclasses.asdict(found), "scan": _apart(found.scan)}, as_json=as_json,
             text=lambda: _image_text(found))  # fmt: skip
        result = found
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _apart(scan: Any) -> dict[str, Any] | None:
    """A scan as JSON, its findings listed apart: `fixed` (upgrade) and `not_yet_fixed`."""
    if scan is None:
        return None
    body = dataclasses.asdict(scan)
    body.pop("findings")
    body["fixed"] = [dataclasses.asdict(f) for f in scan.fixed]
    body["not_yet_fixed"] = [dataclasses.asdict(f) for f in scan.not_yet_fixed]
    return body


def _image_text(found: Any) -> str:
    s = found.scan
    lines = [
        f"{s.ref} on {s.target}: {len(s.findings)} finding(s) ({len(s.fixed)} fixed upstream, "
        f"{len(s.not_yet_fixed)} not yet fixed)",
        f"  feed {s.feed} ({s.format}, {s.release}, {s.feed_digest}); stored at {found.key}",
    ]
    if found.replaced_newer:
        lines.append(f"  WARNING: it replaced a scan made with a newer feed (--replace-older): {found.replaced_newer}")
    lines += _findings(s)
    lines += [f"  skipped: {each}" for each in s.skipped]
    lines += _verdict_lines(found.verdicts) or ["no channel policy judged it (it heads no channel with scan:)"]
    return "\n".join(lines)


def _findings(s: Any) -> list[str]:
    lines = []
    for title, group in (("fixed (upgrade to the fixed version)", s.fixed), ("not yet fixed", s.not_yet_fixed)):
        if group:
            lines.append(f"{title}:")
            lines += [f"  {f.line()}" for f in group]
    return lines


def _verdict_lines(verdicts: Any) -> list[str]:
    lines = []
    for v in verdicts:
        state = "ok" if v.ok else "VIOLATED"
        lines.append(f"channel {v.channel} (max_severity {v.max_severity}): {state}")
        lines += [f"  over: {f.line()}" for f in v.over]
        lines += [f"  allowed until {a.until}: {a.finding.id} {a.finding.source} ({a.reason})" for a in v.allowed]
        lines += [f"  allowance no longer counts: {e}" for e in v.expired]
    return lines


def _heads_text(result: Any) -> str:
    lines = []
    for h in result.heads:
        where = f"{h.channel} {h.image} on {h.target}"
        if h.error:
            lines.append(f"{where}: {h.ref or 'no head'}: not scanned: {h.error}")
            continue
        s = h.scan
        counts = f"{len(s.findings)} finding(s), {len(s.not_yet_fixed)} not yet fixed"
        state = "" if h.verdict is None else "; policy ok" if h.verdict.ok else "; policy VIOLATED"
        lines.append(f"{where}: {h.ref}: {counts}{state}{'; REVOKED (revoke: true)' if h.revoked else ''}")
        if h.replaced_newer:
            lines.append(f"  WARNING: it replaced a scan made with a newer feed (--replace-older): {h.replaced_newer}")
        if h.verdict is not None:
            lines += [f"  over: {f.line()}" for f in h.verdict.over]
    return "\n".join(lines) or "no channel has a head to scan"


COMMANDS = (scan,)
