"""What the GCP provider knows for trust, against the fake Compute server through the real
google-cloud-compute client: the subject bound to the image's descriptor, the attestation label,
the claims its labels make, and revocation as GCP deprecation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import compute_v1

from bakery.core import jcs, provenance
from bakery.core.catalog import ImageRecord
from bakery.errors import ProviderError
from bakery.progress import Recording
from bakery.providers.gcp.provider import GcpProvider
from tests.fakes.gce import FakeGce, images_client, wait_done
from tests.integration.test_gcp_provider import DIGEST, PROJECT, Bake, project_for, provider_for

ATTESTATION = "sha256:" + "a7" * 32
AT = "2026-02-01T00:00:00Z"


@pytest.fixture()
def gce() -> Iterator[FakeGce]:
    with FakeGce() as fake:  # operations done by the next request: these tests wait for nothing
        fake.add_image("debian-cloud", "debian-12-bookworm-v20260101", family="debian-12")
        yield fake


@pytest.fixture()
def provider(gce: FakeGce) -> GcpProvider:
    return provider_for(gce, Recording())


def bake(provider: GcpProvider, gce: FakeGce, tmp_path: Path, version: str = "1.0.0") -> tuple[Bake, dict[str, Any]]:
    """A bake through publish, with its attestation's digest: (the bake, the statement signed)."""
    source = {"family": "debian-12", "project": "debian-cloud"}
    invocation = "e1" * 5 + version.replace(".", "")[-2:]
    made = Bake(provider, gce, project_for(tmp_path, gce.endpoint, source), invocation, version=version)
    made.create()
    name, digest = provider.subject(made.request, [made.name])
    statement = provenance.finalize(made.skeleton, subject_name=name, subject_digest=digest, finished=AT)
    provider.publish(made.request, made.prepared, statement, DIGEST, [made.name], attestation=ATTESTATION)
    return made, statement


def listed(provider: GcpProvider, version: str = "1.0.0") -> ImageRecord:
    return next(r for r in provider.images("gcp", "web") if r.version == version)


def relabel(gce: FakeGce, name: str, **changes: str) -> None:
    """Someone sets labels by hand, through the API."""
    client = images_client(gce.endpoint)
    image = client.get(project=PROJECT, image=name)
    body = compute_v1.GlobalSetLabelsRequest(
        labels={**dict(image.labels), **changes}, label_fingerprint=image.label_fingerprint
    )
    wait_done(
        gce.endpoint,
        PROJECT,
        client.set_labels_unary(project=PROJECT, resource=name, global_set_labels_request_resource=body),
    )


def test_the_subject_is_the_digest_of_the_descriptor_read_again_later(
    tmp_path: Path, gce: FakeGce, provider: GcpProvider
) -> None:
    made, statement = bake(provider, gce, tmp_path)
    image = gce.image(PROJECT, made.name)
    record = listed(provider)
    described = provider.descriptor(record)
    assert described == {
        "kind": "gcp",
        "project": PROJECT,
        "image": made.name,
        "id": image["id"],
        "created": image["creationTimestamp"],
        "diskSizeGb": image["diskSizeGb"],
    }
    assert statement["subject"][0]["digest"] == {
        "gceImageId": image["id"],
        "sha256": jcs.digest(described).removeprefix("sha256:"),
    }
    assert provider.provenance(record) == statement  # as signed, from the description and labels

    relabel(gce, made.name, team="someone-else")
    provider.mark_revoked(record, at=AT, reason="cve", replacement=None)
    assert provider.descriptor(record) == described  # labels and deprecation are not part of it


def test_the_attestation_label_and_the_claims_of_the_labels(
    tmp_path: Path, gce: FakeGce, provider: GcpProvider
) -> None:
    made, statement = bake(provider, gce, tmp_path)
    label = gce.image(PROJECT, made.name)["labels"]["bakery-attestation"]
    assert len(label) == 52 and provenance.gcp_read_digest(label) == ATTESTATION
    record = listed(provider)
    assert record.extra["attestation"] == ATTESTATION

    (claim,) = provider.claims(record)
    assert claim.location == f"image {made.name} in {PROJECT}"
    assert claim.attestation == ATTESTATION
    assert dict(claim.stamp) == provenance.stamp_of(statement, state="complete")
    assert claim.names["commit"] == "label bakery-commit"
    assert claim.names["attestation"] == "label bakery-attestation"
    assert claim.document == statement


def test_labels_changed_by_hand_show_in_the_claim(tmp_path: Path, gce: FakeGce, provider: GcpProvider) -> None:
    made, _ = bake(provider, gce, tmp_path)
    record = listed(provider)
    relabel(
        gce,
        made.name,
        **{"bakery-commit": provenance.gcp_value("f" * 40), "bakery-dirty": "_zz", "bakery-attestation": "forged"},
    )
    (claim,) = provider.claims(record)
    assert claim.stamp["commit"] == "f" * 40
    assert claim.stamp["dirty"] == "_zz"  # a label bakery cannot read, as it is
    assert claim.attestation == "forged"


def test_an_image_that_is_gone_is_named(tmp_path: Path, gce: FakeGce, provider: GcpProvider) -> None:
    made, _ = bake(provider, gce, tmp_path)
    record = listed(provider)
    wait_done(gce.endpoint, PROJECT, images_client(gce.endpoint).delete_unary(project=PROJECT, image=made.name))
    gone = re.escape(f"web@1.0.0: GCP image {PROJECT}/{made.name} is gone")
    with pytest.raises(ProviderError, match=gone):
        provider.descriptor(record)
    with pytest.raises(ProviderError, match=gone):
        provider.claims(record)
    assert provider.mark_revoked(record, at=AT, reason="cve", replacement=None) == (
        f"GCP: image {PROJECT}/{made.name} is already gone"
    )


def test_revocation_is_gcp_deprecation_with_the_replacement(
    tmp_path: Path, gce: FakeGce, provider: GcpProvider
) -> None:
    old, _ = bake(provider, gce, tmp_path)
    new, _ = bake(provider, gce, tmp_path, "1.0.1")
    record, replacement = listed(provider), listed(provider, "1.0.1")
    client = images_client(gce.endpoint)
    for _ in range(2):  # idempotent
        said = provider.mark_revoked(record, at=AT, reason="CVE-2026-1", replacement=replacement)
        assert said == f"GCP: deprecated image {PROJECT}/{old.name} from {AT}, replaced by {PROJECT}/{new.name}"
        deprecated = client.get(project=PROJECT, image=old.name).deprecated
        assert (deprecated.state, deprecated.deprecated) == ("DEPRECATED", AT)
        assert deprecated.replacement == client.get(project=PROJECT, image=new.name).self_link
    assert "deprecated" not in client.get(project=PROJECT, image=new.name)
    # The listing reads the mark back: what verify checks against the registry.
    assert listed(provider).revoked_marks == (f"{PROJECT}/{old.name} is DEPRECATED from {AT}",)
    assert listed(provider, "1.0.1").revoked_marks == ()

    for _ in range(2):
        assert provider.unmark_revoked(record) == f"GCP: image {PROJECT}/{old.name} is no longer deprecated"
        assert "deprecated" not in client.get(project=PROJECT, image=old.name)
    assert listed(provider).revoked_marks == ()
