"""Two machines promoting into one channel at the same moment: two OS processes append promotions
to the channel's history in an S3 bucket (the moto server) and in a GCS bucket (tests/fakes/gcs.py,
which enforces generation preconditions), through boto3 and google-cloud-storage. Every promotion
is recorded, in one order, each statement chained to the one before; none is lost."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

from bakery.registry.base import Store
from bakery.trust.audit_facts import Logged, LoggedMove, channel_key
from bakery.trust.channels import Channels, Move, Proposal
from bakery.trust.signing import PublicKey
from tests.integration.shared_buckets import in_gcs, in_s3  # noqa: F401 (fixtures)

EACH = 8


class _Trust:
    """What Channels needs of a TrustContext: the store, the trusted keys, this machine's signer,
    a project whose channels ask no approvals, and what the verified audit log says of channel
    moves. The log stands in as the intents the promoters' `before_write` hooks leave in the
    bucket (intents/DIGEST.json), one per attempt, lost races included: every move must match one
    by its digest (the log's own cross-check is tests/unit/promote/test_held_to_the_log.py; this
    test is about the conditional writes and the hook that runs ahead of each)."""

    def __init__(self, store: Store, keys: list[PublicKey], signer: Any = None) -> None:
        self.store, self.keys, self._signer = store, keys, signer
        self.project = SimpleNamespace(config=SimpleNamespace(channels={}))

    def intend(self, move: Move) -> None:
        intent = {"seq": move.seq, "version": move.version, "move": move.digest}
        self.store.create(f"intents/{move.digest.removeprefix('sha256:')}.json", json.dumps(intent).encode())

    def intents(self) -> list[dict[str, Any]]:
        return [json.loads(blob.data) for blob in self.store.get_many(self.store.keys("intents/")).values()]

    def logged(self) -> Logged:
        moves: dict[int, list[LoggedMove]] = {}
        for each in self.intents():
            moves.setdefault(each["seq"], []).append(LoggedMove("promote", each["version"], each["move"], "", True))
        return Logged({channel_key("stable", "aws", "web"): moves})

    def forget_log(self) -> None:
        pass  # logged() reads the bucket each time

    def signer(self) -> Any:
        return self._signer

    def log(self) -> Any:
        from bakery.trust.audit import Followed
        from bakery.trust.audit_chain import AuditReport
        from bakery.trust.witness import Mark

        return Followed(AuditReport(0, 0, ()), {}, Mark(0, ""), 1)


def _promoter(opener: Callable[[], Store], name: str, key_pem: bytes, trusted: list[PublicKey], start: Any) -> None:
    """One OS process promoting EACH versions of web (named after it) into `stable`."""
    signer = CryptoSigner(load_pem_private_key(key_pem, None))
    channels = Channels(_Trust(opener(), trusted, signer))  # type: ignore[arg-type]
    start.wait(timeout=60)
    for n in range(EACH):
        version = f"{name[-1]}.0.{n}"
        channels.append(
            "stable",
            "aws",
            "web",
            lambda _now, v=version: Proposal("promote", v, "sha256:" + "0" * 64, "p", name),
            before_write=channels.trust.intend,  # type: ignore[attr-defined]
        )


@pytest.mark.parametrize("where", ["in_s3", "in_gcs"])
def test_two_processes_promoting_at_once_are_both_recorded_in_order(where: str, request: pytest.FixtureRequest) -> None:
    opener: Callable[[], Store] = request.getfixturevalue(where)
    keys = {name: CryptoSigner.generate_ed25519() for name in ("alice", "ci")}
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no state shared with pytest's
    start = context.Barrier(len(keys))
    trusted = [
        PublicKey(f"machine-{i}", key.public_key.keyid, key.public_key) for i, key in enumerate(keys.values(), start=1)
    ]
    processes = [
        context.Process(target=_promoter, args=(opener, f"machine-{i}", key.private_bytes, trusted, start))
        for i, key in enumerate(keys.values(), start=1)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
        if process.is_alive():
            process.kill()  # stuck: the assertion below says so
    assert [p.exitcode for p in processes] == [0, 0]
    history = Channels(_Trust(opener(), trusted)).read("stable", "aws", "web")  # type: ignore[arg-type]
    moves = history.moves
    assert [m.seq for m in moves] == list(range(1, 2 * EACH + 1))
    assert sorted(m.version or "" for m in moves) == sorted(f"{w}.0.{n}" for w in "12" for n in range(EACH))
    for machine in ("machine-1", "machine-2"):  # each machine's own promotions, in the order it made them
        mine = [m.version for m in moves if m.by == machine]
        assert mine == [f"{machine[-1]}.0.{n}" for n in range(EACH)]
        assert {m.signed_by for m in moves if m.by == machine} == {(machine,)}
    assert [m.from_ for m in moves[1:]] == [m.version for m in moves[:-1]]  # each knew the head before it
    assert history.head == moves[-1].version
    intended = {i["move"]: i for i in _Trust(opener(), trusted).intents()}
    assert all(intended[m.digest]["seq"] == m.seq for m in moves)  # each move's hook ran before it was written
