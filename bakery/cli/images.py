"""The image commands: build, plan, images, show, boot (validate, schema and render: cli/project.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from bakery.cli import channels
from bakery.cli.common import (
    FileOpt,
    JsonOpt,
    TerminalReporter,
    emit,
    err,
    handled,
    project_of,
    workspace_of,
)
from bakery.errors import EXIT_FAILED, UsageError


@handled
def build(
    image: str | None = typer.Argument(None, help="Image name from images.yaml (or --stale)."),
    target: str | None = typer.Option(None, "--target", "-t", help="Target name from images.yaml."),
    stale: bool = typer.Option(False, "--stale", help="Bake every image the plan finds stale or new, parents first."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="With --stale: bakes to run at once."),
    force: bool = typer.Option(False, "--force", help="Bake even if an image with the same inputs exists."),
    allow_revoked_parent: bool = typer.Option(
        False, "--allow-revoked-parent", help="Bake on a parent that is revoked, with --reason; on the record."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --allow-revoked-parent)."),
    no_test: bool = typer.Option(False, "--no-test", help="Do not boot the new image to run its tests."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show phases only, not Packer/Ansible output."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Bake IMAGE on TARGET: render, packer build with Ansible, record it with its provenance, test it.

    An image whose inputs digest is already in the catalog is not baked again (--force does).
    The new image's tests (images.yaml `tests:`) run after the bake: a failed test fails the
    build (exit 1), and the image stays recorded with its signed FAILED result."""
    from bakery.cli.imagetests import build_payload, build_text, refuse_failed
    from bakery.imagetest.bake import build_and_test

    project = project_of(file)
    reporter = TerminalReporter(verbose=not quiet)
    if stale:
        _build_stale(
            project,
            reporter,
            images=[image] if image else None,
            target=target,
            jobs=jobs,
            as_json=as_json,
            test=not no_test,
        )
        return
    if image is None or target is None:
        raise UsageError("name an image and a target (bakery build IMAGE --target T), or use --stale")
    override = (reason or "") if allow_revoked_parent else None
    tested = build_and_test(
        project,
        workspace_of(project),
        reporter,
        image,
        target,
        force=force,
        allow_revoked_parent=override,
        test=not no_test,
    )
    emit("build", build_payload(tested), as_json=as_json, text=lambda: build_text(tested))
    refuse_failed(tested)
    rec = tested.build.record  # tested (or nothing to test): a channel with auto: true may take it
    channels.after_build(project, reporter, [] if tested.build.skipped else [(rec.ref, rec.target)])


def _build_stale(
    project: Any,
    reporter: TerminalReporter,
    *,
    images: list[str] | None,
    target: str | None,
    jobs: int,
    as_json: bool,
    test: bool,
) -> None:
    from bakery.bake.plan import Planner
    from bakery.bake.rebuild import BUILT, rebuild
    from bakery.imagetest.bake import tests_after_each
    from bakery.runner import signal_guard

    ws = workspace_of(project)
    with signal_guard():
        plan = Planner(project, ws, reporter).plan(images, target)
    if not plan.stale:
        reporter.note("nothing to bake: every image is up to date")
    result = rebuild(project, ws, reporter, plan, jobs=jobs, after=tests_after_each(project, ws) if test else None)
    baked = [(f"{o.image}@{o.version}", o.target) for o in result.outcomes if o.status == BUILT and o.version]
    channels.after_build(project, reporter, baked)
    emit(
        "build-stale",
        {"ok": result.ok, "outcomes": [dataclasses.asdict(o) for o in result.outcomes]},
        as_json=as_json,
        text=lambda: "\n".join(
            ["summary:"] + [f"  {o.status:<10} {o.image} on {o.target}: {o.detail}" for o in result.outcomes]
        ),
    )
    if result.interrupted:
        err(f"error: interrupted; {sum(o.status == 'not-built' for o in result.outcomes)} bake(s) not started")
        raise typer.Exit(result.interrupted)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@handled
def plan(
    images_: list[str] | None = typer.Argument(None, metavar="[IMAGE]...", help="Only these images (and children)."),
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show each image x target as up to date, stale (with the reason) or new, parents first.

    `--json` carries a `matrix` of the stale ones, for a CI system to fan out one job per bake."""
    from bakery.bake.plan import Planner

    project = project_of(file)
    result = Planner(project, workspace_of(project), TerminalReporter()).plan(images_ or None, target, partial=True)
    payload = {
        "items": [{**dataclasses.asdict(i), "key": i.key} for i in result.items],
        "matrix": [{"image": i.image, "target": i.target, "depends_on": i.depends_on} for i in result.stale],
        "waves": [[{"image": i.image, "target": i.target} for i in wave] for wave in result.waves()],
        "stale": len(result.stale),
        "errors": result.unreadable,
    }
    emit("plan", payload, as_json=as_json, text=lambda: _plan_text(result))
    for name, why in result.unreadable.items():
        err(f"error: target {name} could not be read: {why}")
    if result.unreadable:
        raise typer.Exit(EXIT_FAILED)


def _plan_text(result: Any) -> str:
    unread = f" ({', '.join(sorted(result.unreadable))} not read)" if result.unreadable else ""
    if not result.items:
        return f"nothing planned{unread}" if unread else "no image bakes on the chosen target(s)"
    lines = []
    for item in result.items:
        head = f"{item.status:<11} {item.image} on {item.target}" + (f" (now {item.current})" if item.current else "")
        lines.append(head)
        lines += [f"              - {reason}" for reason in item.reasons]
    lines.append((f"{len(result.stale)} to bake" if result.stale else "everything is up to date") + unread)
    return "\n".join(lines)


@handled
def images(
    image: str | None = typer.Argument(None, help="Only this image."),
    target: str | None = typer.Option(None, "--target", "-t", help="Only this target."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List every baked version, newest last, with digest, base, parent and locations.

    Read from each target's source of truth: AMIs by tag, GCP images by label, the local store."""
    from bakery.bake.inspect import list_images

    project = project_of(file)
    listing = list_images(project, workspace_of(project), TerminalReporter(), image=image, target=target)
    emit(
        "images",
        {
            "images": [r.as_dict() for r in listing.images],
            "targets_read": listing.read,
            "errors": listing.errors,
            "conflicts": listing.conflicts,
        },
        as_json=as_json,
        text=lambda: _images_table(listing.images, listing.read, listing.errors),
    )
    for name, why in listing.errors.items():
        err(f"error: target {name} could not be listed: {why}")
    for conflict in listing.conflicts:
        err(f"error: conflict: {conflict}")
    if listing.errors or listing.conflicts:
        raise typer.Exit(EXIT_FAILED)


def _images_table(records: list[Any], read: list[str], errors: dict[str, str]) -> str:
    if not records:
        if not read:
            return f"no target could be read ({', '.join(sorted(errors))})"
        where = f" on {', '.join(read)}" if errors else ""
        unread = f" ({', '.join(sorted(errors))} not read)" if errors else ""
        return f"no images baked yet{where}{unread} (bakery build IMAGE --target T)"
    rows = [("IMAGE", "VERSION", "TARGET", "CREATED", "INPUTS DIGEST", "BASE", "PARENT", "LOCATIONS")]
    rows += [
        (
            r.name,
            r.version,
            r.target,
            r.created,
            r.inputs_digest[7:19],
            _short(r.base),
            r.parent or "-",
            " ".join(r.locations),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] for row in rows
    )


def _short(text: str) -> str:
    return text[:19] if text.startswith("sha256:") else text


@handled
def show(
    ref: str = typer.Argument(..., metavar="IMAGE[@VERSION]", help="Image, optionally at a version."),
    target: str | None = typer.Option(None, "--target", "-t", help="Target (needed when several hold it)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show an image version and its provenance (in-toto Statement, SLSA v1)."""
    from bakery.bake.inspect import show_image

    project = project_of(file)
    record, statement = show_image(project, workspace_of(project), TerminalReporter(), ref=ref, target=target)
    emit(
        "show",
        {"image": record.as_dict(), "provenance": statement},
        as_json=as_json,
        text=lambda: _show_text(record, statement),
    )


def _show_text(record: Any, statement: dict[str, Any]) -> str:
    pred = statement["predicate"]
    run = pred["runDetails"]
    deps = pred["buildDefinition"]["resolvedDependencies"]
    lines = [
        f"{record.ref} on {record.target}",
        f"  created:       {record.created}",
        f"  subject:       {statement['subject'][0]['name']} "
        + " ".join(f"{k}:{v}" for k, v in statement["subject"][0]["digest"].items()),
        f"  inputs digest: {record.inputs_digest}",
        f"  base:          {record.base}",
        f"  parent:        {record.parent or '-'}",
        f"  locations:     {', '.join(record.locations)}",
        f"  builder:       {run['builder']['id']} "
        + " ".join(f"{k}={v}" for k, v in run["builder"]["version"].items()),
        f"  invocation:    {run['metadata']['invocationId']} ({run['metadata']['startedOn']} -> "
        f"{run['metadata']['finishedOn']})",
        "  dependencies:",
    ]
    for dep in deps:
        digest = ", ".join(f"{k}:{v}" for k, v in dep.get("digest", {}).items()) or "-"
        extra = " (dirty tree)" if dep.get("annotations", {}).get("dirty") else ""
        lines.append(f"    {dep['name']}: {digest}{extra}")
    return "\n".join(lines)


@handled
def boot(
    ref: str = typer.Argument(..., metavar="IMAGE[@VERSION]", help="Local image to boot."),
    target: str = typer.Option("local", "--target", "-t", help="Local target name."),
    port: int = typer.Option(80, "--port", help="Guest TCP port to reach over HTTP."),
    get: list[str] = typer.Option(["/"], "--get", help="Path to GET once the guest answers (repeatable)."),
    timeout: float = typer.Option(600, "--timeout", help="Seconds to wait for the first answer."),
    as_group: str | None = typer.Option(
        None, "--as-group", metavar="GROUP", help="Boot it as a VM of this local group (its size and health port)."
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Boot a local image once on a throwaway disk, print what it serves, and stop it."""
    from bakery.providers.local.boot import boot_and_fetch
    from bakery.runner import signal_guard

    project = project_of(file)
    with signal_guard():
        result = boot_and_fetch(
            project,
            workspace_of(project),
            TerminalReporter(),
            ref=ref,
            target=target,
            guest_port=port,
            paths=get,
            timeout=timeout,
            as_group=as_group,
        )
    emit(
        "boot",
        result,
        as_json=as_json,
        text=lambda: "\n".join(
            [f"{result.image}@{result.version} answered after {result.seconds_to_first_answer:.0f}s"]
            + [f"--- GET /{p.path} -> {p.status}\n{p.body.rstrip()}" for p in result.pages]
        ),
    )


COMMANDS = (build, plan, images, show, boot)
