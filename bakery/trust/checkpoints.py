"""Signed checkpoints of the audit log's head in write-once storage the user names (images.yaml's
`registry.checkpoints`: an S3 bucket with Object Lock, a GCS bucket with a retention policy).

A checkpoint says "the log at <registry> had event <seq> with <digest> at <time>", in a DSSE
envelope signed by this machine's key, as a transparency log's checkpoint pins its tree head. It
is written after every append (by the command that appended) and on `bakery audit checkpoint`,
under a name of its own (<log id>/<seq>-<digest>.json, created only if absent), so no checkpoint
ever replaces another, and the storage keeps it for its retention period whoever can write the
registry. `bakery audit verify --checkpoints` reads them all back and holds the log to them: a log
shorter than a checkpoint (rolled back or wiped) or with another event at a checkpointed seq
(forked) fails, naming the checkpoint and what the log has instead. Unlike the witness (what one
machine remembers), checkpoints protect a reader that has never seen the log before.

What is read back is untrusted: versions hidden behind a delete marker or a newer version are
read too, each object is capped in size, parsed with nesting limits, its fields type-checked,
and its signature checked against trust.keys before anything it says is believed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from bakery.core import documents
from bakery.core.jcs import jcs_bytes, sha256
from bakery.errors import Conflict
from bakery.registry.base import FETCH_THREADS, Store, Stored, WriteOnce
from bakery.trust.audit_chain import event_key, open_envelope
from bakery.trust.signing import AUDIT_PAYLOAD_TYPE, PublicKey, Signer, Verified, sign, verify_many

PAYLOAD_TYPE = "application/vnd.bakery.audit-checkpoint+json"
MAX_CHECKPOINT_BYTES = 64 * 1024  # a checkpoint is a few hundred bytes
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


@dataclass(frozen=True)
class Checkpoint:
    key: str  # its object name in the write-once storage
    seq: int
    digest: str
    time: str
    signed_by: tuple[str, ...]

    @property
    def said(self) -> str:
        """'checkpoint KEY (written TIME, signed by NAMES)', for messages."""
        return f"checkpoint {self.key} (written {self.time}, signed by {', '.join(self.signed_by)})"


@dataclass(frozen=True)
class Written:
    where: str  # the write-once storage
    key: str
    seq: int
    digest: str
    lock: str  # what keeps it, in words
    new: bool  # False: this very checkpoint was there already


@dataclass(frozen=True)
class CheckpointReport:
    where: str
    lock: str
    checked: int  # checkpoints whose signature verified
    newest: Checkpoint | None
    problems: tuple[str, ...]
    # Objects that are no checkpoint signed by a trusted key: they carry no authority, so they
    # are named and passed over (anyone who may write the storage could leave one there, kept
    # for the whole retention: failing on them would let that stop every check).
    ignored: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def log_id(where: str) -> str:
    """The name under which one registry's checkpoints are kept: several may share a bucket."""
    return sha256(where.encode()).removeprefix("sha256:")[:16]


class Checkpoints:
    """The checkpoints of the audit log in `store`, kept in `vault`; a checkpoint is believed
    when one of `keys` signed it (each is one machine's word on the head it saw; `threshold`
    is kept for what the log itself asks)."""

    def __init__(
        self,
        vault: WriteOnce,
        store: Store,
        *,
        keys: Sequence[PublicKey],
        threshold: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.vault = vault
        self.store = store
        self.keys = tuple(keys)
        self.threshold = threshold
        self.prefix = f"{log_id(store.where)}/"
        self._clock = clock
        self._lock: str | None = None

    def lock(self) -> str:
        """What keeps the checkpoints (asked once). Raises ProviderError when the storage is not
        write-once: a checkpoint there would protect nothing, so none is written."""
        if self._lock is None:
            self._lock = self.vault.lock()
        return self._lock

    def write(self, seq: int, digest: str, signer: Signer) -> Written:
        """Checkpoint event `seq` with `digest`, signed by `signer`. Raises ProviderError (the
        storage is not write-once, or refuses) or what the signer raises."""
        lock = self.lock()
        key = f"{self.prefix}{seq:012d}-{digest.removeprefix('sha256:')[:16]}.json"
        when = self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        payload = jcs_bytes({"log": self.store.where, "seq": seq, "digest": digest, "time": when})
        data = json.dumps(sign(payload, PAYLOAD_TYPE, [signer]), separators=(",", ":")).encode()
        try:
            self.vault.create(key, data)
        except Conflict:
            return Written(self.vault.where, key, seq, digest, lock, new=False)  # another machine's, or a retry's
        return Written(self.vault.where, key, seq, digest, lock, new=True)

    def check(self, newest: int) -> CheckpointReport:
        """Every checkpoint held against the log, whose newest event is `newest`: each must be
        signed by trusted keys, and name an event the log has, with the digest it has. Raises
        ProviderError when the storage cannot be read or is not write-once."""
        lock = self.lock()
        stored = self.vault.versions(self.prefix)
        with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
            datas = list(pool.map(self.vault.read, stored))
        ignored: list[str] = []
        opened: list[tuple[Stored, dict[str, object]]] = []
        for one, data in zip(stored, datas, strict=True):
            try:
                if data is None:
                    continue  # gone since it was listed: only its retention's end removes it
                if len(data) > MAX_CHECKPOINT_BYTES:
                    raise ValueError(f"it is {len(data)} bytes, more than the {MAX_CHECKPOINT_BYTES} a checkpoint is")
                opened.append((one, open_envelope(data, PAYLOAD_TYPE)[0]))
            except ValueError as exc:
                ignored.append(f"checkpoint {one.key} in {self.vault.where} is not readable: {exc}")
        # Each checkpoint is one machine's signed word on what it saw: one trusted key is enough.
        results = verify_many([envelope for _one, envelope in opened], self.keys, 1, PAYLOAD_TYPE)
        checkpoints = []
        for (one, _envelope), result in zip(opened, results, strict=True):
            if not isinstance(result, Verified):
                ignored.append(f"checkpoint {one.key} in {self.vault.where} does not count: {result.message}")
                continue
            try:
                checkpoints.append(self._read(one.key, result))
            except ValueError as exc:  # signed by a trusted key, yet malformed: that key's writer is broken
                ignored.append(f"checkpoint {one.key} in {self.vault.where} is not readable: {exc}")
        problems = self._against_log(checkpoints, newest)
        latest = max(checkpoints, key=lambda c: c.seq, default=None)
        return CheckpointReport(self.vault.where, lock, len(checkpoints), latest, tuple(problems), tuple(ignored))

    def _read(self, key: str, verified: Verified) -> Checkpoint:
        document = documents.parse_object(verified.payload)
        if document.keys() != {"log", "seq", "digest", "time"}:
            raise ValueError("its payload is not a checkpoint (fields: log, seq, digest, time)")
        seq, digest, time, log = (document[name] for name in ("seq", "digest", "time", "log"))
        if type(seq) is not int or seq < 1:
            raise ValueError("its seq is not a positive integer")
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            raise ValueError("its digest is not sha256:<64 hex digits>")
        if not isinstance(time, str) or not TIME.fullmatch(time):
            raise ValueError("its time is not a UTC time (2026-11-27T05:00:00Z)")
        if log != self.store.where:
            raise ValueError(f"it is a checkpoint of another log ({str(log)[:200]!r}), not of {self.store.where}")
        return Checkpoint(key, seq, digest, time, verified.signed_by)

    def _against_log(self, checkpoints: list[Checkpoint], newest: int) -> list[str]:
        """What the log says against each checkpoint: too short (rolled back, wiped) or another
        event at a checkpointed seq (forked)."""
        seqs = sorted({c.seq for c in checkpoints if c.seq <= newest})
        blobs = self.store.get_many([event_key(seq) for seq in seqs])
        found: dict[int, str] = {}
        for seq in seqs:
            blob = blobs.get(event_key(seq))
            try:
                found[seq] = sha256(open_envelope(blob.data, AUDIT_PAYLOAD_TYPE)[1]) if blob else ""
            except ValueError:
                found[seq] = ""  # unreadable: `audit verify` names it; here it matches no checkpoint
        where = f"the audit log in {self.store.where}"
        problems = []
        for c in sorted(checkpoints, key=lambda c: (c.seq, c.key)):
            if c.seq > newest:
                has = f"its newest event is {newest}" if newest else "it has no events"
                problems.append(
                    f"{where} went back in time: {c.said} records event {c.seq} ({c.digest[:19]}…), but {has}"
                )
            elif not found[c.seq]:
                problems.append(f"{where} has no readable event {c.seq}, which {c.said} records ({c.digest[:19]}…)")
            elif found[c.seq] != c.digest:
                problems.append(
                    f"{where} forked: {c.said} records event {c.seq} as {c.digest[:19]}…, but the log's event"
                    f" {c.seq} is {found[c.seq][:19]}…"
                )
        return problems
