# mypy: disable-error-code="no-untyped-call"
"""The fake Compute Engine server (tests/fakes/gce.py) driven by the real google-cloud-compute client."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.api_core import exceptions
from google.api_core.retry import Retry, if_exception_type
from google.cloud import compute_v1

from tests.fakes.gce import FakeGce, compile_filter, global_operations_client, images_client, wait_done

PROJECT = "bakery-test"
IMAGES = f"/compute/v1/projects/{PROJECT}/global/images"
OPERATIONS = f"/compute/v1/projects/{PROJECT}/global/operations"


@pytest.fixture()
def gce() -> Iterator[FakeGce]:
    with FakeGce() as fake:
        yield fake


@pytest.fixture()
def client(gce: FakeGce) -> compute_v1.ImagesClient:
    return images_client(gce.endpoint)


def _ts(minutes: int) -> str:
    return (dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)).isoformat()


def _fast_retry() -> Retry:
    return Retry(
        predicate=if_exception_type(exceptions.TooManyRequests, exceptions.ServiceUnavailable),
        initial=0.01,
        maximum=0.05,
        timeout=5,
    )


# ------------------------------------------------------------------------------------------- basics


def test_http_endpoint_is_used_as_is(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    assert gce.endpoint.startswith("http://127.0.0.1:")
    gce.add_image(PROJECT, "web-1")
    client.get(project=PROJECT, image="web-1")
    assert gce.requests == [("GET", f"{IMAGES}/web-1")]


def test_seed_and_get(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    seeded = gce.add_image(
        PROJECT,
        "web-20240501",
        family="web",
        labels={"bakery-image": "web", "bakery-digest": "abc123"},
        description="golden web",
        creation_timestamp=_ts(0),
    )
    image = client.get(project=PROJECT, image="web-20240501")
    assert image.name == "web-20240501"
    assert image.id == int(seeded["id"])
    assert image.family == "web"
    assert dict(image.labels) == {"bakery-image": "web", "bakery-digest": "abc123"}
    assert image.description == "golden web"
    assert image.status == "READY"
    assert image.creation_timestamp == "2024-05-01T12:00:00+00:00"
    assert image.self_link == (f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/images/web-20240501")
    assert image.label_fingerprint == seeded["labelFingerprint"] != ""
    assert image.disk_size_gb == 10


def test_get_unknown_image_is_404_with_google_error(client: compute_v1.ImagesClient) -> None:
    with pytest.raises(exceptions.NotFound) as info:
        client.get(project=PROJECT, image="nope")
    assert info.value.code == 404
    assert "projects/bakery-test/global/images/nope" in info.value.message
    assert info.value.errors[0]["reason"] == "notFound"


def test_unknown_path_is_404(gce: FakeGce) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{gce.endpoint}/compute/v1/projects/{PROJECT}/zones/z/reservations", timeout=5)
    assert info.value.code == 404
    assert json.loads(info.value.read())["error"]["code"] == 404


def test_get_from_family_picks_newest_non_deprecated(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    # seeded out of order; the name order disagrees with the timestamp order on purpose
    gce.add_image(PROJECT, "web-b", family="web", creation_timestamp=_ts(10))
    gce.add_image(PROJECT, "web-c", family="web", creation_timestamp=_ts(30))
    gce.add_image(PROJECT, "web-a", family="web", creation_timestamp=_ts(20))
    gce.add_image(PROJECT, "db-z", family="db", creation_timestamp=_ts(99))

    assert client.get_from_family(project=PROJECT, family="web").name == "web-c"
    assert gce.requests[-1] == ("GET", f"{IMAGES}/family/web")

    operation = client.deprecate_unary(
        project=PROJECT,
        image="web-c",
        deprecation_status_resource=compute_v1.DeprecationStatus(state="DEPRECATED"),
    )
    wait_done(gce.endpoint, PROJECT, operation)
    assert client.get_from_family(project=PROJECT, family="web").name == "web-a"

    with pytest.raises(exceptions.NotFound):
        client.get_from_family(project=PROJECT, family="nothing")


# ------------------------------------------------------------------------------------------- list


def test_list_with_label_filters(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1", family="web", labels={"bakery-image": "web"})
    gce.add_image(PROJECT, "web-2", family="web", labels={"bakery-image": "web"})
    gce.add_image(PROJECT, "db-1", family="db", labels={"bakery-image": "db"})
    gce.add_image(PROJECT, "other", labels={"team": "x"})
    gce.add_image(PROJECT, "bare")

    def names(flt: str) -> list[str]:
        request = compute_v1.ListImagesRequest(project=PROJECT, filter=flt)
        return [image.name for image in client.list(request=request)]

    assert names("labels.bakery-image:*") == ["db-1", "web-1", "web-2"]
    assert names("labels.bakery-image=web") == ["web-1", "web-2"]
    assert names('labels.bakery-image = "db"') == ["db-1"]
    assert names("name=web-2") == ["web-2"]
    assert names("family=web") == ["web-1", "web-2"]
    assert names("labels.bakery-image=web AND name=web-1") == ["web-1"]
    assert names("(labels.bakery-image=web) (name=web-2)") == ["web-2"]
    assert names("(name=db-1) OR (name=other)") == ["db-1", "other"]
    assert names("labels.bakery-image!=web") == ["bare", "db-1", "other"]
    assert names("name eq 'web-.*'") == ["web-1", "web-2"]
    assert names("") == ["bare", "db-1", "other", "web-1", "web-2"]

    # what the client puts on the wire: filter as a plain (url-encoded) query parameter
    method, target = gce.requests[1]
    assert method == "GET"
    assert parse_qs(urlsplit(target).query) == {"filter": ["labels.bakery-image=web"]}

    with pytest.raises(exceptions.BadRequest):
        names("labels.bakery-image=")


def test_list_paginates(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    for i in range(7):
        gce.add_image(PROJECT, f"web-{i}", family="web", labels={"bakery-image": "web"})
    gce.add_image(PROJECT, "unlabelled")

    request = compute_v1.ListImagesRequest(project=PROJECT, filter="labels.bakery-image:*", max_results=3)
    pager = client.list(request=request)
    pages = [[image.name for image in page.items] for page in pager.pages]

    assert pages == [["web-0", "web-1", "web-2"], ["web-3", "web-4", "web-5"], ["web-6"]]
    assert gce.count("GET", IMAGES + "?") == 3
    queries = [parse_qs(urlsplit(target).query) for _, target in gce.requests]
    assert [q.get("pageToken") for q in queries] == [None, ["3"], ["6"]]
    assert all(q["maxResults"] == ["3"] and q["filter"] == ["labels.bakery-image:*"] for q in queries)

    # the flat iterator gives the same 7 images
    gce.reset_requests()
    assert len(list(client.list(request=request))) == 7
    assert gce.count("GET", IMAGES) == 3


def test_list_order_by_creation_timestamp(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "a", creation_timestamp=_ts(1))
    gce.add_image(PROJECT, "b", creation_timestamp=_ts(3))
    gce.add_image(PROJECT, "c", creation_timestamp=_ts(2))
    request = compute_v1.ListImagesRequest(project=PROJECT, order_by="creationTimestamp desc")
    assert [image.name for image in client.list(request=request)] == ["b", "c", "a"]


# ------------------------------------------------------------------------------------------- mutations


def test_insert_then_get(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    operation = client.insert_unary(
        project=PROJECT,
        image_resource=compute_v1.Image(
            name="web-new",
            family="web",
            labels={"bakery-image": "web"},
            source_disk="projects/bakery-test/zones/europe-west1-b/disks/packer-123",
            description="baked",
        ),
    )
    assert operation.status == compute_v1.Operation.Status.RUNNING
    assert operation.operation_type == "insert"
    assert operation.progress == 0
    assert operation.target_link.endswith(f"/projects/{PROJECT}/global/images/web-new")
    done = wait_done(gce.endpoint, PROJECT, operation)
    assert (done.status, done.progress) == (compute_v1.Operation.Status.DONE, 100)

    image = client.get(project=PROJECT, image="web-new")
    assert image.status == "READY"
    assert image.family == "web"
    assert dict(image.labels) == {"bakery-image": "web"}
    assert image.source_disk.endswith("/disks/packer-123")
    assert image.id > 0
    assert dt.datetime.fromisoformat(image.creation_timestamp).tzinfo is not None
    assert str(image.id) == gce.images[PROJECT]["web-new"]["id"]
    assert gce.requests == [
        ("POST", IMAGES),
        ("POST", f"{OPERATIONS}/{operation.name}/wait"),
        ("GET", f"{IMAGES}/web-new"),
    ]


def test_insert_duplicate_is_conflict(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1")
    with pytest.raises(exceptions.Conflict) as info:
        client.insert(project=PROJECT, image_resource=compute_v1.Image(name="web-1"))
    assert info.value.code == 409
    assert info.value.errors[0]["reason"] == "alreadyExists"
    assert "already exists" in info.value.message


def test_insert_invalid_name_is_bad_request(client: compute_v1.ImagesClient) -> None:
    with pytest.raises(exceptions.BadRequest):
        client.insert(project=PROJECT, image_resource=compute_v1.Image(name="Web_1"))


def test_delete(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1")
    operation = client.delete_unary(project=PROJECT, image="web-1")
    wait_done(gce.endpoint, PROJECT, operation)
    assert operation.operation_type == "delete"
    assert "web-1" not in gce.images[PROJECT]
    with pytest.raises(exceptions.NotFound):
        client.delete(project=PROJECT, image="web-1")


def test_set_labels_with_current_fingerprint(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1", labels={"bakery-image": "web"})
    before = client.get(project=PROJECT, image="web-1")

    operation = client.set_labels_unary(
        project=PROJECT,
        resource="web-1",
        global_set_labels_request_resource=compute_v1.GlobalSetLabelsRequest(
            labels={**before.labels, "bakery-promoted": "true"},
            label_fingerprint=before.label_fingerprint,
        ),
    )
    wait_done(gce.endpoint, PROJECT, operation)
    assert operation.operation_type == "setLabels"

    after = client.get(project=PROJECT, image="web-1")
    assert dict(after.labels) == {"bakery-image": "web", "bakery-promoted": "true"}
    assert after.label_fingerprint != before.label_fingerprint
    assert gce.images[PROJECT]["web-1"]["labelFingerprint"] == after.label_fingerprint
    assert gce.count("POST", f"{IMAGES}/web-1/setLabels") == gce.set_labels_calls(PROJECT, "web-1") == 1


def test_set_labels_with_stale_fingerprint_is_412(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1", labels={"bakery-image": "web"})
    stale = client.get(project=PROJECT, image="web-1").label_fingerprint

    # someone else changes the labels first
    operation = client.set_labels_unary(
        project=PROJECT,
        resource="web-1",
        global_set_labels_request_resource=compute_v1.GlobalSetLabelsRequest(
            labels={"bakery-image": "web", "owner": "other"}, label_fingerprint=stale
        ),
    )
    wait_done(gce.endpoint, PROJECT, operation)

    with pytest.raises(exceptions.PreconditionFailed) as info:
        client.set_labels_unary(
            project=PROJECT,
            resource="web-1",
            global_set_labels_request_resource=compute_v1.GlobalSetLabelsRequest(
                labels={"bakery-image": "web", "mine": "yes"}, label_fingerprint=stale
            ),
        )
    assert info.value.code == 412
    assert info.value.errors[0]["reason"] == "conditionNotMet"
    assert gce.images[PROJECT]["web-1"]["labels"] == {"bakery-image": "web", "owner": "other"}


# ------------------------------------------------------------------------------------------- operations


def test_extended_operations_would_poll_google_not_the_fake(client: compute_v1.ImagesClient) -> None:
    # The operations client an images client builds for ExtendedOperation.result() does NOT inherit
    # client_options: it points at the real API. Against the fake (and a private endpoint), wait
    # through a GlobalOperationsClient made for the endpoint instead, as bakery does.
    polling_client = client._transport._global_operations_client
    assert polling_client._transport._host == "https://compute.googleapis.com"


def test_operations_run_then_finish_and_only_then_change_the_image() -> None:
    with FakeGce(operation_delay=0.5) as gce:
        client = images_client(gce.endpoint)
        ops = global_operations_client(gce.endpoint)
        gce.add_image(PROJECT, "web-1", labels={"bakery-image": "web"})
        before = client.get(project=PROJECT, image="web-1")
        operation = client.set_labels_unary(
            project=PROJECT,
            resource="web-1",
            global_set_labels_request_resource=compute_v1.GlobalSetLabelsRequest(
                labels={"bakery-image": "web", "bakery-state": "complete"}, label_fingerprint=before.label_fingerprint
            ),
        )
        assert operation.status == compute_v1.Operation.Status.RUNNING
        assert operation.operation_type == "setLabels"
        assert operation.target_link.endswith("/global/images/web-1")
        # not yet: the labels and their fingerprint change when the operation is DONE
        now = client.get(project=PROJECT, image="web-1")
        assert (dict(now.labels), now.label_fingerprint) == ({"bakery-image": "web"}, before.label_fingerprint)
        assert ops.get(project=PROJECT, operation=operation.name).status == compute_v1.Operation.Status.RUNNING

        started = time.monotonic()
        waited = ops.wait(project=PROJECT, operation=operation.name, timeout=5)  # blocks until DONE
        assert time.monotonic() - started > 0.3
        assert (waited.status, waited.progress) == (compute_v1.Operation.Status.DONE, 100)
        assert waited.end_time
        after = client.get(project=PROJECT, image="web-1")
        assert dict(after.labels) == {"bakery-image": "web", "bakery-state": "complete"}
        assert after.label_fingerprint != before.label_fingerprint
        assert ops.get(project=PROJECT, operation=operation.name).status == compute_v1.Operation.Status.DONE
        assert gce.requests[-4:] == [
            ("GET", f"{OPERATIONS}/{operation.name}"),
            ("POST", f"{OPERATIONS}/{operation.name}/wait"),
            ("GET", f"{IMAGES}/web-1"),
            ("GET", f"{OPERATIONS}/{operation.name}"),
        ]
        with pytest.raises(exceptions.NotFound):
            ops.get(project=PROJECT, operation="operation-unknown")


def test_insert_and_delete_show_pending_and_deleting_until_done() -> None:
    with FakeGce(operation_delay=0.3) as gce:
        client = images_client(gce.endpoint)
        inserted = client.insert_unary(project=PROJECT, image_resource=compute_v1.Image(name="web-1", family="web"))
        assert client.get(project=PROJECT, image="web-1").status == "PENDING"
        with pytest.raises(exceptions.NotFound):  # a family's images are the READY ones
            client.get_from_family(project=PROJECT, family="web")
        with pytest.raises(exceptions.Conflict):  # the name is taken at once
            client.insert_unary(project=PROJECT, image_resource=compute_v1.Image(name="web-1"))
        wait_done(gce.endpoint, PROJECT, inserted)
        assert client.get(project=PROJECT, image="web-1").status == "READY"

        deleted = client.delete_unary(project=PROJECT, image="web-1")
        assert client.get(project=PROJECT, image="web-1").status == "DELETING"
        wait_done(gce.endpoint, PROJECT, deleted)
        with pytest.raises(exceptions.NotFound):
            client.get(project=PROJECT, image="web-1")


def test_operation_that_fails_changes_nothing(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1")
    gce.fail_operation_next(400, "The image resource is in use", operation_type="delete")
    done = wait_done(gce.endpoint, PROJECT, client.delete_unary(project=PROJECT, image="web-1"))
    assert done.http_error_status_code == 400
    assert [(e.code, e.message) for e in done.error.errors] == [("INVALID", "The image resource is in use")]
    assert client.get(project=PROJECT, image="web-1").name == "web-1"


# ------------------------------------------------------------------------------------------- failures


def _reason(error: exceptions.GoogleAPICallError) -> str:
    # api_core keeps the body's error.errors list; `.reason` is only set from google.rpc.ErrorInfo details
    return str(error.errors[0]["reason"])


def test_get_429_is_not_retried_by_default(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1")
    gce.fail_next(429)
    with pytest.raises(exceptions.TooManyRequests) as info:
        client.get(project=PROJECT, image="web-1")
    assert info.value.code == 429
    assert _reason(info.value) == "rateLimitExceeded"
    assert gce.count("GET", f"{IMAGES}/web-1") == 1
    # only once: the next call succeeds
    assert client.get(project=PROJECT, image="web-1").name == "web-1"


def test_get_503_is_retried_by_default(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    # the generated client gives get/getFromFamily/list (and globalOperations.get) a default
    # Retry(ServiceUnavailable, DeadlineExceeded, initial=0.1s, deadline=600s); mutations get none
    gce.add_image(PROJECT, "web-1")
    gce.fail_next(503)
    assert client.get(project=PROJECT, image="web-1").name == "web-1"
    assert gce.count("GET", f"{IMAGES}/web-1") == 2

    gce.reset_requests()
    gce.fail_next(503)
    with pytest.raises(exceptions.ServiceUnavailable) as info:
        client.get(project=PROJECT, image="web-1", retry=None)
    assert _reason(info.value) == "backendError"
    assert gce.count("GET", f"{IMAGES}/web-1") == 1


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (429, exceptions.TooManyRequests, "rateLimitExceeded"),
        (503, exceptions.ServiceUnavailable, "backendError"),
    ],
)
def test_mutation_failure_without_retry_raises(
    gce: FakeGce,
    client: compute_v1.ImagesClient,
    status: int,
    error: type[exceptions.GoogleAPICallError],
    reason: str,
) -> None:
    gce.fail_next(status)
    with pytest.raises(error) as info:
        client.insert(project=PROJECT, image_resource=compute_v1.Image(name="web-1"))
    assert info.value.code == status
    assert _reason(info.value) == reason
    assert gce.count("POST", IMAGES) == 1
    assert PROJECT not in gce.images or "web-1" not in gce.images[PROJECT]


@pytest.mark.parametrize("status", [429, 503])
def test_injected_failure_with_retry_succeeds(gce: FakeGce, client: compute_v1.ImagesClient, status: int) -> None:
    gce.add_image(PROJECT, "web-1")
    gce.fail_next(status)
    assert client.get(project=PROJECT, image="web-1", retry=_fast_retry()).name == "web-1"
    assert gce.requests == [("GET", f"{IMAGES}/web-1")] * 2


@pytest.mark.parametrize("status", [429, 503])
def test_injected_failure_on_mutation_with_retry(gce: FakeGce, client: compute_v1.ImagesClient, status: int) -> None:
    gce.fail_next(status, 2, method="POST")
    operation = client.insert_unary(project=PROJECT, image_resource=compute_v1.Image(name="web-1"), retry=_fast_retry())
    wait_done(gce.endpoint, PROJECT, operation)
    assert gce.count("POST", IMAGES) == 3
    assert "web-1" in gce.images[PROJECT]


def test_fail_next_matches_method_and_path(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1", labels={"bakery-image": "web"})
    gce.add_image(PROJECT, "web-2")
    gce.fail_next(503, method="POST", path_contains="setLabels")
    gce.fail_next(429, path_contains="/web-2")

    client.get(project=PROJECT, image="web-1")  # matches neither rule
    list(client.list(project=PROJECT))
    with pytest.raises(exceptions.TooManyRequests):
        client.get(project=PROJECT, image="web-2")
    fingerprint = client.get(project=PROJECT, image="web-1").label_fingerprint
    request = compute_v1.GlobalSetLabelsRequest(labels={"a": "b"}, label_fingerprint=fingerprint)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.set_labels_unary(project=PROJECT, resource="web-1", global_set_labels_request_resource=request)
    # both rules used up
    client.set_labels_unary(project=PROJECT, resource="web-1", global_set_labels_request_resource=request)
    assert client.get(project=PROJECT, image="web-2").name == "web-2"


def test_html_error_page(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.fail_next(500, html=True)
    with pytest.raises(exceptions.InternalServerError) as info:
        client.get(project=PROJECT, image="web-1", retry=None)
    assert info.value.code == 500
    assert "<title>Error 500 (Server Error)!!1</title>" in info.value.message  # the whole page


def test_hanging_answer_times_out(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1")
    gce.hang_next(path_contains="/web-1")
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get(project=PROJECT, image="web-1", retry=None, timeout=0.3)
    assert time.monotonic() - started < 3
    assert client.get(project=PROJECT, image="web-1", timeout=5).name == "web-1"  # only that one hangs


def test_dropped_connection(gce: FakeGce, client: compute_v1.ImagesClient) -> None:
    gce.add_image(PROJECT, "web-1")
    gce.drop_next()
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        client.get(project=PROJECT, image="web-1", retry=None, timeout=5)
    assert "without response" in str(info.value)
    assert client.get(project=PROJECT, image="web-1", timeout=5).name == "web-1"


# ------------------------------------------------------------------------------------------- filter


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("labels.bakery-image:*", True),
        ("labels.missing:*", False),
        ("labels.bakery-image=web", True),
        ("labels.bakery-image=db", False),
        ('labels.bakery-image="web"', True),
        ("labels.bakery-image=w*", True),
        ("name=web-1 family=web", True),
        ("name=web-1 AND family=db", False),
        ("name=db OR family=web", True),
        ("NOT name=web-1", False),
        ("-labels.bakery-image:*", False),
        ("(name=web-1) AND (labels.bakery-image:*)", True),
        ("name ne 'web-.*'", False),
        ("diskSizeGb>5", True),
    ],
)
def test_filter_expressions(expression: str, expected: bool) -> None:
    image = {"name": "web-1", "family": "web", "labels": {"bakery-image": "web"}, "diskSizeGb": "10"}
    assert compile_filter(expression)(image) is expected
