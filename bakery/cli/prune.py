"""`bakery prune`: what would go and why (a dry run), or with --yes its removal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bakery.cli.common import FileOpt, JsonOpt, TerminalReporter, emit, handled, project_of, workspace_of


@handled
def prune(
    image: str | None = typer.Argument(None, help="Only this image from images.yaml (default: every image)."),
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
    keep: int | None = typer.Option(None, "--keep", min=1, help="Keep the newest N versions (over images.yaml)."),
    older_than: int | None = typer.Option(
        None, "--older-than", min=0, help="Remove only versions older than DAYS (over images.yaml)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Remove what the dry run lists as going."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List every recorded version with why it would go or stay; with --yes remove those that go.

    Never removed: what a launch template (also through an SSM parameter), launch configuration,
    EC2 or Spot Fleet, instance, instance template or group (or its kept rollout history) uses,
    or may use when that cannot be read; a channel's head or a head in its kept history; a
    parent of a kept image; an image (or snapshot) shared with other accounts (unless
    prune.shared); the newest prune.keep; anything younger than prune.older_than_days. One
    --yes runs at a time; an interrupted prune is finished by the next `bakery prune --yes`.
    Attestations and the audit log keep every pruned version."""
    from bakery.prune.service import Pruner
    from bakery.runner import signal_guard

    project = project_of(file)
    reporter = TerminalReporter()
    with signal_guard():
        result = Pruner(project, workspace_of(project), reporter).run(
            image, target=target, keep=keep, older_than_days=older_than, act=yes
        )
    emit("prune", payload(result), as_json=as_json, text=lambda: text(result))


def payload(result: Any) -> dict[str, Any]:
    return {
        "dry_run": not result.acted,
        "verdicts": [
            {
                "image": v.image,
                "target": v.target,
                "action": v.action,
                "created": v.created,
                "reasons": list(v.reasons),
                "next": result.next_rungs.get((v.image, v.target)),  # a ladder's next rung (GCP dry run)
            }
            for v in result.verdicts
        ],
        "removed": [
            {
                "image": r.image,
                "target": r.target,
                "removed": list(r.removed),
                "notes": list(r.notes),
                "resumed": r.resumed,
                "rung": r.rung,  # where a deprecation ladder stopped (GCP); null once the image is gone
            }
            for r in result.removals
        ],
        "unfinished": list(result.unfinished),
        "notes": list(result.notes),  # abandoned prunes, images restored to ACTIVE (or that would be)
    }


def text(result: Any) -> str:
    if not result.verdicts and not result.removals and not result.notes:
        return "no recorded image versions"
    width = max([len(v.image) for v in result.verdicts] + [5])
    tw = max([len(v.target) for v in result.verdicts] + [6])
    rungs = {(r.image, r.target): r.rung.split()[0] for r in result.removals if r.rung}
    actions = []
    for v in result.verdicts:
        action = "keep" if v.action == "keep" else result.next_rungs.get((v.image, v.target), "remove")
        if result.acted and v.action == "remove":
            action = rungs.get((v.image, v.target), "removed")
        actions.append(action)
    aw = max([len(a) for a in actions] + [10])
    lines = [f"{'IMAGE':<{width}}  {'TARGET':<{tw}}  {'ACTION':<{aw}}  REASONS"]
    for v, action in zip(result.verdicts, actions, strict=True):
        lines.append(f"{v.image:<{width}}  {v.target:<{tw}}  {action:<{aw}}  {'; '.join(v.reasons)}")
    for r in result.removals:
        if r.rung is not None:
            lines.append(f"{r.image} on {r.target}: {r.rung}; a later prune takes the next step")
            continue
        head = "finished interrupted prune of" if r.resumed else "removed"
        lines.append(f"{head} {r.image} on {r.target}: {'; '.join(r.removed) or 'already gone'}")
        lines += [f"  {note}" for note in r.notes]
    lines += list(result.notes)
    for line in result.unfinished:
        lines.append(f"interrupted prune of {line}: `bakery prune --yes` finishes it")
    going = len(result.to_remove)
    if not result.acted:
        lines.append(f"dry run: {going} version(s) would be removed; --yes removes them")
    return "\n".join(lines)


COMMANDS = (prune,)
