"""The one error root. Only the CLI turns these into a message and an exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM gives 143, SIGHUP 129


class BakeryError(Exception):
    """A failure a user can act on: the message says what, where and how to fix it."""

    exit_code = EXIT_FAILED

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        hint: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # what the failed job did, for --json (a rollout's id, from, to, result)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(BakeryError):
    """images.yaml (or a file it names) is wrong. Nothing was written."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, problems: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems


class UsageError(BakeryError):
    """The command line asks for something that does not exist or does not fit."""

    exit_code = EXIT_USAGE


class BuildError(BakeryError):
    """A process (packer, ansible, qemu, mmdebstrap) failed or was interrupted."""

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None = None,
        tail: tuple[str, ...] = (),
        log_path: str | None = None,
        hint: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.returncode = returncode
        self.tail = tail
        self.log_path = log_path


class Interrupted(BuildError):
    """A signal stopped the job (Ctrl-C, SIGTERM, SIGHUP); cleanup has run. Exit 128 + signal."""

    exit_code = EXIT_INTERRUPTED


class ProviderError(BakeryError):
    """A cloud or hypervisor API refused or failed a request."""


class InUse(BakeryError):
    """Something uses an image a job was about to remove (`uses`: one line each); nothing was removed."""

    def __init__(self, message: str, *, uses: tuple[str, ...], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.uses = uses


class TrustError(BakeryError):
    """A signature, a subject, a tag or a revocation check failed; `problems` names each thing that
    did not match (the message is the first of them)."""

    def __init__(self, message: str, *, problems: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or (message,)


class OperationFailed(ProviderError):
    """A GCP operation the API accepted finished with an error (`status`: its HTTP status, if any)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Conflict(BakeryError):
    """A conditional write to the registry lost a race: the key exists already (`create`) or changed since it was
    read (`replace`). Not a failure of the job by itself: the caller reads again."""


class GateFailed(BakeryError):
    """A health gate failed: which instance, what it answered (or which alarm, which target).
    The rollout service rolls back when the group's `rollback` is on."""

    def __init__(self, message: str, *, instance: str | None = None, answer: str | None = None) -> None:
        super().__init__(message)
        self.instance = instance
        self.answer = answer


class RolloutRefused(BakeryError):
    """The group cannot be moved now (another rollout runs, the engine is busy or in a bad state).
    Raised only before the raising step changed anything: a driver's word that nothing moved."""
