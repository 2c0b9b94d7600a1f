"""The GCP provider against the fake Compute server, through the real google-cloud-compute client.

Operations finish a second after they are accepted, as GCE's may: a change is made only then.
Each test plays the Baker's part (resolve, before_build, Packer's insert, subject, publish) or
seeds what an interrupted bake left, and checks what a user would see: the labels on the image,
the catalog, the messages.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakery.bake import inputs
from bakery.config import load as config
from bakery.core import provenance
from bakery.core.debris import Leftover, Owner, iso, judge, utc
from bakery.errors import ProviderError
from bakery.progress import Recording
from bakery.providers.base import BakeRequest, Prepared
from bakery.providers.gcp import api as gcp_api
from bakery.providers.gcp.provider import GcpProvider, default_clients
from tests.fakes.gce import FakeGce

PROJECT = "bakery-test"
LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
DIGEST = "sha256:" + "5e" * 32
STARTED = "2026-03-01T10:00:00Z"


@pytest.fixture()
def gce() -> Iterator[FakeGce]:
    with FakeGce(operation_delay=1.0) as fake:
        fake.add_image("debian-cloud", "debian-12-bookworm-v20260101", family="debian-12")
        yield fake


@pytest.fixture()
def reporter() -> Recording:
    return Recording()


def provider_for(gce: FakeGce | str, reporter: Recording, **options: Any) -> GcpProvider:
    endpoint = gce if isinstance(gce, str) else gce.endpoint
    provider = GcpProvider(reporter, default_clients, **options)
    provider.bind("gcp", config_spec(endpoint))
    return provider


def config_spec(endpoint: str) -> Any:
    from bakery.config.models import GcpTarget

    return GcpTarget(kind="gcp", project=PROJECT, zone="europe-west1-b", endpoint=endpoint)


@pytest.fixture()
def provider(gce: FakeGce, reporter: Recording) -> GcpProvider:
    return provider_for(gce, reporter)


def project_for(tmp_path: Path, endpoint: str, source: dict[str, str], tags: dict[str, str] | None = None) -> Any:
    data = {
        "targets": {"gcp": {"kind": "gcp", "project": PROJECT, "zone": "europe-west1-b", "endpoint": endpoint}},
        "images": {
            "web": {
                "version": "1.0",
                "description": "the web image",
                "playbooks": ["site.yml"],
                "tags": tags or {"team": "Web Shop"},
                "source": {"gcp": source},
            }
        },
    }
    (tmp_path / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    (tmp_path / "images.yaml").write_text(yaml.safe_dump(data))
    return config.load(tmp_path / "images.yaml")


class Bake:
    """One bake of `web` on `gcp`, the Baker's steps by hand; `create()` is Packer's insert."""

    def __init__(self, provider: GcpProvider, gce: FakeGce, project: Any, invocation: str, version: str = "1.0.0"):
        self.provider, self.gce = provider, gce
        eff = project.effective("web", "gcp")
        self.owner = Owner.current(invocation, iso(datetime.now(UTC)))  # this process: alive
        self.request = BakeRequest(
            project, eff, version, Path("."), None, invocation=invocation, owner=self.owner, tools={"packer": "1.6.6"}
        )
        self.prepared: Prepared = provider.prepare(self.request)
        self.skeleton = inputs.statement_skeleton(
            project,
            eff,
            version=version,
            prepared=self.prepared,
            digest=DIGEST,
            tools={"packer": "1.6.6", "ansible": "2.17.0"},
            git={"uri": "git+file:///src", "commit": "c0ffee" * 6 + "c0ff", "dirty": False},
            invocation=invocation,
            started=STARTED,
            builder="googlecompute",
            files={},
        )
        self.variables = provider.before_build(self.request, self.skeleton)
        self.name = f"web-{version.replace('.', '-')}"

    def create(self) -> dict[str, Any]:
        """What googlecompute does at the end of a build: insert the image, labelled and described."""
        labels = {**provenance.gcp_labels(self.request.eff.tags), **self.variables.gcp_build_labels}
        return self.gce.add_image(
            PROJECT, self.name, family="web", labels=labels, description=self.variables.image_description
        )

    def publish(self) -> Any:
        name, digest = self.provider.subject(self.request, [self.name])
        statement = provenance.finalize(
            self.skeleton, subject_name=name, subject_digest=digest, finished="2026-03-01T10:20:00Z"
        )
        return self.provider.publish(self.request, self.prepared, statement, DIGEST, [self.name])


# --- publish ------------------------------------------------------------------------------------


def test_publish_waits_for_done_writes_labels_once_reads_them_back(
    tmp_path: Path, gce: FakeGce, provider: GcpProvider
) -> None:
    bake = Bake(
        provider, gce, project_for(tmp_path, gce.endpoint, {"family": "debian-12", "project": "debian-cloud"}), "a1" * 6
    )
    created = bake.create()
    assert provenance.gcp_stamp(created["labels"])[0]["state"] == "pending"
    gce.reset_requests()

    started = time.monotonic()
    record = bake.publish()

    assert time.monotonic() - started >= 1.0  # it waited for the operation
    assert gce.set_labels_calls(PROJECT, "web-1-0-0") == 1
    assert gce.count("DELETE") == 0
    assert gce.count("GET", f"/compute/v1/projects/{PROJECT}/global/operations/") >= 1
    # read back after DONE: the last request is the image, with its final labels
    assert gce.requests[-1] == ("GET", f"/compute/v1/projects/{PROJECT}/global/images/web-1-0-0")
    labels = gce.image(PROJECT, "web-1-0-0")["labels"]
    stamp, problems = provenance.gcp_stamp(labels)
    assert problems == {}
    assert (stamp["state"], stamp["version"], stamp["inputs-digest"]) == ("complete", "1.0.0", DIGEST)
    assert stamp["invocation"] == "a1" * 6
    assert provenance.user_labels(labels) == {"team": "Web Shop"}
    assert not any(k.startswith(("bakery-owner-", "bakery-heartbeat")) for k in labels)
    assert (record.ref, record.locations, record.base) == (
        "web@1.0.0",
        (f"{PROJECT}/web-1-0-0",),
        "debian-cloud/debian-12-bookworm-v20260101",
    )
    assert [r.ref for r in provider.images("gcp")] == ["web@1.0.0"]


def test_publish_that_cannot_write_labels_fails_and_deletes_nothing(
    tmp_path: Path, gce: FakeGce, reporter: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = provider_for(gce, reporter)
    waits: list[float] = []
    bake = Bake(
        provider, gce, project_for(tmp_path, gce.endpoint, {"family": "debian-12", "project": "debian-cloud"}), "a2" * 6
    )
    bake.create()
    gce.fail_next(412, 10, method="POST", path_contains="setLabels")
    monkeypatch.setattr(gcp_api, "pause", waits.append)  # 412s are synchronous: no operation to wait for
    with pytest.raises(ProviderError, match="did not stick after 6 attempts"):
        bake.publish()
    assert len(waits) == 6 and waits[0] < 1 and waits[-1] >= 4  # backing off
    assert gce.count("DELETE") == 0
    assert provenance.gcp_stamp(gce.image(PROJECT, "web-1-0-0")["labels"])[0]["state"] == "pending"
    assert sum("reading them again" in n for n in reporter.notes) == 6


def test_publish_refuses_an_image_another_bake_made(tmp_path: Path, gce: FakeGce, provider: GcpProvider) -> None:
    project = project_for(tmp_path, gce.endpoint, {"family": "debian-12", "project": "debian-cloud"})
    Bake(provider, gce, project, "0e" * 6).create()
    mine = Bake(provider, gce, project, "a3" * 6)
    with pytest.raises(ProviderError, match=f"not this bake's .*invocation {'0e' * 6}"):
        mine.publish()
    assert gce.set_labels_calls(PROJECT, "web-1-0-0") == 0


def test_label_races_and_5xx_are_resolved_by_reading_again(tmp_path: Path, gce: FakeGce, reporter: Recording) -> None:
    provider = provider_for(gce, reporter)
    bake = Bake(
        provider, gce, project_for(tmp_path, gce.endpoint, {"family": "debian-12", "project": "debian-cloud"}), "a4" * 6
    )
    bake.create()
    gce.fail_next(503, method="POST", path_contains="setLabels")
    gce.fail_next(412, method="POST", path_contains="setLabels")
    bake.publish()
    assert gce.set_labels_calls(PROJECT, "web-1-0-0") == 3
    assert provenance.gcp_stamp(gce.image(PROJECT, "web-1-0-0")["labels"])[0]["state"] == "complete"
    assert [n.split(": ", 1)[1] for n in reporter.notes] == [
        "503 ServiceUnavailable; reading them again",
        "412 PreconditionFailed; reading them again",
    ]


def test_long_source_name_is_recorded_whole(tmp_path: Path, gce: FakeGce, provider: GcpProvider) -> None:
    source_project, source_name = "p" * 29 + "1", "d" + "-x" * 30 + "z1"  # 30 and 63 characters: GCP's limits
    assert (len(source_project), len(source_name)) == (30, 63)
    gce.add_image(source_project, source_name)
    bake = Bake(
        provider, gce, project_for(tmp_path, gce.endpoint, {"image": source_name, "project": source_project}), "a5" * 6
    )
    labels = bake.variables.gcp_build_labels
    assert all(LABEL.match(k) and LABEL.match(v) for k, v in labels.items()), labels
    assert labels["bakery-base"].startswith(provenance.GCP_DIGEST_MARK)
    bake.create()
    record = bake.publish()

    base = f"{source_project}/{source_name}"
    assert record.base == base
    (listed,) = provider.images("gcp", "web")
    assert listed.base == base  # from the label's digest and the provenance in the description
    statement = provider.provenance(listed)
    assert statement["predicate"]["buildDefinition"]["internalParameters"]["base"] == base
    assert f"gce-image:{base}" in {d["name"] for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}


# --- reading what others wrote --------------------------------------------------------------------


def complete_labels(version: str, **extra: str) -> dict[str, str]:
    stamp = {"image": "web", "version": version, "target": "gcp", "state": "complete", "inputs-digest": DIGEST}
    return {**provenance.gcp_stamp_labels(stamp), **extra}


def test_labels_bakery_cannot_read_are_reported_and_skipped(
    gce: FakeGce, provider: GcpProvider, reporter: Recording
) -> None:
    gce.add_image(PROJECT, "web-1-0-0", labels=complete_labels("1.0.0", cost_center="a_b"))  # hand-made user label
    gce.add_image(PROJECT, "web-1-0-1", labels={**complete_labels("1.0.1"), "bakery-version": "garbage_zz"})
    gce.add_image(PROJECT, "web-1-0-2", labels={**complete_labels("1.0.2"), "bakery-version": "latest"})
    gce.add_image(PROJECT, "web-1-0-3", labels=complete_labels("1.0.3", **{"bakery-commit": "abc_def"}))
    gce.add_image(PROJECT, "web-1-0-4", labels={**complete_labels("1.0.4"), "bakery-inputs-digest": "nope"})
    gce.add_image(PROJECT, "hand-made", labels={"team": "a_b", "bakery-target": "gcp"})
    gce.add_image(PROJECT, "not-bakery", labels={"team": "a_b"})

    records = provider.images("gcp")

    assert sorted(r.version for r in records) == ["1.0.0", "1.0.3"]
    assert provenance.user_labels(next(r for r in records if r.version == "1.0.0").extra["labels"]) == {
        "cost_center": "a_b"
    }
    notes = "\n".join(reporter.notes)
    assert f"skipping GCP image {PROJECT}/web-1-0-1: " in notes and "garbage_zz" in notes
    assert f"skipping GCP image {PROJECT}/web-1-0-2: " in notes and "not a MAJOR.MINOR.PATCH version" in notes
    assert f"skipping GCP image {PROJECT}/web-1-0-4: " in notes
    assert f"GCP image {PROJECT}/web-1-0-3: ignoring a label bakery cannot read: label bakery-commit=" in notes
    assert "hand-made" not in notes and "not-bakery" not in notes  # not complete, not bakery's: not listed


# --- what bakes leave behind ------------------------------------------------------------------------


def test_marked_finds_an_interrupted_bake_and_remove_deletes_it(
    tmp_path: Path, gce: FakeGce, provider: GcpProvider
) -> None:
    bake = Bake(
        provider, gce, project_for(tmp_path, gce.endpoint, {"family": "debian-12", "project": "debian-cloud"}), "b1" * 6
    )
    created = bake.create()  # the bake was interrupted here
    gce.add_image(PROJECT, "web-1-0-9", labels=complete_labels("1.0.9", **{"bakery-invocation": "c1" * 6}))

    (leftover,) = provider.marked("gcp", "web", invocation="b1" * 6)
    assert leftover == Leftover(
        target="gcp",
        image="web",
        version="1.0.0",
        invocation="b1" * 6,
        locations=(f"{PROJECT}/web-1-0-0",),
        created=created["creationTimestamp"],
        state="pending",
        owner=bake.owner,
        heartbeat=None,
    )
    assert [m.invocation for m in provider.marked("gcp", "web")] == ["b1" * 6, "c1" * 6]
    assert [m.state for m in provider.marked("gcp", "web", version="1.0.9")] == ["complete"]
    assert provider.marked("gcp", "web", invocation="d1" * 6) == []
    assert provider.marked("gcp", "db") == []

    gce.reset_requests()
    assert provider.remove(leftover) == [f"image {PROJECT}/web-1-0-0"]
    assert "web-1-0-0" not in gce.images[PROJECT] and "web-1-0-9" in gce.images[PROJECT]
    assert gce.count("DELETE") == 1
    assert gce.count("GET", f"/compute/v1/projects/{PROJECT}/global/operations/") >= 1  # waited for DONE
    assert provider.remove(leftover) == []  # already gone is fine


def test_remove_leaves_an_image_that_is_no_longer_the_bakes(
    gce: FakeGce, provider: GcpProvider, reporter: Recording
) -> None:
    gce.add_image(PROJECT, "web-1-0-0", labels=complete_labels("1.0.0", **{"bakery-invocation": "e1" * 6}))
    stale = Leftover("gcp", "web", "1.0.0", "f1" * 6, (f"{PROJECT}/web-1-0-0",), "2026-01-01T00:00:00Z", "pending")
    assert provider.remove(stale) == []
    assert "web-1-0-0" in gce.images[PROJECT]
    assert gce.count("DELETE") == 0
    assert reporter.notes == [f"not removing GCP image {PROJECT}/web-1-0-0: it is no longer bake {'f1' * 6}'s"]


def test_heartbeat_is_written_and_read_back(tmp_path: Path, gce: FakeGce, provider: GcpProvider) -> None:
    project = project_for(tmp_path, gce.endpoint, {"family": "debian-12", "project": "debian-cloud"})
    bake = Bake(provider, gce, project, "b2" * 6)
    other = Bake(provider, gce, project, "b3" * 6, version="1.0.1")
    bake.create()
    other.create()
    gce.add_image(PROJECT, "web-1-0-9", labels=complete_labels("1.0.9", **{"bakery-invocation": "b2" * 6}))

    before = datetime.now(UTC).replace(microsecond=0)
    provider.heartbeat("gcp", "web", bake.owner)

    (leftover,) = [m for m in provider.marked("gcp", "web", invocation="b2" * 6) if m.state == "pending"]
    assert leftover.owner == bake.owner
    beat = utc(leftover.heartbeat)
    assert beat is not None and before <= beat <= datetime.now(UTC)
    assert judge(leftover).dead is False  # this process, on this host
    assert gce.set_labels_calls(PROJECT, "web-1-0-0") == 1
    assert gce.set_labels_calls(PROJECT, "web-1-0-1") == 0  # another bake's
    assert gce.set_labels_calls(PROJECT, "web-1-0-9") == 0  # complete: never changed


# --- errors -------------------------------------------------------------------------------------------


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    ("fault", "options", "expected"),
    [
        ("html-500", {"deadline": 0.5}, r"500 an HTML page, not the API's answer \(Error 500 \(Server Error\)!!1\)"),
        ("html-200", {}, r"the endpoint's answer is not a Compute API answer"),
        ("hang", {"timeout": 0.5}, r"127\.0\.0\.1:\d+ did not answer in time"),
        ("drop", {}, r"127\.0\.0\.1:\d+ closed the connection without answering"),
        ("cut", {}, r"the answer from the endpoint was cut off"),
        ("refused", {}, r"cannot reach 127\.0\.0\.1:\d+: Connection refused"),
        ("503", {"deadline": 0.5}, r"still failing after retries: 503 The service is currently unavailable\."),
        ("403", {}, r"403 Required 'compute\.images\.list' permission"),
    ],
)
def test_errors_are_one_line_provider_errors(
    gce: FakeGce, reporter: Recording, fault: str, options: dict[str, float], expected: str
) -> None:
    endpoint = closed_port() if fault == "refused" else gce.endpoint
    provider = provider_for(endpoint, reporter, **options)
    if fault.startswith("html"):
        gce.fail_next(int(fault[5:]), 100, html=True)
    elif fault == "hang":
        gce.hang_next()
    elif fault == "drop":
        gce.drop_next()
    elif fault == "cut":
        gce.add_image(PROJECT, "web-1-0-0", labels={"bakery-target": "gcp"})  # a body long enough to cut
        gce.cut_next()
    elif fault == "503":
        gce.fail_next(503, 100)
    elif fault == "403":
        gce.fail_next(403, message="Required 'compute.images.list' permission for 'projects/bakery-test'")
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        provider.images("gcp")
    assert time.monotonic() - started < 5
    message = info.value.message
    assert "\n" not in message and "<" not in message and len(message) < 200, message
    assert message.startswith("GCP: listing images: ")
    assert re.search(expected, message), message
    assert info.value.exit_code == 1


def test_every_public_method_maps_errors(tmp_path: Path, gce: FakeGce, reporter: Recording) -> None:
    provider = provider_for(gce, reporter)
    project = project_for(tmp_path, gce.endpoint, {"family": "debian-12", "project": "debian-cloud"})
    bake = Bake(provider, gce, project, "b4" * 6)
    bake.create()
    (leftover,) = provider.marked("gcp", "web")
    record = provider.images("gcp")  # nothing complete yet
    assert record == []
    calls: dict[str, Callable[[], object]] = {
        "resolve": lambda: provider.resolve(bake.request),
        "subject": lambda: provider.subject(bake.request, [bake.name]),
        "publish": bake.publish,
        "images": lambda: provider.images("gcp"),
        "marked": lambda: provider.marked("gcp", "web"),
        "heartbeat": lambda: provider.heartbeat("gcp", "web", bake.owner),
        "remove": lambda: provider.remove(leftover),
    }
    provider._resolved.clear()
    for what, call in calls.items():
        provider._resolved.clear()
        gce.drop_next()
        with pytest.raises(ProviderError, match="closed the connection without answering"):
            call()
        assert not gce._fail_rules, what
    broken = provider_for(gce, reporter)
    bake.publish()
    (complete,) = broken.images("gcp")
    complete.extra["description"] = "not a provenance" + provenance.DESCRIPTION_MARKER + "%%%"
    with pytest.raises(ProviderError, match="holds no bakery provenance"):
        broken.provenance(complete)


def test_an_operation_that_never_finishes_is_an_error(tmp_path: Path, reporter: Recording) -> None:
    with FakeGce(operation_delay=30) as gce:
        provider = provider_for(gce, reporter, operation_deadline=0.5)
        gce.add_image(PROJECT, "web-1-0-0", labels=complete_labels("1.0.0", **{"bakery-invocation": "b5" * 6}))
        (leftover,) = provider.marked("gcp", "web")
        with pytest.raises(ProviderError, match=r"deleting image .*: operation operation-\S+ was not done after 0.5s"):
            provider.remove(leftover)


def test_an_operation_that_fails_is_an_error(gce: FakeGce, provider: GcpProvider) -> None:
    gce.add_image(PROJECT, "web-1-0-0", labels=complete_labels("1.0.0", **{"bakery-invocation": "b6" * 6}))
    (leftover,) = provider.marked("gcp", "web")
    gce.fail_operation_next(400, "The image resource 'web-1-0-0' is already being used", operation_type="delete")
    with pytest.raises(ProviderError) as info:
        provider.remove(leftover)
    assert info.value.message == (
        f"GCP: deleting image {PROJECT}/web-1-0-0: 400 INVALID: The image resource 'web-1-0-0' is already being used"
    )
    assert "web-1-0-0" in gce.images[PROJECT]


def test_client_factory_builds_the_client_the_service_names(gce: FakeGce) -> None:
    from google.cloud import compute_v1

    images = default_clients("images", PROJECT, gce.endpoint)
    operations = default_clients("globalOperations", PROJECT, gce.endpoint)
    assert isinstance(images, compute_v1.ImagesClient)
    assert isinstance(operations, compute_v1.GlobalOperationsClient)
    assert images._transport._host == operations._transport._host == gce.endpoint
    groups = default_clients("regionInstanceGroupManagers", PROJECT, gce.endpoint)  # the group driver's
    assert isinstance(groups, compute_v1.RegionInstanceGroupManagersClient)
    with pytest.raises(LookupError, match="no GCP client for service 'snapshots'"):
        default_clients("snapshots", PROJECT, gce.endpoint)
