"""The bakery command line: parse, call a service, render its result as text or JSON.

Progress and errors go to stderr; results go to stdout, so `--json` output pipes cleanly.
Exit codes: 0 ok, 1 a job failed, 2 usage or configuration error.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from bakery import __version__
from bakery.errors import EXIT_FAILED, EXIT_USAGE, BakeryError, BuildError, TrustError, UsageError

SCHEMA_VERSION = 1
F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="bakery",
    help="Bake golden VM images from images.yaml with Packer and Ansible, with provenance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

FileOpt = typer.Option(None, "--file", "-f", help="images.yaml to use (default: ./images.yaml, or $BAKERY_CONFIG).")
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
TargetOpt = typer.Option(..., "--target", "-t", help="Target name from images.yaml.")


def err(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except OSError:
        pass  # the terminal is gone (SIGHUP after a dropped session): the job still cleans up


def emit(kind: str, payload: Any, *, as_json: bool, text: Callable[[], str]) -> None:
    if as_json:
        body = dataclasses.asdict(payload) if dataclasses.is_dataclass(payload) else payload  # type: ignore[arg-type]
        sys.stdout.write(
            json.dumps(
                {"schema_version": SCHEMA_VERSION, "kind": kind, **_plain(body)},
                indent=2,
                ensure_ascii=False,
                default=str,
            )
            + "\n"
        )
    else:
        sys.stdout.write(text() + "\n")


def _plain(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else {"result": body}


def handled(func: F) -> F:
    """Turn a BakeryError into its message on stderr and its exit code; nothing else is caught."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BakeryError as exc:
            as_json = bool(kwargs.get("as_json"))
            _report_error(exc, as_json=as_json)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _report_error(exc: BakeryError, *, as_json: bool) -> None:
    lines = [f"error: {exc.message}"]
    if isinstance(exc, TrustError):
        lines += [f"  - {problem}" for problem in exc.problems if problem != exc.message]
    if isinstance(exc, BuildError) and exc.tail:
        lines.append("last lines of output:")
        lines += [f"  | {line}" for line in exc.tail[-20:]]
    if isinstance(exc, BuildError) and exc.log_path:
        lines.append(f"full log: {exc.log_path}")
    if exc.hint:
        lines.append(f"hint: {exc.hint}")
    err("\n".join(lines))
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "schema_version": SCHEMA_VERSION,
                    "kind": "error",
                    "error": exc.message,
                    "exit_code": exc.exit_code,
                    "hint": exc.hint,
                    "log": getattr(exc, "log_path", None),
                    **({"details": exc.details} if exc.details else {}),
                    **({"problems": list(exc.problems)} if isinstance(exc, TrustError) else {}),
                },
                indent=2,
            )
            + "\n"
        )


class TerminalReporter:
    """Progress on stderr: a line per phase, tool output indented beneath it."""

    def __init__(self, *, verbose: bool = True) -> None:
        self.verbose = verbose

    def phase(self, name: str, detail: str = "") -> None:
        err(f"==> {name}: {detail}" if detail else f"==> {name}")

    def line(self, source: str, text: str) -> None:
        if self.verbose:
            err(f"    {source:>7} | {text}")

    def note(self, text: str) -> None:
        err(f"    note: {text}")

    def progress(self, view: Any) -> None:
        states = ", ".join(f"{n} {s}" for s, n in sorted(view.states.items()))
        health = ", ".join(f"{n} {h}" for h, n in sorted(view.health.items()))
        err(f"    {view.group}: wave {view.waves_done}/{view.waves}; {states or 'no instances'}; {health or '-'}")


def _project(file: Path | None) -> Any:
    from bakery.config import load as config

    return config.load(config.find_config(str(file) if file else None))


def _workspace(project: Any) -> Any:
    from bakery.workspace import Workspace

    return Workspace.for_project(project.root)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print bakery's version and exit."),
) -> None:
    if version:
        sys.stdout.write(f"bakery {__version__}\n")
        raise typer.Exit(0)


@app.command()
@handled
def validate(file: Path | None = FileOpt, as_json: bool = JsonOpt) -> None:
    """Check images.yaml: shape, references, files, ancestry. Exit 0 if valid, 2 if not."""
    from bakery.config import load as config
    from bakery.errors import ConfigError

    path = config.find_config(str(file) if file else None)
    try:
        project = config.load(path)
    except ConfigError as exc:
        if as_json:
            emit(
                "validate",
                {"file": str(path), "valid": False, "problems": list(exc.problems) or [exc.message]},
                as_json=True,
                text=str,
            )
            err(exc.message)
            raise typer.Exit(EXIT_USAGE) from None
        raise
    cfg = project.config
    if cfg.trust.trusted:  # the public keys are files beside images.yaml: check they load
        from bakery.trust.keys import load_trusted

        load_trusted(cfg.trust, root=project.root, workspace=_workspace(project))
    summary = {
        "file": str(path),
        "valid": True,
        "images": sorted(cfg.images),
        "targets": sorted(cfg.targets),
        "groups": sorted(cfg.groups),
        "channels": sorted(cfg.channels),
    }
    emit(
        "validate",
        summary,
        as_json=as_json,
        text=lambda: (
            f"{path}: valid ({len(cfg.images)} images, {len(cfg.targets)} targets, "
            f"{len(cfg.groups)} groups, {len(cfg.channels)} channels)"
        ),
    )


@app.command()
@handled
def schema() -> None:
    """Print the JSON Schema of images.yaml (for yaml-language-server and other editors)."""
    from bakery.config.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
@handled
def render(
    image: str = typer.Argument(..., help="Image name from images.yaml."),
    target: str = TargetOpt,
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory to write (default .bakery/render/IMAGE-TARGET)."
    ),
    packer_version: str | None = typer.Option(
        None, "--packer-version", help="Render for this Packer version instead of the installed one."
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write a self-contained Packer build directory; `packer build DIR` runs it without bakery."""
    from bakery.bake.service import Baker

    if packer_version is not None and not re.fullmatch(r"v?\d+\.\d+\.\d+", packer_version):
        raise UsageError(f"--packer-version takes a version such as 1.11.2, got {packer_version!r}")
    project = _project(file)
    baker = Baker(project, _workspace(project), TerminalReporter())
    result = baker.render_only(image, target, out.resolve() if out else None, packer_version)
    emit(
        "render",
        result,
        as_json=as_json,
        text=lambda: (
            f"rendered {result.image} {result.version} for {result.target} ({result.builder}) into {result.directory}\n"
            f"run it with: packer build {result.directory}"
        ),
    )


@app.command()
@handled
def build(
    image: str | None = typer.Argument(None, help="Image name from images.yaml (or --stale)."),
    target: str | None = typer.Option(None, "--target", "-t", help="Target name from images.yaml."),
    stale: bool = typer.Option(False, "--stale", help="Bake every image the plan finds stale or new, parents first."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="With --stale: bakes to run at once."),
    force: bool = typer.Option(False, "--force", help="Bake even if an image with the same inputs exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show phases only, not Packer/Ansible output."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Bake IMAGE on TARGET: render, packer build with Ansible, record it with its provenance.

    An image whose inputs digest is already in the catalog is not baked again (--force does)."""
    from bakery.bake.service import Baker

    project = _project(file)
    reporter = TerminalReporter(verbose=not quiet)
    if stale:
        _build_stale(project, reporter, images=[image] if image else None, target=target, jobs=jobs, as_json=as_json)
        return
    if image is None or target is None:
        raise UsageError("name an image and a target (bakery build IMAGE --target T), or use --stale")
    result = Baker(project, _workspace(project), reporter).bake(image, target, force=force)
    rec = result.record
    emit(
        "build",
        result,
        as_json=as_json,
        text=lambda: (
            f"up to date: {rec.ref} on {rec.target} has the same inputs digest {result.inputs_digest}"
            if result.skipped
            else f"baked {rec.ref} on {rec.target} in {result.seconds:.0f}s\n"
            f"  inputs digest: {result.inputs_digest}\n  location: {', '.join(rec.locations)}\n  log: {result.log_path}"
        ),
    )


def _build_stale(
    project: Any, reporter: TerminalReporter, *, images: list[str] | None, target: str | None, jobs: int, as_json: bool
) -> None:
    from bakery.bake.plan import Planner
    from bakery.bake.rebuild import rebuild
    from bakery.runner import signal_guard

    ws = _workspace(project)
    with signal_guard():
        plan = Planner(project, ws, reporter).plan(images, target)
    if not plan.stale:
        reporter.note("nothing to bake: every image is up to date")
    result = rebuild(project, ws, reporter, plan, jobs=jobs)
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


@app.command()
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

    project = _project(file)
    result = Planner(project, _workspace(project), TerminalReporter()).plan(images_ or None, target)
    payload = {
        "items": [{**dataclasses.asdict(i), "key": i.key} for i in result.items],
        "matrix": [{"image": i.image, "target": i.target, "depends_on": i.depends_on} for i in result.stale],
        "waves": [[{"image": i.image, "target": i.target} for i in wave] for wave in result.waves()],
        "stale": len(result.stale),
    }
    emit("plan", payload, as_json=as_json, text=lambda: _plan_text(result))


def _plan_text(result: Any) -> str:
    if not result.items:
        return "no image bakes on the chosen target(s)"
    lines = []
    for item in result.items:
        head = f"{item.status:<11} {item.image} on {item.target}" + (f" (now {item.current})" if item.current else "")
        lines.append(head)
        lines += [f"              - {reason}" for reason in item.reasons]
    lines.append(f"{len(result.stale)} to bake" if result.stale else "everything is up to date")
    return "\n".join(lines)


@app.command()
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

    project = _project(file)
    listing = list_images(project, _workspace(project), TerminalReporter(), image=image, target=target)
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


@app.command()
@handled
def show(
    ref: str = typer.Argument(..., metavar="IMAGE[@VERSION]", help="Image, optionally at a version."),
    target: str | None = typer.Option(None, "--target", "-t", help="Target (needed when several hold it)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show an image version and its provenance (in-toto Statement, SLSA v1)."""
    from bakery.bake.inspect import show_image

    project = _project(file)
    record, statement = show_image(project, _workspace(project), TerminalReporter(), ref=ref, target=target)
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


@app.command()
@handled
def boot(
    ref: str = typer.Argument(..., metavar="IMAGE[@VERSION]", help="Local image to boot."),
    target: str = typer.Option("local", "--target", "-t", help="Local target name."),
    port: int = typer.Option(80, "--port", help="Guest TCP port to reach over HTTP."),
    get: list[str] = typer.Option(["/"], "--get", help="Path to GET once the guest answers (repeatable)."),
    timeout: float = typer.Option(600, "--timeout", help="Seconds to wait for the first answer."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Boot a local image once on a throwaway disk, print what it serves, and stop it."""
    from bakery.providers.local.boot import boot_and_fetch
    from bakery.runner import signal_guard

    project = _project(file)
    with signal_guard():
        result = boot_and_fetch(
            project,
            _workspace(project),
            TerminalReporter(),
            ref=ref,
            target=target,
            guest_port=port,
            paths=get,
            timeout=timeout,
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


# The group commands (rollout, rollback, status, history, down) live in their own module.
from bakery.cli import groups as cli_groups  # noqa: E402, F401
from bakery.cli import trust as cli_trust  # noqa: E402, F401


def main() -> None:
    app()
