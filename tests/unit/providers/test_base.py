"""The Provider contract (bakery/providers/base.py), stated as tests.

Each promise runs against the fake provider (tests/fakes/provider.py), which the service tests
use in place of a cloud, and, where that is cheap, against LocalProvider: a provider that
passes these keeps the promises build.py, leftovers.py and plan.py rely on.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bakery import runner
from bakery.bake import inputs
from bakery.core import provenance
from bakery.core.catalog import ImageRecord
from bakery.core.debris import Leftover, Owner
from bakery.errors import BakeryError, BuildError, Interrupted, ProviderError, UsageError
from bakery.progress import Recording
from bakery.providers.base import BakeRequest, BuildMarks, Prepared, Provider
from bakery.providers.local.provider import LocalProvider
from bakery.workspace import Workspace
from tests.fakes.provider import FakeProvider

TOOLS = {"packer": "1.6.6", "ansible": "2.17.0"}
GIT = {"uri": "file:///nowhere", "commit": None, "dirty": True}


@dataclass
class Subject:
    """A provider under test, the target it serves, and how a build makes an image for it."""

    provider: Provider
    target: str
    build: Callable[[BakeRequest], list[str]]  # -> Packer's artifact ids


def _fake(project_dir: Any, tmp_path: Path) -> Subject:
    return fake_subject(FakeProvider())


def fake_subject(fake: FakeProvider) -> Subject:
    def build(request: BakeRequest) -> list[str]:
        copies = [
            fake.create(request.eff.target, request.eff.name, request.version, request.invocation, region=region)
            for region in fake.regions
        ]
        return [",".join(c.location for c in copies)]

    return Subject(fake, "aws", build)


def _local(project_dir: Any, tmp_path: Path) -> Subject:
    def build(request: BakeRequest) -> list[str]:
        (request.workdir / "output").mkdir()
        (request.workdir / "output" / "disk.qcow2").write_bytes(b"disk of " + request.invocation.encode())
        (request.workdir / "output-vmlinuz").write_bytes(b"kernel")
        (request.workdir / "output-initrd.img").write_bytes(b"initrd")
        return [str(request.workdir / "output")]

    return Subject(LocalProvider(Workspace(project_dir.home), Recording()), "local", build)


@pytest.fixture(params=[_fake, _local], ids=["fake", "local"])
def subject(request: pytest.FixtureRequest, project_dir: Any, tmp_path: Path) -> Subject:
    made: Subject = request.param(project_dir, tmp_path)
    return made


@pytest.fixture()
def fake() -> FakeProvider:
    return FakeProvider()


def bake_request(project_dir: Any, target: str, version: str, invocation: str, tmp_path: Path) -> BakeRequest:
    project = project_dir.load()
    workdir = tmp_path / f"work-{invocation}"
    workdir.mkdir()
    return BakeRequest(
        project,
        project.effective("web", target),
        version,
        workdir,
        None,
        workdir / "bake.log",
        TOOLS,
        invocation=invocation,
        owner=Owner.current(invocation, "2026-01-01T00:00:00Z"),
    )


def bake(subject: Subject, project_dir: Any, tmp_path: Path, version: str, invocation: str) -> ImageRecord:
    """What Baker does with a provider, in order, minus Packer: resolve, mark, build, record."""
    request = bake_request(project_dir, subject.target, version, invocation, tmp_path)
    provider = subject.provider
    prepared = provider.resolve(request)
    digest = f"sha256:{invocation:0>64}"
    skeleton = inputs.statement_skeleton(
        request.project,
        request.eff,
        version=version,
        prepared=prepared,
        digest=digest,
        tools=TOOLS,
        git=GIT,
        invocation=invocation,
        started="2026-01-01T00:00:00Z",
        builder="fake",
    )
    assert isinstance(provider.before_build(request, skeleton), BuildMarks)
    artifacts = subject.build(request)
    name, digest_set = provider.subject(request, artifacts)
    statement = provenance.finalize(
        skeleton, subject_name=name, subject_digest=digest_set, finished="2026-01-01T00:09:00Z"
    )
    return provider.publish(request, prepared, statement, digest, artifacts)


# --- promises every provider keeps -----------------------------------------------------------------


def test_a_target_with_nothing_baked_lists_nothing(subject: Subject) -> None:
    assert subject.provider.images(subject.target, "web") == []
    assert subject.provider.images(subject.target) == []
    assert subject.provider.marked(subject.target, "web") == []


def test_resolve_looks_up_without_making_anything(subject: Subject, project_dir: Any, tmp_path: Path) -> None:
    request = bake_request(project_dir, subject.target, "1.0.0", "abc123abc123", tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    first = subject.provider.resolve(request)
    assert isinstance(first, Prepared)
    assert first.base and first.parent is None
    assert subject.provider.resolve(request) == first  # the same answer, asked twice
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert subject.provider.images(subject.target) == []


def test_a_published_image_is_listed_with_its_digest_and_provenance(
    subject: Subject, project_dir: Any, tmp_path: Path
) -> None:
    record = bake(subject, project_dir, tmp_path, "1.0.0", "aaaa11112222")
    assert (record.name, record.version, record.target) == ("web", "1.0.0", subject.target)
    listed = subject.provider.images(subject.target, "web")
    assert [(r.ref, r.inputs_digest, r.locations) for r in listed] == [
        ("web@1.0.0", f"sha256:{'aaaa11112222':0>64}", record.locations)
    ]
    assert subject.provider.images(subject.target, "api") == []
    statement = subject.provider.provenance(listed[0])
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["version"] == "1.0.0"
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == "aaaa11112222"
    assert statement["subject"][0]["digest"]


def test_marked_never_returns_what_a_bake_did_not_mark_and_remove_skips_what_is_gone(subject: Subject) -> None:
    if isinstance(subject.provider, FakeProvider):
        subject.provider.create(subject.target, "web", "1.0.0", None)  # someone's own image, named alike
    assert subject.provider.marked(subject.target, "web") == []
    gone = Leftover(subject.target, "web", "1.0.9", "0badc0ffee00", ("region-a:img-404",), "2026-01-01T00:00:00Z")
    assert subject.provider.remove(gone) == []
    subject.provider.heartbeat(subject.target, "web", Owner.current("0badc0ffee00", "2026-01-01T00:00:00Z"))
    assert subject.provider.marked(subject.target, "web") == []


def test_before_build_gives_extra_variables(subject: Subject, project_dir: Any, tmp_path: Path) -> None:
    request = bake_request(project_dir, subject.target, "1.0.0", "feedfeedfeed", tmp_path)
    extra = subject.provider.before_build(request, {})
    assert isinstance(extra, BuildMarks)
    if isinstance(subject.provider, FakeProvider):  # it creates images outside the work directory: they carry the mark
        assert "feedfeedfeed" in extra.as_dict().values()


# --- marks, owners, heartbeats (what providers that create images elsewhere promise) ---------------


def test_marked_gives_one_leftover_per_bake_with_its_regional_copies(fake: FakeProvider) -> None:
    fake.create("aws", "web", "1.0.3", "bbbb", region="region-b", created="2026-01-01T00:00:09Z", image_id="img-2")
    fake.create("aws", "web", "1.0.3", "bbbb", region="region-a", created="2026-01-01T00:00:05Z", image_id="img-1")
    fake.create("aws", "web", "1.0.4", "cccc", state="pending", image_id="img-3", created="2026-01-01T00:01:00Z")
    fake.create("aws", "api", "1.0.3", "dddd", image_id="img-4")  # another image
    fake.create("gcp", "web", "1.0.3", "eeee", image_id="img-5")  # another target

    found = fake.marked("aws", "web")
    assert found == [
        Leftover("aws", "web", "1.0.3", "bbbb", ("region-a:img-1", "region-b:img-2"), "2026-01-01T00:00:05Z"),
        Leftover("aws", "web", "1.0.4", "cccc", ("region-a:img-3",), "2026-01-01T00:01:00Z", state="pending"),
    ]
    assert [x.invocation for x in fake.marked("aws", "web", version="1.0.4")] == ["cccc"]
    assert [x.invocation for x in fake.marked("aws", "web", invocation="bbbb")] == ["bbbb"]
    assert fake.marked("aws", "web", version="1.0.4", invocation="bbbb") == []


def test_marked_shows_images_in_every_state_images_only_complete_ones(
    fake: FakeProvider, project_dir: Any, tmp_path: Path
) -> None:
    subject = fake_subject(fake)
    bake(subject, project_dir, tmp_path, "1.0.0", "aaaa11112222")
    fake.create("aws", "web", "1.0.1", "bbbb11112222", state="pending")
    assert [(x.version, x.state) for x in fake.marked("aws", "web")] == [("1.0.0", "complete"), ("1.0.1", "pending")]
    assert [r.version for r in fake.images("aws", "web")] == ["1.0.0"]


def test_heartbeat_writes_the_owner_on_what_this_bake_created_so_far(fake: FakeProvider) -> None:
    fake.create("aws", "web", "1.0.3", "mine", region="region-a")
    fake.create("aws", "web", "1.0.3", "mine", region="region-b")
    fake.create("aws", "web", "1.0.2", "other")
    assert fake.marked("aws", "web", invocation="mine")[0].owner is None  # until the bake wrote it

    owner = Owner("mine", "builder-1", 4242, "b00t", "2026-01-01T00:00:00Z")
    fake.heartbeat("aws", "web", owner)
    (mine,) = fake.marked("aws", "web", invocation="mine")
    assert mine.owner == owner and mine.heartbeat is not None
    (other,) = fake.marked("aws", "web", invocation="other")
    assert other.owner is None and other.heartbeat is None


def test_two_images_claiming_one_version_are_two_records(fake: FakeProvider, project_dir: Any, tmp_path: Path) -> None:
    subject = fake_subject(fake)
    bake(subject, project_dir, tmp_path, "1.0.0", "aaaa11112222")
    bake(subject, project_dir, tmp_path, "1.0.0", "bbbb11112222")
    listed = fake.images("aws", "web")
    assert sorted(r.extra["invocation"] for r in listed) == ["aaaa11112222", "bbbb11112222"]
    assert [r.ref for r in listed] == ["web@1.0.0", "web@1.0.0"]


def test_remove_deletes_every_copy_says_what_and_spares_other_bakes(fake: FakeProvider) -> None:
    fake.create("aws", "web", "1.0.3", "mine", region="region-a", image_id="img-1")
    fake.create("aws", "web", "1.0.3", "mine", region="region-b", image_id="img-2")
    fake.create("aws", "web", "1.0.3", "rival", image_id="img-3")
    (mine,) = fake.marked("aws", "web", invocation="mine")
    fake.delete("img-2")  # gone meanwhile: skipped, not an error

    assert fake.remove(mine) == ["img-1 in region-a"]
    assert [i.id for i in fake.all_images()] == ["img-3"]
    assert fake.remove(mine) == []


def test_remove_leaves_an_image_that_is_no_longer_the_bakes(fake: FakeProvider) -> None:
    fake.create("aws", "web", "1.0.3", "mine", image_id="img-1")
    (mine,) = fake.marked("aws", "web")
    fake.delete("img-1")
    fake.create("aws", "web", "1.0.3", "another", image_id="img-1")  # the id now names another image
    assert fake.remove(mine) == []
    assert [i.invocation for i in fake.all_images()] == ["another"]


# --- errors --------------------------------------------------------------------------------------


def test_a_record_whose_image_is_gone_has_no_provenance_a_provider_error(
    fake: FakeProvider, project_dir: Any, tmp_path: Path
) -> None:
    subject = fake_subject(fake)
    record = bake(subject, project_dir, tmp_path, "1.0.0", "aaaa11112222")
    for image in fake.all_images():
        fake.delete(image.id)
    with pytest.raises(ProviderError, match=r"web@1\.0\.0: region-a:img-\d+, region-b:img-\d+ no longer exists"):
        fake.provenance(record)


def test_nothing_built_cannot_be_recorded(fake: FakeProvider, project_dir: Any, tmp_path: Path) -> None:
    request = bake_request(project_dir, "aws", "1.0.0", "aaaa11112222", tmp_path)
    prepared = fake.prepare(request)
    with pytest.raises(ProviderError, match=r"Packer reported no image \(artifacts: none\)"):
        fake.subject(request, [])
    with pytest.raises(ProviderError, match="not an image of this bake"):
        fake.publish(request, prepared, {}, "sha256:x", ["region-a:img-404"])
    assert fake.images("aws") == []


def test_scan_names_the_secret_found_never_its_value(fake: FakeProvider, project_dir: Any, tmp_path: Path) -> None:
    project_dir.write(
        project_dir.config.read_text().replace("    tags:\n", "    secrets: {api_token: API_TOKEN}\n    tags:\n")
    )
    request = bake_request(project_dir, "aws", "1.0.0", "aaaa11112222", tmp_path)
    fake.create("aws", "web", "1.0.0", "aaaa11112222", content=b"...hunter2-hunter2...")
    fake.scan(request, {"api_token": "not-in-there"})
    with pytest.raises(BuildError) as caught:
        fake.scan(request, {"api_token": "hunter2-hunter2"})
    assert caught.value.message == (
        "secret 'api_token' (from $API_TOKEN) was found in the built image; refusing to record it"
    )
    assert "hunter2" not in caught.value.message


@pytest.mark.parametrize(
    "method",
    [
        "resolve",
        "prepare",
        "before_build",
        "marked",
        "heartbeat",
        "remove",
        "publish",
        "images",
        "provenance",
        "subject",
    ],
)
def test_every_method_fails_as_a_provider_error_when_the_cloud_refuses(
    fake: FakeProvider, project_dir: Any, tmp_path: Path, method: str
) -> None:
    request = bake_request(project_dir, "aws", "1.0.0", "aaaa11112222", tmp_path)
    leftover = Leftover("aws", "web", "1.0.0", "x", (), "")
    record = ImageRecord("web", "1.0.0", "aws", "fake", "sha256:x", "", "b")
    calls: dict[str, Callable[[], object]] = {
        "resolve": lambda: fake.resolve(request),
        "prepare": lambda: fake.prepare(request),
        "before_build": lambda: fake.before_build(request, {}),
        "marked": lambda: fake.marked("aws", "web"),
        "heartbeat": lambda: fake.heartbeat("aws", "web", Owner.current("x", "")),
        "remove": lambda: fake.remove(leftover),
        "publish": lambda: fake.publish(request, fake.resolve(request), {}, "sha256:x", []),
        "images": lambda: fake.images("aws"),
        "provenance": lambda: fake.provenance(record),
        "subject": lambda: fake.subject(request, []),
    }
    fake.fail(method)
    with pytest.raises(BakeryError, match=f"fake cloud: {method} refused"):
        calls[method]()
    assert fake.called(method), "the failed call is logged too"
    fake.fail(method, UsageError("told otherwise"))
    with pytest.raises(UsageError, match="told otherwise"):
        calls[method]()


def test_a_fault_fires_as_often_as_asked(fake: FakeProvider) -> None:
    fake.fail("images", times=2)
    for _ in range(2):
        with pytest.raises(ProviderError):
            fake.images("aws")
    assert fake.images("aws") == []


def test_a_signal_while_waiting_for_the_cloud_stops_the_job(fake: FakeProvider) -> None:
    fake.interrupt("images", signal.SIGTERM)
    with pytest.raises(Interrupted) as caught, runner.signal_guard():
        fake.images("aws")
        pytest.fail("the call went on after the signal")
    assert caught.value.exit_code == 143
    assert caught.value.message == "interrupted by signal SIGTERM"


def test_an_interrupt_outside_a_guarded_job_is_refused_rather_than_killing_the_tests(fake: FakeProvider) -> None:
    fake.interrupt("images", signal.SIGTERM)
    with pytest.raises(RuntimeError, match=r"needs runner\.signal_guard"):
        fake.images("aws")
    assert os.getpid()  # still here


# --- LocalProvider alone -------------------------------------------------------------------------


def test_local_refuses_a_target_of_another_kind(project_dir: Any, tmp_path: Path) -> None:
    request = bake_request(project_dir, "aws", "1.0.0", "aaaa11112222", tmp_path)
    provider = LocalProvider(Workspace(project_dir.home), Recording())
    with pytest.raises(UsageError, match="target 'aws' is aws, not local"):
        provider.prepare(request)
    assert list(request.workdir.iterdir()) == []  # no build key written


def test_local_never_records_a_version_twice(project_dir: Any, tmp_path: Path) -> None:
    subject = _local(project_dir, tmp_path)
    bake(subject, project_dir, tmp_path, "1.0.0", "aaaa11112222")
    with pytest.raises(BakeryError, match=r"web@1\.0\.0 on local is already in the catalog"):
        bake(subject, project_dir, tmp_path, "1.0.0", "bbbb11112222")
    assert [r.extra.get("invocation") for r in subject.provider.images("local")] == [None]
    assert len(subject.provider.images("local")) == 1
