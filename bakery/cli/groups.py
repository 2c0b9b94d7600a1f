"""The group commands: rollout, rollback, status, history, down."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import typer

from bakery.cli.common import FileOpt, JsonOpt, TerminalReporter, emit, err, handled, project_of, workspace_of
from bakery.cli.rollview import RolloutReporter
from bakery.errors import BakeryError, UsageError

YesOpt = typer.Option(False, "--yes", "-y", help="Do not ask before acting (scheduled jobs).")
AllowUnverifiedOpt = typer.Option(
    False,
    "--allow-unverified",
    help="Deploy an image that does not verify (never a revoked one), with --reason; loudly, and on the record.",
)


def jsonable(value: Any) -> Any:
    """A result as JSON data: dataclasses as objects, and `from_` (a Python name) as `from`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {("from" if k == "from_" else k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _service(file: Path | None, reporter: Any, *, creates_key: bool = True) -> Any:
    from bakery.rollout.service import Rollouts
    from bakery.trust.context import TrustContext

    project = project_of(file)
    workspace = workspace_of(project)
    trust = TrustContext(project, workspace, reporter, creates_key=creates_key)
    return Rollouts(project, workspace, reporter, trust=trust)


def _gates(rollout: Any) -> str:
    health = rollout.spec.health
    parts = [
        f"GET {health.path} on port {health.port}: {health.healthy_threshold} consecutive 200s within "
        f"{health.timeout_seconds}s, from {health.grace_seconds}s after start"
    ]
    settings = rollout.spec.settings()
    return "; ".join(parts + (settings.gates() if settings is not None else []))


def plan_text(rollout: Any, resumed: bool) -> str:
    from bakery.groups.base import REPLACES
    from bakery.groups.strategy import describe
    from bakery.rollout.replace import BECAUSE, KIND

    previous = rollout.previous.describe() if rollout.previous else "nothing (the group is empty or down)"
    head = "resume" if resumed else rollout.kind
    replaces = rollout.options.get(REPLACES) if not resumed else None
    lines = [
        f"{head} {rollout.id} of {rollout.group} ({rollout.target}, {rollout.plan.size} instances): "
        f"{rollout.plan.strategy}",
        *(
            [
                f"  replaces: the unfinished {rollout.options.get(KIND, 'rollback')} {replaces} "
                f"({rollout.options.get(BECAUSE)}), closed in its "
                "history as abandoned"
            ]
            if replaces
            else []
        ),
        f"  now:      {previous}",
        f"  new:      {rollout.to.describe()}",
        *(f"  {line}" for line in describe(rollout.plan)),
        f"  gates:    {_gates(rollout)}",
        "  rollback: "
        + (f"automatic on a failed gate, to {previous}" if rollout.spec.rollback else "off (rollback: false)"),
    ]
    return "\n".join(lines)


def _confirm(as_json: bool, yes: bool, reporter: RolloutReporter) -> Any:
    """The question before a rollout or rollback moves anything: asked on a terminal (plainly:
    nothing live is drawn until it is answered), taken as yes with --yes, refused elsewhere."""

    def ask(rollout: Any) -> bool:
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "not on a terminal, and --yes was not given: nothing was changed",
                    hint="scheduled jobs pass --yes; --dry-run shows the plan",
                )
            question = f"{rollout.kind} {rollout.group} to {rollout.to.describe()}?"
            if not typer.confirm(question, err=True):
                return False
        reporter.go_live()
        return True

    return ask


def _result_text(result: Any) -> str:
    verb = {"succeeded": "now runs", "rolled-back": "was rolled back to"}.get(result.result, result.result)
    shown = result.to.describe() if result.result == "succeeded" else (result.from_ and result.from_.describe())
    return f"{result.operation} {result.id} of {result.group}: {verb} {shown} in {result.seconds:.0f}s"


@handled
def rollout(
    group: str | None = typer.Argument(None, help="Group name from images.yaml."),
    image: str | None = typer.Option(
        None, "--image", help="NAME@VERSION (default: its channel's head, or the newest complete version)."
    ),
    behind: bool = typer.Option(
        False, "--behind", help="Roll every group behind its channel, one at a time; stop at the first failure."
    ),
    strategy: str | None = typer.Option(
        None, "--strategy", help="rolling, canary or blue-green (default: the group's)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
    allow_unverified: bool = AllowUnverifiedOpt,
    reason: str | None = typer.Option(
        None, "--reason", help="Why (needed with --allow-unverified; kept in the audit log)."
    ),
    yes: bool = YesOpt,
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Move GROUP onto an image: plan, confirm, then waves gated on health, rolled back on failure.

    A group that follows a channel moves to the channel's head. An unfinished rollout of GROUP
    (interrupted, or its process killed) is resumed. --behind rolls every group behind its channel."""
    if strategy is not None and strategy not in ("rolling", "canary", "blue-green"):
        raise UsageError(f"--strategy takes rolling, canary or blue-green, got {strategy!r}")
    if behind:
        if group is not None or image is not None or dry_run or allow_unverified:
            raise UsageError(
                "--behind takes no GROUP, --image, --dry-run nor --allow-unverified: it rolls each "
                "group behind its channel onto the channel's head"
            )
        _roll_behind(file, strategy, yes=yes, as_json=as_json)
        return
    if group is None:
        raise UsageError("say which group to roll out (or --behind: every group behind its channel)")
    reporter = RolloutReporter()
    service = _service(file, reporter)
    planned = service.prepare(
        group,
        image=image,
        strategy_type=strategy,
        allow_unverified=allow_unverified,
        reason=reason,
        dry_run=dry_run,
    )
    resumed = service.resumes(planned)
    # a rollout replacing a stuck rollback (rollout.replace) runs even onto what the group runs
    if service.unfinished(group) is None and service.in_sync(planned):
        emit(
            "rollout",
            {"group": group, "result": "up-to-date", "to": jsonable(planned.to)},
            as_json=as_json,
            text=lambda: f"up to date: every instance of {group} runs {planned.to.describe()}; nothing to do",
        )
        return
    err(plan_text(planned, resumed))
    if dry_run:
        payload = {
            "rollout": planned.id,
            "group": group,
            "resume": resumed,
            "to": jsonable(planned.to),
            "previous": jsonable(planned.previous),
            "plan": jsonable(planned.plan),
        }
        emit("rollout-plan", payload, as_json=as_json, text=lambda: "dry run: nothing changed")
        return
    try:
        result = service.run(planned, confirm=_confirm(as_json, yes, reporter))
    finally:
        reporter.close()
    emit("rollout", jsonable(result), as_json=as_json, text=lambda: _result_text(result))


def _roll_behind(file: Path | None, strategy: str | None, *, yes: bool, as_json: bool) -> None:
    """Each group behind its channel, one at a time, in name order; the first failure stops it
    (its error names the group; the groups done before it stay done), and so does a group whose
    unfinished rollout goes elsewhere than its channel's head. A group still behind at the end (its
    channel has no head left) fails the command too (exit 1), as `bakery status` exits 3 for it."""
    reporter = RolloutReporter()
    service = _service(file, reporter)
    found = service.behind()
    names = found.groups
    done: list[Any] = []
    for name in names:
        left = ", ".join(names[len(done) + 1 :]) or "none"
        if name in found.stopped:
            raise BakeryError(
                f"{name}: {found.stopped[name]} (stopped there: groups not rolled: {left})",
                hint="--behind resumes only a rollout onto the channel's head",
            )
        err(f"==> {name}: behind its channel ({len(done) + 1} of {len(names)})")
        planned = service.prepare(name, strategy_type=strategy)
        err(plan_text(planned, service.resumes(planned)))
        try:
            result = service.run(planned, confirm=_confirm(as_json, yes, reporter))
        except BakeryError as exc:
            exc.message = f"{name}: {exc.message} (stopped there: groups not rolled: {left})"
            raise
        finally:
            reporter.close()
        done.append(result)
        err(_result_text(result))
    still = service.behind() if done else found
    behind = {**dict.fromkeys(still.roll, "still behind its channel"), **still.stopped, **still.headless}
    if behind:
        shown = "; ".join(f"{name}: {why}" for name, why in sorted(behind.items()))
        rolled = f" (rolled: {', '.join(r.group for r in done)})" if done else ""
        raise BakeryError(f"groups still behind their channel{rolled}: {shown}", hint="`bakery status` shows them")
    emit(
        "rollout-behind",
        {"groups": names, "results": jsonable(done)},
        as_json=as_json,
        text=lambda: "\n".join(_result_text(r) for r in done) or "no group is behind its channel",
    )


@handled
def rollback(
    group: str = typer.Argument(..., help="Group name from images.yaml."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the group's history)."),
    allow_unverified: bool = AllowUnverifiedOpt,
    allow_off_channel: bool = typer.Option(
        False,
        "--allow-off-channel",
        help="Roll a group that follows a channel back onto an image that was never its channel's head "
        "(recorded in the audit log, as `rollout --image` is).",
    ),
    yes: bool = YesOpt,
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Return GROUP to the image it ran before its last rollout (also after that rollout completed)."""
    reporter = RolloutReporter()
    service = _service(file, reporter)
    planned, undo = service.prepare_rollback(
        group, reason=reason, allow_unverified=allow_unverified, allow_off_channel=allow_off_channel
    )
    if undo:
        err(
            f"undo the unfinished rollout {planned.id} of {group}: back to "
            f"{planned.previous.describe() if planned.previous else 'nothing'}"
        )
    else:
        err(plan_text(planned, False))
    try:
        result = service.rollback(planned, undo=undo, confirm=_confirm(as_json, yes, reporter))
    finally:
        reporter.close()
    emit("rollback", jsonable(result), as_json=as_json, text=lambda: _result_text(result))


@handled
def status(
    groups: list[str] = typer.Argument(None, help="Groups (default: all)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Per group: intended image, instances per version, rollout under way, health, drift.

    Exit 0 in sync, 3 on drift, 1 when a group, the revocations or a followed channel's history
    cannot be read or trusted."""
    from bakery.rollout.status import status as compute

    report = compute(_service(file, TerminalReporter(), creates_key=False), list(groups or []))
    emit(
        "status",
        {"groups": jsonable(report.groups), "exit_code": report.exit_code},
        as_json=as_json,
        text=lambda: _status_text(report),
    )
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _status_text(report: Any) -> str:
    lines = []
    for g in report.groups:
        if g.error:
            lines.append(f"{g.group} ({g.kind} on {g.target}): cannot be read: {g.error}")
            continue
        state = "DRIFT" if g.drift else "in sync"
        intended = g.intended.describe() if g.intended else "nothing"
        lines.append(f"{g.group} ({g.kind} on {g.target}): {state}")
        lines.append(f"  intended:  {intended}" + (f" (newest: {g.newest})" if g.newest else ""))
        if g.channel and g.channel_error:
            lines.append(f"  channel:   {g.channel}: CANNOT BE TRUSTED (its head is unknown; exit 1)")
        elif g.channel:
            head = g.channel_head or "no head (nothing promoted)"
            moved = f"; fell back past {'; '.join(g.fell_back)}" if g.fell_back else ""
            lines.append(f"  channel:   {g.channel}: head {head}{' (BEHIND)' if g.behind else ''}{moved}")
        runs = ", ".join(f"{n} x {image}" for image, n in sorted(g.counts.items())) or "no instances"
        lines.append(f"  instances: {runs}; healthy {g.healthy}, unhealthy {g.unhealthy}")
        if g.kept:
            kept = ", ".join(sorted({i.image or i.image_id for i in g.kept}))
            lines.append(f"  kept:      {len(g.kept)} out of rotation on {kept} (an immediate rollback)")
        if g.active:
            pct = f" {g.active.percent}%" if g.active.percent is not None else ""
            lines.append(
                f"  rollout:   {g.active.id} to {g.active.to} at {g.active.step}{pct}, "
                f"since {g.active.started} by {g.active.who} on {g.active.where}"
            )
        lines += [f"  drift:     {r}" for r in g.reasons]
    return "\n".join(lines)


@handled
def history(
    group: str = typer.Argument(..., help="Group name from images.yaml."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Every rollout and rollback of GROUP: when, who, from -> to, strategy, result, reason."""
    service = _service(file, TerminalReporter())
    spec = service.group(group)
    entries = service.driver(spec).history(group, spec, service.target_spec(spec))
    emit(
        "history",
        {"group": group, "entries": jsonable(entries)},
        as_json=as_json,
        text=lambda: "\n".join(_history_line(e) for e in entries) or f"{group}: no rollouts yet",
    )


def _history_line(e: Any) -> str:
    src = e.from_.describe() if e.from_ else "nothing"
    why = f" ({e.reason})" if e.reason else ""
    return f"{e.started}  {e.id}  {e.kind:<8} {src} -> {e.to.describe()}  {e.strategy}  {e.result}{why}  by {e.who}"


@handled
def down(
    group: str = typer.Argument(..., help="A local group from images.yaml."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Stop a local group: its VMs and HAProxy; no process is left behind."""
    from bakery.core.identity import who
    from bakery.rollout.locks import held
    from bakery.runner import signal_guard

    service = _service(file, TerminalReporter())
    spec = service.group(group)
    # Never under a running rollout's feet: the group's lock is taken (or the holder named).
    with signal_guard(), held(service.ws.locks / f"group-{group}.lock", group, "down", who()):
        stopped = service.driver(spec).down(group, spec, service.target_spec(spec))
    unfinished = service.unfinished(group)
    if unfinished is not None:  # nothing is left to resume: the next rollout brings the group up afresh
        unfinished.mark(status="failed", error="abandoned: the group was stopped (bakery down)")
    emit(
        "down",
        {"group": group, "stopped": stopped},
        as_json=as_json,
        text=lambda: (
            "\n".join([f"stopped {group}:"] + [f"  {s}" for s in stopped]) if stopped else f"{group} was not running"
        ),
    )


COMMANDS = (rollout, rollback, status, history, down)
