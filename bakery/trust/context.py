"""What every trust-minded service shares for one project: the registry's store, the trusted
keys, this machine's signer and the audit log, each made on first use (so `bakery images` never
opens a bucket, and a bake without KMS access fails before Packer starts, not after)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakery.config.load import Project
from bakery.config.trust_models import Trust
from bakery.core.identity import who
from bakery.errors import BakeryError, ConfigError, TrustError
from bakery.progress import Reporter
from bakery.registry import open_checkpoints, open_store
from bakery.registry.base import Store
from bakery.trust.audit import AuditLog, Event, Followed
from bakery.trust.audit_facts import Logged, logged
from bakery.trust.checkpoints import Checkpoints, Written
from bakery.trust.keys import load_signer, load_trusted
from bakery.trust.signing import PublicKey, Signer, short, signer_public_key
from bakery.trust.witness import Witness
from bakery.workspace import Workspace


@dataclass
class TrustContext:
    project: Project
    workspace: Workspace
    reporter: Reporter
    clients: Callable[..., Any] | None = None  # for the store and KMS (tests point them at moto or a fake)
    # False for commands that only read and check (verify, status): they never make a workspace
    # key, which would then be trusted by a project that lists none.
    creates_key: bool = True
    _signer: Signer | None = field(default=None, init=False, repr=False)
    _followed: Followed | None = field(default=None, init=False, repr=False)
    _logged: Logged | None = field(default=None, init=False, repr=False)

    @property
    def trust(self) -> Trust:
        return self.project.config.trust

    @functools.cached_property
    def store(self) -> Store:
        return open_store(
            self.project.config.registry, root=self.project.root, workspace=self.workspace, clients=self.clients
        )

    @functools.cached_property
    def keys(self) -> list[PublicKey]:
        return load_trusted(self.trust, root=self.project.root, workspace=self.workspace)

    @property
    def threshold(self) -> int:
        return self.trust.threshold if self.trust.trusted else 1

    def signer(self, *, trusted: bool = True) -> Signer:
        """This machine's signer (the workspace key is made on first use, and then trusted by
        a project that lists no keys of its own). ConfigError when `trusted` and the project
        lists keys that do not include it: what it signed would verify nowhere."""
        if self._signer is None:
            self._signer = load_signer(
                self.trust,
                root=self.project.root,
                workspace=self.workspace,
                clients=self.clients,
                create=self.creates_key,
                note=self.reporter.note,
            )
            self.__dict__.pop("keys", None)  # a workspace key made just now is trusted from now on
        if trusted and self.trust.trusted:
            key = signer_public_key(self._signer)
            if key.keyid not in {k.keyid for k in self.keys}:
                raise ConfigError(
                    f"this machine signs with {key.name} (key {short(key.keyid)}), which is not in trust.keys: "
                    "its images and audit events would verify nowhere",
                    hint="set trust.signing or $BAKERY_SIGNING_KEY to a trusted key, or add this key's public half "
                    "(`bakery keys export`) to trust.keys",
                )
        return self._signer

    def policy(self, *, required: bool | None = None) -> str:
        """Which policy decides, in words, for messages and audit events."""
        names = ", ".join(k.name for k in self.keys) or "none"
        need = self.trust.required if required is None else required
        return f"trust.require={'on' if need else 'off'}, threshold {self.threshold} of keys: {names}"

    @functools.cached_property
    def audit(self) -> AuditLog:
        """The audit log; events are signed by this machine's signer, made when the first event
        is appended (reading or verifying the log makes no key). What this machine remembers of
        the log (its witness) is checked before every read and append."""
        witness = Witness.of(self.workspace, self.store.where)
        return AuditLog(self.store, signer=self.signer, keys=self.keys, threshold=1, witness=witness)

    @functools.cached_property
    def checkpoints(self) -> Checkpoints | None:
        """Where the audit log's signed checkpoints go (registry.checkpoints), or None."""
        vault = open_checkpoints(self.project.config.registry, clients=self.clients)
        if vault is None:
            return None
        return Checkpoints(vault, self.store, keys=self.keys, threshold=self.threshold)

    def vault(self) -> Checkpoints:
        """The checkpoints, for the commands that need them. Raises ConfigError when images.yaml
        names no write-once storage for them."""
        if self.checkpoints is None:
            raise ConfigError(
                "no write-once storage for audit checkpoints is configured",
                hint="set registry.checkpoints in images.yaml: an S3 bucket with Object Lock (registry kind s3) or "
                "a GCS bucket with a retention policy (kind gcs)",
            )
        return self.checkpoints

    def checkpoint(self) -> Written:
        """Checkpoint the newest event of the audit log, once it verifies. Raises ConfigError
        (no checkpoints configured), TrustError (the log does not verify), BakeryError."""
        vault = self.vault()
        newest = self.log().newest
        if not newest.seq:
            raise BakeryError(f"the audit log in {self.store.where} has no events: there is nothing to checkpoint")
        return vault.write(newest.seq, newest.digest, self.signer())

    def forget_log(self) -> None:
        """Read the audit log again on the next `log()` (another machine may have appended)."""
        self._followed = None
        self._logged = None

    def log(self) -> Followed:
        """The audit log as far as it verifies, read once per command (again after an append).
        Raises TrustError when it went back in time, is broken, or cannot be verified for want
        of a trusted key: what it records (revocations) is trusted only when it verifies."""
        if self._followed is None:
            followed = self.audit.follow()
            report = followed.report
            if report.problems:
                shown = "; ".join(p.what for p in report.problems[:3])
                more = f" (and {len(report.problems) - 3} more)" if len(report.problems) > 3 else ""
                raise TrustError(
                    f"the audit log in {self.store.where} does not verify: {shown}{more}",
                    hint="`bakery audit verify` names every problem; restore the log from a backup",
                )
            if followed.newest.seq and not report.signatures_checked:
                raise TrustError(
                    f"the audit log in {self.store.where} cannot be verified: {report.unchecked_why}",
                    hint="list the keys that sign this project's events under trust.keys in images.yaml",
                )
            self._followed = followed
        return self._followed

    def logged(self) -> Logged:
        """The channel moves and gate overrides the audit log records, read once it verified
        (`log()`, whose TrustError it raises)."""
        if self._logged is None:
            newest = self.log().newest.seq  # only events the log verified (not ones appended since)
            self._logged = logged(e for e in self.audit.events() if e.seq <= newest)
        return self._logged

    def keep(self, key: str, document: dict[str, Any]) -> None:
        """Write a shared record (a rollout's) at `key`, replacing what is there; a failure is a
        warning: the job's own state lives elsewhere (the group, its journal)."""
        import json

        from bakery.errors import Conflict
        from bakery.registry.base import update

        data = json.dumps(document, indent=2, sort_keys=True, default=str).encode() + b"\n"
        try:
            update(self.store, key, lambda _there: data)
        except Conflict:
            self.reporter.note(f"warning: {key} in the registry changed under this write; kept the other")
        except BakeryError as exc:
            self.reporter.note(f"warning: could not keep {key} in the registry: {exc.message}")

    def record(
        self,
        action: str,
        subject: str,
        result: str,
        *,
        policy: str = "",
        details: dict[str, Any] | None = None,
        strict: bool = False,
    ) -> Event | None:
        """Append one audit event. A failure to append is a warning (the job itself is done and
        says so) unless `strict`, when it raises."""
        self._followed = self._logged = None  # read again after this event
        try:
            event = self.audit.append(
                action=action, subject=subject, result=result, policy=policy, details=details or {}, who=who()
            )
        except BakeryError as exc:
            if strict:
                raise
            self.reporter.note(
                f"warning: could not write the audit event ({action} {subject}: {result}): {exc.message}"
            )
            return None
        if self.checkpoints is not None:
            try:
                self.checkpoints.write(event.seq, event.digest, self.signer())
            except BakeryError as exc:
                if strict:
                    raise
                self.reporter.note(f"warning: could not checkpoint the audit log (event {event.seq}): {exc.message}")
        return event
