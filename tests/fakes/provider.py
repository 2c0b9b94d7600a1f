"""An in-memory Provider that keeps every promise of bakery.providers.base.Provider, for the
stand-in `packer` (tests/fakes/packer.py, imported here too) to create images in as Packer
creates them in a cloud.

The fake cloud holds images, each in one region, each (if it is bakery's) carrying the mark of
the bake that created it from the moment it exists. As with a real cloud, images appear there
without bakery's doing: Packer creates them. Here the stand-in packer does, by dropping a note in
the cloud's inbox (a directory), which every provider call reads first, as a cloud's API shows
what Packer made; it learns the bake's mark from `fake-cloud.json`, which before_build writes in
the work directory (a real provider hands the mark to Packer as variables). Tests that need no
Packer create images in-process with :meth:`FakeProvider.create`.

Trust: each complete image carries tags (the stamp and the attestation's digest, as
``bakery:<field>``) that a test may change (:meth:`FakeProvider.tag`), as anyone who can tag an
AMI can, and its content (:meth:`FakeProvider.change`): its descriptor (ids, creation times and
the content's sha256) and its claims then tell.

Faults: :meth:`FakeProvider.fail` makes a method raise (a ProviderError unless told otherwise),
:meth:`FakeProvider.interrupt` sends this process a signal while a method is under way, as
Ctrl-C or `kill` does while bakery waits for a cloud (runner.signal_guard must be active), and
:meth:`FakeProvider.on` runs any action when a method is called (another bake creating its
image at that moment, say). Every call is logged in :attr:`FakeProvider.calls`.

Usage::

    fake = FakeProvider(inbox=tmp_path / "cloud")
    packer = FakePacker(tmp_path / "bin")          # put tmp_path / "bin" first on PATH
    packer.scenario(create=("region-a", "region-b"), exit_code=1)
    fake.fail("publish")
    Baker(project, workspace, reporter, provider=fake).bake("web", "aws")
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bakery.config.secrets import leaked
from bakery.core import jcs, provenance
from bakery.core.catalog import ImageRecord
from bakery.core.debris import Leftover, Owner, iso, utc
from bakery.errors import ProviderError
from bakery.providers.base import BakeRequest, BuildMarks, Claim, PackageDb, Prepared
from tests.fakes.packer import MARK_FILE
from tests.fakes.packer import FakePacker as FakePacker  # where service tests import it from

REGIONS = ("region-a", "region-b")
DPKG = Path(__file__).parent / "dpkg"  # a real-shaped dpkg status file and os-release
# What `dpkg-query -W -f '${Package} ${Version}\n'` prints on a system with DPKG's status file
# (sorted by name, then arch): nano, purged, is left out; libc6 is there twice (amd64, i386).
DPKG_QUERY = [
    "base-files 12.4+deb12u5",
    "libc6 2.36-9+deb12u7",
    "libc6 2.36-9+deb12u7",
    "libpython3.11-minimal 3.11.2-6+deb12u4",
    "libssl3 3.0.15-1~deb12u1",
    "nginx-common 1.22.1-9+deb12u1",
    "tzdata 2024a-0+deb12u1",
    "vim-tiny 2:9.0.1378-2",
]


def fixture_db(status: bytes | None = None) -> PackageDb:
    """The package database of tests/fakes/dpkg (or `status` with its os-release)."""
    data = (DPKG / "status").read_bytes() if status is None else status
    return PackageDb(status=data, os_release=(DPKG / "os-release").read_bytes(), read_from="the fake build VM")


PREFIX = "bakery:"  # of the tags a complete image carries
ATTESTATION_TAG = PREFIX + "attestation"
NAMES = {field: f"tag {PREFIX}{field}" for field in [*provenance.STAMP_FIELDS, "attestation"]}


@dataclass
class FakeImage:
    """One image in one region of the fake cloud."""

    id: str
    region: str
    target: str
    name: str  # bakery's image name, from the mark
    version: str
    invocation: str | None  # the mark of the bake that created it; None: not bakery's
    created: str
    state: str = ""  # "" (only the mark so far), "pending" or "complete"
    owner: Owner | None = None
    heartbeat: str | None = None
    content: bytes = b""  # what the image holds (scan reads it)
    provenance: dict[str, Any] | None = None
    inputs_digest: str = ""
    base: str = ""
    parent: str | None = None
    tags: dict[str, str] = field(default_factory=dict)  # "bakery:commit" -> ..., once complete
    revoked: dict[str, str | None] | None = None  # at, reason, replacement: written by mark_revoked

    @property
    def location(self) -> str:
        return f"{self.region}:{self.id}"

    def described(self) -> dict[str, str]:
        """What never changes once the image exists, and what it holds."""
        return {"image": self.id, "created": self.created, "content": hashlib.sha256(self.content).hexdigest()}


@dataclass(frozen=True, kw_only=True)
class FakeMarks(BuildMarks):
    """The bake's mark, as a real provider hands it to Packer (here Packer reads fake-cloud.json)."""

    fake_mark: str


@dataclass(frozen=True)
class Call:
    method: str
    args: Mapping[str, Any] = field(default_factory=dict)


class FakeProvider:
    """The Provider protocol over an in-memory cloud (see the module's docstring)."""

    kind = "fake"

    def __init__(self, inbox: Path | None = None, *, regions: tuple[str, ...] = REGIONS) -> None:
        self.inbox = inbox
        self.regions = regions
        self.base = "fake-base:1"  # what a root image starts from; change it to make a new base
        self.specs: dict[str, Any] = {}
        self.calls: list[Call] = []
        self.prepared: list[str] = []  # invocations prepare() made things for
        self.marks: dict[str, tuple[str, str, str]] = {}  # invocation -> (target, image, version)
        self.packages = fixture_db()  # what package_db() reads from the built system; change it per bake
        self._images: dict[str, FakeImage] = {}
        self._actions: dict[str, list[_Action]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    # --- faults ----------------------------------------------------------------------------------

    def on(self, method: str, action: Callable[[], object], *, times: int | None = 1) -> None:
        """Run `action` when `method` is next called (`times` calls; None: every call), before
        the method does anything."""
        self._actions.setdefault(method, []).append(_Action(action, times))

    def fail(self, method: str, error: BaseException | None = None, *, times: int | None = 1) -> None:
        """Make `method` raise `error` (a ProviderError naming the method by default)."""
        raised = error or ProviderError(f"fake cloud: {method} refused (injected fault)")

        def action() -> None:
            raise raised

        self.on(method, action, times=times)

    def interrupt(self, method: str, signum: int = signal.SIGINT, *, presses: int = 1, times: int | None = 1) -> None:
        """Send this process `signum` (`presses` times in a row) while `method` waits for the cloud:
        bakery's signal handler (runner.signal_guard) decides what happens, as for a user's Ctrl-C."""

        def action() -> None:
            if signal.getsignal(signum) in (signal.SIG_DFL, signal.SIG_IGN, signal.default_int_handler):
                raise RuntimeError(f"FakeProvider.interrupt({method!r}) needs runner.signal_guard() active")
            for _ in range(presses):
                os.kill(os.getpid(), signum)  # the handler runs before os.kill returns

        self.on(method, action, times=times)

    def _enter(self, method: str, **args: Any) -> None:
        with self._lock:
            self.calls.append(Call(method, args))
            due = [a for a in self._actions.get(method, []) if a.times is None or a.times > 0]
            for action in due:
                if action.times is not None:
                    action.times -= 1
        for action in due:
            action.run()
        self._sync()

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # --- what a build (Packer) or another party does in the cloud --------------------------------

    def create(
        self,
        target: str,
        name: str,
        version: str,
        invocation: str | None,
        *,
        region: str | None = None,
        created: str | None = None,
        state: str = "",
        owner: Owner | None = None,
        heartbeat: str | None = None,
        content: bytes = b"",
        image_id: str | None = None,
    ) -> FakeImage:
        """An image as a build creates it: with the mark of bake `invocation` (None: an image
        that is not bakery's), created now unless told when."""
        with self._lock:
            image = FakeImage(
                id=image_id or f"img-{next(self._ids)}",
                region=region or self.regions[0],
                target=target,
                name=name,
                version=version,
                invocation=invocation,
                created=created or iso(datetime.now(UTC)),
                state=state,
                owner=owner,
                heartbeat=heartbeat,
                content=content,
            )
            self._images[image.id] = image
            return image

    def delete(self, image_id: str) -> None:
        """Someone else deleted the image (a user in the console, another bake)."""
        with self._lock:
            self._images.pop(image_id, None)

    def tag(self, image_id: str, key: str, value: str | None) -> None:
        """Someone set (None: removed) a tag on the image, as anyone who may tag an AMI can."""
        with self._lock:
            tags = self._images[image_id].tags
            if value is None:
                tags.pop(key, None)
            else:
                tags[key] = value

    def change(self, image_id: str, content: bytes) -> None:
        """Someone changed what the image holds (no cloud allows it; a disk can be changed)."""
        with self._lock:
            self._images[image_id].content = content

    def all_images(self) -> list[FakeImage]:
        """Every image in the cloud, marked or not, in any state (copies: changing them changes nothing)."""
        self._sync()
        with self._lock:
            return [replace(i) for i in sorted(self._images.values(), key=lambda i: (i.created, i.id))]

    def image(self, image_id: str) -> FakeImage | None:
        found = [i for i in self.all_images() if i.id == image_id]
        return found[0] if found else None

    def _sync(self) -> None:
        """Take in what the stand-in packer created since the last call."""
        if self.inbox is None or not self.inbox.is_dir():
            return
        for note in sorted(self.inbox.glob("*.json")):
            made = json.loads(note.read_text())
            note.unlink()
            self.create(
                made["target"],
                made["image"],
                made["version"],
                made["invocation"],
                region=made["region"],
                content=made.get("content", "").encode(),
                image_id=made["id"],
                state=made.get("state", ""),
            )

    # --- the Provider protocol -------------------------------------------------------------------

    def bind(self, target: str, spec: Any) -> None:
        self._enter("bind", target=target)
        self.specs[target] = spec

    def resolve(self, request: BakeRequest) -> Prepared:
        self._enter("resolve", image=request.eff.name, target=request.eff.target)
        return self._resolve(request)

    def _resolve(self, request: BakeRequest) -> Prepared:
        if request.parent is not None:
            return Prepared(base=request.parent.ref, base_dependency=None, parent=request.parent)
        dependency = provenance.Dependency(
            name=f"fake-image:{self.base}",
            uri=f"fake://images/{self.base}",
            digest={"sha256": hashlib.sha256(self.base.encode()).hexdigest()},
        )
        return Prepared(base=self.base, base_dependency=dependency, parent=None)

    def prepare(self, request: BakeRequest) -> Prepared:
        self._enter("prepare", image=request.eff.name, target=request.eff.target, invocation=request.invocation)
        self.prepared.append(request.invocation)
        return self._resolve(request)

    def before_build(self, request: BakeRequest, skeleton: dict[str, Any]) -> FakeMarks:
        self._enter("before_build", invocation=request.invocation)
        eff = request.eff
        self.marks[request.invocation] = (eff.target, eff.name, request.version)
        mark = {
            "target": eff.target,
            "image": eff.name,
            "version": request.version,
            "invocation": request.invocation,
            "inbox": str(self.inbox) if self.inbox else "",
        }
        if request.workdir.is_dir():
            (request.workdir / MARK_FILE).write_text(json.dumps(mark))
        return FakeMarks(fake_mark=request.invocation)

    def marked(
        self, target: str, name: str, *, version: str | None = None, invocation: str | None = None
    ) -> list[Leftover]:
        self._enter("marked", target=target, name=name, version=version, invocation=invocation)
        with self._lock:
            bakes: dict[str, list[FakeImage]] = {}
            for image in self._images.values():
                if image.invocation is None or image.target != target or image.name != name:
                    continue
                if version is not None and image.version != version:
                    continue
                if invocation is not None and image.invocation != invocation:
                    continue
                bakes.setdefault(image.invocation, []).append(image)
            return [_leftover(copies) for _bake, copies in sorted(bakes.items())]

    def heartbeat(self, target: str, name: str, owner: Owner) -> None:
        self._enter("heartbeat", target=target, name=name, invocation=owner.invocation)
        now = iso(datetime.now(UTC))
        with self._lock:
            for image in self._images.values():
                if image.invocation == owner.invocation and image.target == target and image.state != "complete":
                    image.owner = owner
                    image.heartbeat = now

    def remove(self, leftover: Leftover) -> list[str]:
        self._enter("remove", invocation=leftover.invocation, locations=leftover.locations)
        removed = []
        with self._lock:
            for location in leftover.locations:
                region, _, image_id = location.partition(":")
                image = self._images.get(image_id)
                if image is None or image.invocation != leftover.invocation:
                    continue  # gone already, or no longer this bake's
                del self._images[image_id]
                removed.append(f"{image_id} in {region}")
        return removed

    def publish(
        self,
        request: BakeRequest,
        prepared: Prepared,
        provenance: dict[str, Any],
        inputs_digest: str,
        artifacts: list[str],
        attestation: str | None = None,
    ) -> ImageRecord:
        self._enter("publish", invocation=request.invocation, artifacts=tuple(artifacts), attestation=attestation)
        copies = self._built(request, artifacts)
        with self._lock:
            for image in copies:  # the state last: until then, images() does not show it
                image.provenance = copy.deepcopy(provenance)
                image.inputs_digest = inputs_digest
                image.base = prepared.base
                image.parent = prepared.parent.ref if prepared.parent else None
                image.tags = {PREFIX + k: v for k, v in _stamp(provenance, image).items()}
                if attestation is not None:
                    image.tags[ATTESTATION_TAG] = attestation
            for image in copies:
                image.state = "complete"
                image.heartbeat = None
            return _record(copies)

    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        self._enter("images", target=target, name=name)
        with self._lock:
            bakes: dict[str, list[FakeImage]] = {}
            for image in self._images.values():
                if image.state != "complete" or image.target != target or (name and image.name != name):
                    continue
                bakes.setdefault(image.invocation or image.id, []).append(image)
            return [_record(copies) for copies in bakes.values()]

    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        self._enter("provenance", ref=record.ref)
        with self._lock:
            for location in record.locations:
                image = self._images.get(location.partition(":")[2])
                if image is not None and image.provenance is not None:
                    return copy.deepcopy(image.provenance)
        raise ProviderError(f"{record.ref}: {', '.join(record.locations)} no longer exists")

    def more_subjects(self, request: BakeRequest) -> list[tuple[str, dict[str, str]]]:
        return []  # an image of the fake cloud is the whole of what boots

    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, dict[str, str]]:
        self._enter("subject", invocation=request.invocation, artifacts=tuple(artifacts))
        copies = self._built(request, artifacts)
        digest = jcs.digest(_descriptor(copies)).removeprefix("sha256:")
        return f"fake:{copies[0].location}", {"sha256": digest}

    def descriptor(self, record: ImageRecord) -> dict[str, Any]:
        self._enter("descriptor", ref=record.ref)
        return _descriptor(self._located(record))

    def claims(self, record: ImageRecord) -> list[Claim]:
        self._enter("claims", ref=record.ref)
        with self._lock:
            return [
                Claim(
                    location=f"{image.id} in {image.region}",
                    stamp={
                        k[len(PREFIX) :]: v
                        for k, v in image.tags.items()
                        if k[len(PREFIX) :] in provenance.STAMP_FIELDS
                    },
                    names=NAMES,
                    attestation=image.tags.get(ATTESTATION_TAG),
                    document=copy.deepcopy(image.provenance),
                )
                for image in self._located(record)
            ]

    def mark_revoked(self, record: ImageRecord, *, at: str, reason: str, replacement: ImageRecord | None) -> str:
        self._enter("mark_revoked", ref=record.ref, at=at, reason=reason)
        revoked = {"at": at, "reason": reason, "replacement": replacement.ref if replacement else None}
        with self._lock:
            for image in self._located(record):
                image.revoked = dict(revoked)
        return f"fake: marked {', '.join(record.locations)} revoked from {at}"

    def unmark_revoked(self, record: ImageRecord) -> str:
        self._enter("unmark_revoked", ref=record.ref)
        with self._lock:
            for image in self._located(record):
                image.revoked = None
        return f"fake: {', '.join(record.locations)} no longer marked revoked"

    def _located(self, record: ImageRecord) -> list[FakeImage]:
        """The images of `record` (the live objects); ProviderError naming the first that is gone."""
        with self._lock:
            found = []
            for location in record.locations:
                image = self._images.get(location.partition(":")[2])
                if image is None:
                    raise ProviderError(f"{record.ref}: image {location} is gone")
                found.append(image)
            return found

    def package_db(self, request: BakeRequest) -> PackageDb:
        self._enter("package_db", invocation=request.invocation)
        return self.packages

    def scan(self, request: BakeRequest, secrets: Mapping[str, str]) -> None:
        self._enter("scan", invocation=request.invocation, names=tuple(sorted(secrets)))
        with self._lock:
            mine = [i for i in self._images.values() if i.invocation == request.invocation]
            for image in mine:
                for secret, value in secrets.items():
                    if value and value.encode() in image.content:
                        raise leaked(request.eff, secret, "image", log_path=str(request.log_path or ""))

    def _built(self, request: BakeRequest, artifacts: list[str]) -> list[FakeImage]:
        """The images Packer reported (`region:id`, comma-separated per artifact), which must be
        this bake's; ProviderError otherwise, as a cloud refuses to tag what is not there."""
        wanted = [part for artifact in artifacts for part in artifact.split(",") if part]
        with self._lock:
            found = []
            for location in wanted:
                image = self._images.get(location.partition(":")[2])
                if image is None or image.invocation != request.invocation:
                    raise ProviderError(f"Packer reported {location}, which is not an image of this bake")
                found.append(image)
        if not found:
            raise ProviderError(f"Packer reported no image (artifacts: {', '.join(artifacts) or 'none'})")
        return found


@dataclass
class _Action:
    run: Callable[[], object]
    times: int | None


def _ordered(copies: list[FakeImage]) -> list[FakeImage]:
    return sorted(copies, key=lambda i: (_moment(i.created), i.region, i.id))


def _moment(text: str) -> str:
    moment = utc(text)
    return iso(moment) if moment else text


def _leftover(copies: list[FakeImage]) -> Leftover:
    copies = _ordered(copies)
    first = copies[0]
    return Leftover(
        target=first.target,
        image=first.name,
        version=first.version,
        invocation=first.invocation or "",
        locations=tuple(i.location for i in copies),
        created=first.created,
        state=first.state,
        owner=first.owner if first.owner and first.owner.invocation == first.invocation else None,
        heartbeat=first.heartbeat,
    )


def _record(copies: list[FakeImage]) -> ImageRecord:
    copies = _ordered(copies)
    first = copies[0]
    return ImageRecord(
        name=first.name,
        version=first.version,
        target=first.target,
        kind="fake",
        inputs_digest=first.inputs_digest,
        created=first.created,
        base=first.base,
        parent=first.parent,
        locations=tuple(i.location for i in copies),
        subject_sha256=hashlib.sha256(first.content).hexdigest(),
        extra={
            "invocation": first.invocation,
            **({"attestation": first.tags[ATTESTATION_TAG]} if ATTESTATION_TAG in first.tags else {}),
            **({"revoked": dict(first.revoked)} if first.revoked else {}),
        },
        revoked_marks=tuple(f"{i.location} is marked revoked from {i.revoked['at']}" for i in copies if i.revoked),
    )


def _descriptor(copies: list[FakeImage]) -> dict[str, Any]:
    return {"kind": "fake", "images": {image.region: image.described() for image in copies}}


def _stamp(statement: Mapping[str, Any], image: FakeImage) -> dict[str, str]:
    """The stamp of the statement as published; tests that publish a statement of their own (`{}`)
    get the one the image knows."""
    try:
        return provenance.stamp_of(statement, state="complete")
    except (KeyError, TypeError):
        return {
            "image": image.name,
            "version": image.version,
            "target": image.target,
            "state": "complete",
            "inputs-digest": image.inputs_digest,
            "base": image.base,
            "parent": image.parent or "",
            "invocation": image.invocation or "",
        }


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass (for what a thread does)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
