"""The Launcher interface (one per target kind: it boots a test instance of an image and removes
it again), where a test connects, and the SSH key made for one test."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bakery.config import kinds
from bakery.config.imagetests import ImageTests
from bakery.config.kinds import TargetSpec
from bakery.core.catalog import ImageRecord
from bakery.errors import UsageError
from bakery.progress import Reporter
from bakery.workspace import Workspace

KEY_FILE = "id_ed25519"


@dataclass(frozen=True)
class Reach:
    """Where a test connects to its instance: SSH, and each guest port the HTTP checks use."""

    host: str
    ssh_port: int = 22
    user: str = "root"
    ports: Mapping[int, int] = field(default_factory=dict)  # guest port -> port on `host` (same when absent)
    # A stand-in on this machine that Ansible reaches with its local connection (the integration
    # tests' instead of a cloud's instance, which cannot run there): no SSH at all.
    local: bool = False
    python: str = sys.executable

    def port(self, guest: int) -> int:
        return self.ports.get(guest, guest)


@dataclass(frozen=True)
class TestKey:
    """An SSH key pair made for one test run; the private half in a 0600 file of the run's own
    directory, removed with it."""

    __test__ = False  # not a pytest test class

    private_file: Path
    public: str  # OpenSSH form: "ssh-ed25519 AAAA... bakery-test-<run>"

    @classmethod
    def make(cls, directory: Path, comment: str) -> TestKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        path = directory / KEY_FILE
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(private)
        return cls(path, f"{public.decode()} {comment}")


@dataclass(frozen=True)
class LaunchRequest:
    """One test instance to boot: of which image, where, reachable with which key."""

    record: ImageRecord
    target: str
    spec: TargetSpec
    tests: ImageTests
    run: str  # this test run's id: the mark on everything the launcher makes for it
    key: TestKey
    workdir: Path  # the run's own directory (the key, logs, a local VM's overlay)

    @property
    def name(self) -> str:
        """The instance's name: 'bakery-test-web-<run>' (a valid GCE name and EC2 Name tag)."""
        return f"bakery-test-{self.record.name}-{self.run}"


@dataclass(frozen=True)
class Launched:
    """A test instance that booted (or is booting)."""

    id: str  # "i-0abc", "bakery-test-web-1a2b3c" (GCE), the local VM's directory name
    where: str  # "in eu-west-1 (subnet-1, sg-1)", "in bakery-demo/europe-west1-b", "on this machine"
    reach: Reach
    handle: Any = None  # the launcher's own (a local VM's process)
    # Why nothing may connect to `reach` (an endpoint on this machine, such as moto or a fake GCE,
    # hands out addresses of instances that run nowhere): None for a real cloud's instance.
    nowhere: str | None = None


class Launcher(Protocol):
    """Boots test instances of one kind of target. Methods raise BakeryError subclasses
    (ProviderError for cloud refusals), never an SDK's own exception."""

    def launch(self, request: LaunchRequest) -> Launched:
        """Start a test instance of `request.record` that accepts `request.key`, in the target's
        network, marked with `request.run`; return once the cloud says it runs (not that it boots)."""

    def alive(self, launched: Launched) -> bool:
        """Whether the instance may still come up (False: it stopped or was terminated)."""

    def cleanup(self, request: LaunchRequest) -> list[str]:
        """Remove everything made for run `request.run`, found by its mark, whether or not launch()
        returned (a signal may have cut it short): instances terminated, the key registered for
        it deleted. Idempotent. Returns what was removed, one line each."""

    def sweep(self, request: LaunchRequest) -> list[str]:
        """Remove the test instances of `request`'s target (its region or zone) that carry a run's
        mark and whose life's bound (bakery.imagetest.lifetime) has passed: left by a bakery that
        was killed. Never touches an instance without the mark, nor one whose bound has not passed
        (another bakery may be testing with it). Returns what was removed, one line each."""

    def console(self, launched: Launched) -> str:
        """The last lines of the instance's console, when the kind can read them ('' otherwise)."""


def get_launcher(kind: str, workspace: Workspace, reporter: Reporter, clients: Any = None) -> Launcher:
    """The launcher of a target kind. UsageError for a kind that has none."""
    if not kinds.known(kind):
        raise UsageError(f"unknown target kind '{kind}'; valid kinds: {', '.join(sorted(kinds.names()))}")
    launcher: Launcher = kinds.get(kind).module("launcher").make(workspace, reporter, clients)
    return launcher
