"""The channel commands: promote (and promote --rollback), approve, channels."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from bakery.cli.common import FileOpt, JsonOpt, TerminalReporter, emit, handled, project_of, workspace_of
from bakery.errors import UsageError

TargetOpt = typer.Option(None, "--target", "-t", help="Target name (default: the image's only target).")


def _promoter(file: Path | None, reporter: Any, *, creates_key: bool = True) -> Any:
    from bakery.promote.service import Promoter
    from bakery.providers.base import get_provider
    from bakery.trust.context import TrustContext

    project = project_of(file)
    workspace = workspace_of(project)
    targets = project.config.targets

    def provider_for(target: str) -> Any:
        return get_provider(targets[target].kind, workspace, reporter, None, targets)

    return Promoter(project, TrustContext(project, workspace, reporter, creates_key=creates_key), provider_for)


def _gate_lines(gates: Any) -> list[str]:
    lines = []
    for g in gates:
        mark = "ok  " if g.ok else ("OVERRIDDEN" if g.overridden else "FAIL")
        why = f" (override: {g.overridden})" if g.overridden else ""
        lines.append(f"  {mark} {g.name}: {g.saw}{why}")
    return lines


@handled
def promote(
    image: str = typer.Argument(..., help="IMAGE@VERSION to promote; with --rollback, the IMAGE."),
    to: str | None = typer.Option(None, "--to", help="The channel to promote it to."),
    rollback: str | None = typer.Option(
        None, "--rollback", help="CHANNEL: move its head back to the previous head that is still good."
    ),
    target: str | None = TargetOpt,
    override_gate: list[str] = typer.Option(
        [], "--override-gate", help="Let this failed gate through (with --reason; loud and recorded). Repeatable."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --override-gate; recorded)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Move a channel's head to IMAGE@VERSION once every gate of the channel passes.

    A refusal names every failed gate with what it saw (exit 1). `promote IMAGE --rollback CHANNEL`
    moves the head back to the previous head that is not revoked."""
    if (to is None) == (rollback is None):
        raise UsageError("say either --to CHANNEL (promote) or --rollback CHANNEL (move the head back)")
    if override_gate and not (reason or "").strip():
        raise UsageError("--override-gate needs --reason TEXT: the override and its reason are recorded")
    if reason is not None and to is not None and not override_gate:
        raise UsageError(
            "--reason goes with --override-gate NAME (or with --rollback): a promotion that passes its gates "
            "needs no reason"
        )
    if rollback is not None and "@" in image:
        raise UsageError(
            f"--rollback CHANNEL IMAGE takes an image name without a version: `bakery promote --rollback {rollback} "
            f"{image.split('@', 1)[0]}` moves {rollback}'s head back to the previous head that is still good"
        )
    reporter = TerminalReporter()
    promoter = _promoter(file, reporter)
    if rollback is not None:
        done = promoter.rollback(rollback, image, target=target, reason=reason or "")
    else:
        assert to is not None
        done = promoter.promote(image, to, target=target, overrides=dict.fromkeys(override_gate, reason or ""))

    def text() -> str:
        verb = "promoted" if done.action == "promote" else "rolled back"
        head = f"{done.image}@{done.version}"
        before = f"{done.image}@{done.from_}" if done.from_ else "none"
        lines = [f"{verb}: {head} is the head of {done.channel} on {done.target} (was {before}; move {done.seq})"]
        return "\n".join(lines + _gate_lines(done.gates))

    emit("promote", _from(dataclasses.asdict(done)), as_json=as_json, text=text)


@handled
def approve(
    image: str = typer.Argument(..., help="IMAGE@VERSION to approve."),
    channel: str = typer.Option(..., "--for", help="The channel it is approved for."),
    target: str | None = TargetOpt,
    comment: str = typer.Option("", "--comment", help="What you checked (kept in the signed approval)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Sign an approval of IMAGE@VERSION for a channel with this machine's key (never the key that built it)."""
    promoter = _promoter(file, TerminalReporter())
    approval = promoter.approve(image, channel, target=target, comment=comment)
    emit(
        "approve",
        {"image": image, "channel": channel, **dataclasses.asdict(approval)},
        as_json=as_json,
        text=lambda: f"approved {image} for {channel} with {approval.key} ({approval.keyid[:16]}…)",
    )


@handled
def channels(
    channel: str | None = typer.Argument(None, help="One channel (default: all)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Each channel's head per image and target: who moved it, when, under which policy, and its history."""
    promoter = _promoter(file, TerminalReporter(), creates_key=False)
    views = promoter.views(channel)
    shown = [_from(dataclasses.asdict(v)) for v in views]
    emit("channels", {"channels": shown}, as_json=as_json, text=lambda: _text(views))


def _from(value: Any) -> Any:
    """`value` with the key "from_" (a Python name) said "from", as the signed statements say it."""
    if isinstance(value, dict):
        return {("from" if k == "from_" else k): _from(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_from(v) for v in value]
    return value


def _text(views: list[Any]) -> str:
    if not views:
        return "no promotions yet (bakery promote IMAGE@VERSION --to CHANNEL)"
    lines = []
    for v in views:
        head = f"{v.image}@{v.head}" if v.head else "none"
        lines.append(f"{v.channel} / {v.image} on {v.target}: head {head}")
        if v.skipped:
            lines.append(f"  fell back past: {'; '.join(v.skipped)}")
        for m in reversed(v.moves):
            to = f"{v.image}@{m.version}" if m.version else "none"
            why = f" ({m.reason})" if m.reason else ""
            lines.append(f"  {m.seq:>3} {m.time} {m.action:<8} {to} by {m.by}{why} [{m.policy}]")
    return "\n".join(lines)


def after_build(project: Any, reporter: Any, baked: list[tuple[str, str]]) -> None:
    """The promote-after-build hook: each new bake (IMAGE@VERSION, target), once recorded (and
    tested), is promoted to every channel with `auto: true` whose gates it passes; what happened
    is a note (a refused gate does not fail the bake). Nothing is read when no channel is auto."""
    if not baked or not any(c.auto for c in project.config.channels.values()):
        return
    from bakery.promote.service import Promoter
    from bakery.providers.base import get_provider
    from bakery.trust.context import TrustContext

    workspace = workspace_of(project)
    targets = project.config.targets

    def provider_for(target: str) -> Any:
        return get_provider(targets[target].kind, workspace, reporter, None, targets)

    promoter = Promoter(project, TrustContext(project, workspace, reporter), provider_for)
    for ref, target in baked:
        for line in promoter.after_build(ref, target):
            reporter.note(line)


COMMANDS = (promote, approve, channels)
