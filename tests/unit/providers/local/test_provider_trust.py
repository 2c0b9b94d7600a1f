"""What the local provider (and the fake one the service tests use) knows for trust: the subject
bound to the disk, the catalog entry's claims and attestation, and the revocation mark."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bakery.bake import inputs
from bakery.core import jcs, provenance
from bakery.core.catalog import ImageRecord
from bakery.errors import ProviderError
from bakery.progress import Recording
from bakery.providers.base import Provider
from bakery.providers.local.provider import LocalProvider
from bakery.workspace import Workspace
from tests.fakes.provider import FakeProvider
from tests.unit.providers.test_base import GIT, TOOLS, bake_request

ATTESTATION = "sha256:" + "a7" * 32


def signed_bake(provider: Provider, request: Any, artifacts: list[str]) -> tuple[ImageRecord, dict[str, Any]]:
    """Subject, statement and publish with an attestation digest, as a signing bake does."""
    prepared = provider.resolve(request)
    skeleton = inputs.statement_skeleton(
        request.project,
        request.eff,
        version=request.version,
        prepared=prepared,
        digest="sha256:" + "d1" * 32,
        tools=TOOLS,
        git=GIT,
        invocation=request.invocation,
        started="2026-01-01T00:00:00Z",
        builder="test",
    )
    name, digest_set = provider.subject(request, artifacts)
    statement = provenance.finalize(
        skeleton,
        subject_name=name,
        subject_digest=digest_set,
        finished="2026-01-01T00:09:00Z",
        more=provider.more_subjects(request),
    )
    record = provider.publish(request, prepared, statement, "sha256:" + "d1" * 32, artifacts, attestation=ATTESTATION)
    return record, statement


@pytest.fixture()
def local(project_dir: Any) -> LocalProvider:
    return LocalProvider(Workspace(project_dir.home), Recording())


@pytest.fixture()
def baked(local: LocalProvider, project_dir: Any, tmp_path: Path) -> tuple[ImageRecord, dict[str, Any]]:
    request = bake_request(project_dir, "local", "1.0.0", "abc123abc123", tmp_path)
    (request.workdir / "output").mkdir()
    (request.workdir / "output" / "disk.qcow2").write_bytes(b"a disk, " * 100_000)
    (request.workdir / "output-vmlinuz").write_bytes(b"kernel")
    (request.workdir / "output-initrd.img").write_bytes(b"initrd")
    return signed_bake(local, request, [str(request.workdir / "output")])


def disk_of(record: ImageRecord) -> Path:
    return Path(record.locations[0]) / "disk.qcow2"


# --- local: the subject is the disk -----------------------------------------------------------------


def test_the_subject_is_the_disks_sha256_and_the_descriptor_hashes_the_disk_again(
    local: LocalProvider, baked: tuple[ImageRecord, dict[str, Any]]
) -> None:
    record, statement = baked
    disk_sha = hashlib.sha256(disk_of(record).read_bytes()).hexdigest()  # what `sha256sum disk.qcow2` prints
    assert statement["subject"][0]["digest"] == {"sha256": disk_sha}
    (listed,) = local.images("local", "web")
    directory = Path(listed.locations[0])
    files = {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in ("vmlinuz", "initrd.img")}
    assert local.descriptor(listed) == {"kind": "local", "sha256": disk_sha, "files": files}
    # The kernel and initrd a local VM boots with are signed with the disk.
    assert [(s["name"], s["digest"]["sha256"]) for s in statement["subject"][1:]] == list(files.items())


def test_one_byte_changed_on_the_disk_changes_the_descriptor(
    local: LocalProvider, baked: tuple[ImageRecord, dict[str, Any]]
) -> None:
    record, _ = baked
    before = local.descriptor(record)
    disk = disk_of(record)
    disk.chmod(0o644)
    data = bytearray(disk.read_bytes())
    data[4096] ^= 0x01
    disk.write_bytes(bytes(data))
    after = local.descriptor(record)
    assert after["sha256"] != before["sha256"]
    assert after["sha256"] == hashlib.sha256(bytes(data)).hexdigest()


def test_a_disk_that_is_gone_is_named(local: LocalProvider, baked: tuple[ImageRecord, dict[str, Any]]) -> None:
    record, _ = baked
    gone = ImageRecord(**{**record.__dict__, "locations": (str(Path(record.locations[0]).parent / "9.9.9"),)})
    with pytest.raises(ProviderError, match=r"web@1\.0\.0: disk\.qcow2, vmlinuz, initrd\.img gone from .*9\.9\.9"):
        local.descriptor(gone)


# --- local: the catalog entry's claims and attestation -----------------------------------------------


def test_the_attestation_is_in_the_catalog_entry_and_its_claim(
    local: LocalProvider, baked: tuple[ImageRecord, dict[str, Any]]
) -> None:
    record, statement = baked
    (listed,) = local.images("local", "web")
    assert listed == record
    assert listed.extra["attestation"] == ATTESTATION
    (claim,) = local.claims(listed)
    assert claim.location == "catalog entry web@1.0.0 on local"
    assert claim.attestation == ATTESTATION
    assert dict(claim.stamp) == provenance.stamp_of(statement, state="complete")
    assert claim.names["inputs-digest"] == "catalog entry inputs-digest"
    assert claim.names["attestation"] == "catalog entry attestation"
    assert claim.document == json.loads((Path(listed.locations[0]) / "provenance.json").read_text())


def test_a_hand_edited_catalog_entry_shows_in_its_claim(
    local: LocalProvider, baked: tuple[ImageRecord, dict[str, Any]], project_dir: Any
) -> None:
    record, _ = baked
    with sqlite3.connect(Workspace(project_dir.home).catalog_db) as db:
        db.execute("UPDATE images SET inputs_digest = 'sha256:forged' WHERE name = 'web'")
        db.execute("UPDATE trust SET attestation = 'sha256:other', stamp = '{\"commit\": \"f00\"}' WHERE name = 'web'")
    (claim,) = local.claims(record)  # read again, whatever the record in hand says
    assert claim.stamp["inputs-digest"] == "sha256:forged"
    assert claim.stamp["commit"] == "f00" and "dirty" not in claim.stamp
    assert claim.attestation == "sha256:other"


def test_an_image_without_a_catalog_entry_has_no_claims(
    local: LocalProvider, baked: tuple[ImageRecord, dict[str, Any]]
) -> None:
    record, _ = baked
    other = ImageRecord(**{**record.__dict__, "version": "1.0.7"})
    with pytest.raises(ProviderError, match=r"web@1\.0\.7 on local has no catalog entry"):
        local.claims(other)
    with pytest.raises(ProviderError, match=r"web@1\.0\.7 on local has no catalog entry"):
        local.mark_revoked(other, at="2026-02-01T00:00:00Z", reason="cve", replacement=None)


# --- local: revocation ---------------------------------------------------------------------------------


def test_mark_and_unmark_revoked_are_in_the_catalog_entry_and_change_neither_stamp_nor_descriptor(
    local: LocalProvider, baked: tuple[ImageRecord, dict[str, Any]]
) -> None:
    record, _ = baked
    claims, descriptor = local.claims(record), local.descriptor(record)
    newer = ImageRecord(**{**record.__dict__, "version": "1.0.1"})
    for _ in range(2):  # idempotent
        said = local.mark_revoked(record, at="2026-02-01T00:00:00Z", reason="CVE-2026-1", replacement=newer)
        assert said == "local: catalog entry web@1.0.0 on local marked revoked from 2026-02-01T00:00:00Z"
    (listed,) = local.images("local", "web")
    assert listed.extra["revoked"] == {"at": "2026-02-01T00:00:00Z", "reason": "CVE-2026-1", "replacement": "web@1.0.1"}
    assert listed.revoked_marks == ("the local catalog marks web@1.0.0 on local revoked",)
    assert local.claims(record) == claims and local.descriptor(record) == descriptor
    for _ in range(2):
        assert local.unmark_revoked(record) == "local: catalog entry web@1.0.0 on local no longer marked revoked"
    (listed,) = local.images("local", "web")
    assert listed == record


# --- the fake provider keeps the same promises ---------------------------------------------------------


@pytest.fixture()
def fake_baked(project_dir: Any, tmp_path: Path) -> tuple[FakeProvider, ImageRecord, dict[str, Any]]:
    fake = FakeProvider()
    request = bake_request(project_dir, "aws", "1.0.0", "fa4efa4efa4e", tmp_path)
    copies = [fake.create("aws", "web", "1.0.0", request.invocation, region=r, content=b"disk") for r in fake.regions]
    record, statement = signed_bake(fake, request, [",".join(c.location for c in copies)])
    return fake, record, statement


def test_fake_subject_is_the_digest_of_its_descriptor_and_its_tags_are_claims(
    fake_baked: tuple[FakeProvider, ImageRecord, dict[str, Any]],
) -> None:
    fake, record, statement = fake_baked
    described = fake.descriptor(record)
    assert set(described["images"]) == {"region-a", "region-b"}
    assert statement["subject"][0]["digest"]["sha256"] == jcs.digest(described).removeprefix("sha256:")
    claims = fake.claims(record)
    assert [c.location for c in claims] == [f"{loc.split(':')[1]} in {loc.split(':')[0]}" for loc in record.locations]
    assert all(c.attestation == ATTESTATION for c in claims)
    assert all(dict(c.stamp) == provenance.stamp_of(statement, state="complete") for c in claims)
    assert record.extra["attestation"] == ATTESTATION


def test_fake_tampering_shows_in_claims_and_descriptor(
    fake_baked: tuple[FakeProvider, ImageRecord, dict[str, Any]],
) -> None:
    fake, record, _ = fake_baked
    described = fake.descriptor(record)
    image_id = record.locations[1].split(":")[1]
    fake.tag(image_id, "bakery:commit", "forged")
    claim = next(c for c in fake.claims(record) if c.location.startswith(image_id))
    assert claim.stamp["commit"] == "forged" and claim.names["commit"] == "tag bakery:commit"
    fake.change(image_id, b"another disk")
    assert fake.descriptor(record) != described
    fake.delete(image_id)
    with pytest.raises(ProviderError, match=f"web@1.0.0: image {record.locations[1]} is gone"):
        fake.descriptor(record)


def test_fake_mark_and_unmark_revoked(fake_baked: tuple[FakeProvider, ImageRecord, dict[str, Any]]) -> None:
    fake, record, _ = fake_baked
    described = fake.descriptor(record)
    fake.mark_revoked(record, at="2026-02-01T00:00:00Z", reason="cve", replacement=None)
    (listed,) = fake.images("aws", "web")
    assert listed.extra["revoked"] == {"at": "2026-02-01T00:00:00Z", "reason": "cve", "replacement": None}
    assert fake.descriptor(record) == described
    fake.unmark_revoked(record)
    (listed,) = fake.images("aws", "web")
    assert "revoked" not in listed.extra
