"""The trust commands: verify, sign, keys, revoke, unrevoke, audit."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bakery.cli.common import FileOpt, JsonOpt, TerminalReporter, emit, handled, project_of, workspace_of
from bakery.core.text import shown
from bakery.errors import EXIT_FAILED, UsageError

TargetOpt = typer.Option(None, "--target", "-t", help="Target name (default: the image's only target).")

keys_app = typer.Typer(help="Signing keys: make a pair, print a public key.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: who did what, when, under which policy.", invoke_without_command=True)


def _trust(file: Path | None, reporter: Any, *, creates_key: bool = True) -> tuple[Any, Any, Callable[[str], Any]]:
    """(project, trust context, target name -> provider); `creates_key` False for commands that
    only check (they never make a workspace key)."""
    from bakery.providers.base import get_provider
    from bakery.trust.context import TrustContext

    project = project_of(file)
    workspace = workspace_of(project)
    targets = project.config.targets

    def provider_for(target: str) -> Any:
        return get_provider(targets[target].kind, workspace, reporter, None, targets)

    return project, TrustContext(project, workspace, reporter, creates_key=creates_key), provider_for


@handled
def verify(
    image: str = typer.Argument(..., help="IMAGE or IMAGE@VERSION (default: the newest version)."),
    target: str | None = TargetOpt,
    channel: str | None = typer.Option(
        None, "--channel", help="Check too that it is, or was, this channel's head (a signed promotion)."
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check an image: signed by trusted keys, unchanged since (disk, tags, labels), not revoked,
    its parent chain sound. Exit 0 if it verifies, 1 naming every mismatch if not."""
    from bakery.trust.heads import Heads
    from bakery.trust.verify import Verifier

    reporter = TerminalReporter()
    project, trust, provider_for = _trust(file, reporter, creates_key=False)
    verifier = Verifier(project, trust, provider_for)
    result = verifier.verify(image, target=target)
    if channel is not None:
        if channel not in project.config.channels:
            known = ", ".join(sorted(project.config.channels)) or "none"
            raise UsageError(f"no channel '{channel}'; channels: {known}")
        name, version = result.ref.split("@")
        check = Heads(verifier).channel_check(channel, result.target, name, version)
        result = dataclasses.replace(result, checks=(*result.checks, check))
    emit("verify", {**dataclasses.asdict(result), "ok": result.ok}, as_json=as_json, text=lambda: _verify_text(result))
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


def _verify_text(result: Any, indent: str = "") -> str:
    head = "verified" if result.ok else "NOT VERIFIED"
    lines = [f"{indent}{result.ref} on {result.target}: {head}"]
    for check in result.checks:
        lines.append(f"{indent}  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if result.parent is not None:
        lines.append(_verify_text(result.parent, indent + "  "))
    return "\n".join(lines)


@handled
def sign(
    image: str = typer.Argument(..., help="IMAGE@VERSION to co-sign."),
    target: str | None = TargetOpt,
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Add this machine's signature to an image's attestation (for trust.threshold above 1). The
    image must verify in every other respect first."""
    from bakery.errors import TrustError
    from bakery.trust.attestation import Attestations
    from bakery.trust.verify import Verifier

    reporter = TerminalReporter()
    project, trust, provider_for = _trust(file, reporter)
    verifier = Verifier(project, trust, provider_for)
    record, _records = verifier.record(image, target)
    result = verifier.verify_record(record, _records)
    others = [p for p in result.problems if not p.startswith("signature:")]
    if others:
        raise TrustError(f"refusing to co-sign {record.ref}: " + "; ".join(others), problems=tuple(others))
    signed = Attestations(trust).cosign(record)
    subject = f"{record.ref} on {record.target}"
    trust.record("sign", subject, "ok", policy=trust.policy(), details={"keyid": signed.keyid, "key": signed.key_name})
    payload = {"image": record.ref, "target": record.target, "keyid": signed.keyid, "key": signed.key_name}
    emit(
        "sign",
        payload,
        as_json=as_json,
        text=lambda: f"co-signed {subject} with {signed.key_name} ({signed.keyid[:16]}…)",
    )


@keys_app.command("generate")
@handled
def keys_generate(
    out: Path = typer.Option(..., "--out", "-o", help="Private key file to write (its public half: OUT.pub)."),
    as_json: bool = JsonOpt,
) -> None:
    """Make an ed25519 key pair: OUT (private, mode 0600) and OUT.pub (list it under trust.keys)."""
    from bakery.trust.keys import generate

    key = generate(out)
    payload = {"private_key": str(out), "public_key": f"{out}.pub", "keyid": key.keyid}
    emit(
        "keys-generate",
        payload,
        as_json=as_json,
        text=lambda: (
            f"wrote {out} (private: keep it off shared disks; give it to bakery as trust.signing.key_file or "
            f"$BAKERY_SIGNING_KEY) and {out}.pub\nkeyid {key.keyid}\ntrust it in images.yaml:\n"
            f"trust:\n  keys:\n    - name: {out.stem}\n      public_key: {out}.pub"
        ),
    )


@keys_app.command("export")
@handled
def keys_export(file: Path | None = FileOpt, as_json: bool = JsonOpt) -> None:
    """Print the public key this machine signs with (a KMS key's too), as PEM for trust.keys."""
    from bakery.trust.keys import public_pem
    from bakery.trust.signing import signer_public_key

    _, trust, _ = _trust(file, TerminalReporter())
    signer = trust.signer(trusted=False)  # exported to be trusted
    pem = public_pem(signer)
    key = signer_public_key(signer)
    emit("keys-export", {"keyid": key.keyid, "name": key.name, "pem": pem}, as_json=as_json, text=lambda: pem.rstrip())


@handled
def revoke(
    image: str = typer.Argument(..., help="IMAGE@VERSION to revoke (its descendants inherit it)."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the registry and the audit log)."),
    at: str | None = typer.Option(None, "--at", help="From when (ISO 8601, e.g. 2026-12-01T09:00:00Z); default now."),
    target: str | None = typer.Option(None, "--target", "-t", help="Only on this target (default: every target)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Revoke an image and every image built on it: no rollout deploys them, `bakery status`
    names the groups that run them (exit 3)."""
    from bakery.trust.revoke import Revoker

    reporter = TerminalReporter()
    project, trust, provider_for = _trust(file, reporter)
    results = Revoker(project, trust, provider_for).revoke(image, reason=reason, at=at, target=target)
    emit(
        "revoke",
        {"results": [dataclasses.asdict(r) for r in results]},
        as_json=as_json,
        text=lambda: _revoke_text(results),
    )


@handled
def unrevoke(
    image: str = typer.Argument(..., help="IMAGE@VERSION to trust again."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the registry and the audit log)."),
    target: str | None = typer.Option(None, "--target", "-t", help="Only on this target (default: every target)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Lift a revocation (its descendants are lifted too, unless revoked themselves)."""
    from bakery.trust.revoke import Revoker

    reporter = TerminalReporter()
    project, trust, provider_for = _trust(file, reporter)
    results = Revoker(project, trust, provider_for).unrevoke(image, reason=reason, target=target)
    emit(
        "unrevoke",
        {"results": [dataclasses.asdict(r) for r in results]},
        as_json=as_json,
        text=lambda: _revoke_text(results),
    )


def _revoke_text(results: list[Any]) -> str:
    lines = []
    for r in results:
        state = "revoked" if r.operation == "revoke" else "no longer revoked"
        when = f" from {r.at}" if r.operation == "revoke" else ""
        same = "" if r.changed else " (already so; marks checked again)"
        lines.append(f"{r.ref} on {r.target}: {state}{when}{same}: {r.reason}")
        if r.descendants:
            lines.append(f"  inherited by: {', '.join(r.descendants)}")
        lines += [f"  {m}" for m in r.marks]
        lines += [f"  {c}" for c in r.channels]
    return "\n".join(lines)


@audit_app.callback()
@handled
def audit(
    ctx: typer.Context,
    since: str | None = typer.Option(None, "--since", help="Only events from then (ISO 8601, or 2h, 7d)."),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show the audit log (`bakery audit verify` checks its chain and signatures)."""
    if ctx.invoked_subcommand is not None:
        return
    _, trust, _ = _trust(file, TerminalReporter())
    events = trust.audit.events(since=since)
    emit(
        "audit",
        {"store": trust.store.where, "events": [dataclasses.asdict(e) for e in events]},
        as_json=as_json,
        text=lambda: "\n".join(_event_text(e) for e in events) or f"no events in {trust.store.where}",
    )


def _event_text(event: Any) -> str:
    policy = f" [{event.policy}]" if event.policy else ""
    return f"{event.seq:>6} {event.time} {event.who}: {event.action} {event.subject} -> {event.result}{policy}"


@audit_app.command("verify")
@handled
def audit_verify(
    full: bool = typer.Option(False, "--full", help="Check every event, not only those new since the last check."),
    unsigned: bool = typer.Option(
        False, "--unsigned", help="With no trusted key, check the chain alone (signatures unchecked) and pass."
    ),
    every_signature: bool = typer.Option(
        False,
        "--every-signature",
        help="Check each event's own signature, also where the signed head's seal vouches for it (slower).",
    ),
    checkpoints: bool = typer.Option(
        False, "--checkpoints", help="Also hold the log to its signed checkpoints in write-once storage."
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check the audit log: every event signed by a trusted key, in order, none changed or removed,
    and not older, forked or emptier than this machine saw it last. Checks what is new since the
    last check (--full: everything). Where the head is signed by a trusted key and sealed, the
    events' hash chain and the head's signature stand for the signatures of the events it seals
    (--every-signature: check those too). Exit 0 if it holds, 1 naming what does not."""
    _, trust, _ = _trust(file, TerminalReporter(), creates_key=False)
    vault = trust.vault() if checkpoints else None  # no storage named: refused before anything is read
    followed = trust.audit.follow(full=full, seals=not every_signature)
    report = followed.report
    held = vault.check(followed.newest.seq) if vault is not None else None
    refused = not report.signatures_checked and not unsigned
    ok = not report.problems and not refused and (held is None or held.ok)
    emit(
        "audit-verify",
        {
            **dataclasses.asdict(report),
            "ok": ok,
            "checked_from": followed.checked_from,
            "witness": str(trust.audit.witness.path) if trust.audit.witness else None,
            "checkpoints": dataclasses.asdict(held) if held is not None else None,
        },
        as_json=as_json,
        text=lambda: "\n".join([_audit_text(report, followed.checked_from, refused), *_held_text(held)]),
    )
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def _audit_text(report: Any, checked_from: int, refused: bool) -> str:
    span = f"events {checked_from}..{report.head}" if checked_from > 1 else f"{report.events} events"
    if refused:
        return (
            f"audit log NOT VERIFIED: signatures cannot be checked: {report.unchecked_why}\n"
            "  list the keys that sign this project's events under trust.keys, or pass --unsigned to check the "
            "chain alone"
        )
    if not report.problems:
        if not report.signatures_checked:
            return f"audit log chain intact ({span}); signatures NOT checked (--unsigned): {report.unchecked_why}"
        sealed = f"; the signed head's seal vouches for events up to {report.sealed}" if report.sealed else ""
        return f"audit log intact: {span}, chain and signatures verified (head: event {report.head}{sealed})"
    lines = [f"audit log BROKEN: {len(report.problems)} problem(s) in {span}"]
    lines += [f"  {p.what}" for p in report.problems]
    return "\n".join(lines)


def _held_text(held: Any) -> list[str]:
    if held is None:
        return []
    passed_over = [f"  ignored: {shown(i)}" for i in held.ignored]
    if not held.problems:
        newest = f"newest: event {held.newest.seq}, {held.newest.time}" if held.newest else "none written yet"
        return [f"checkpoints hold: {held.checked} in {held.where} ({held.lock}); {newest}", *passed_over]
    return [
        f"checkpoints do NOT hold: {len(held.problems)} problem(s) in {held.where}",
        *(f"  {p}" for p in held.problems),
        *passed_over,
    ]


@audit_app.command("checkpoint")
@handled
def audit_checkpoint(file: Path | None = FileOpt, as_json: bool = JsonOpt) -> None:
    """Write a signed checkpoint of the audit log's newest event to the write-once storage that
    registry.checkpoints names (bakery also writes one after each event it appends). The log must
    verify first. Exit 1 if it does not, or the storage is not write-once; 2 if none is named."""
    _, trust, _ = _trust(file, TerminalReporter())
    written = trust.checkpoint()
    there = "written" if written.new else "was there already"
    emit(
        "audit-checkpoint",
        dataclasses.asdict(written),
        as_json=as_json,
        text=lambda: (
            f"checkpoint of event {written.seq} ({written.digest[:19]}…) {there}: "
            f"{written.where}{written.key} ({written.lock})"
        ),
    )


COMMANDS = (verify, sign, revoke, unrevoke)
SUBCOMMANDS = (("keys", keys_app), ("audit", audit_app))
