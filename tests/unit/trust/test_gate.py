"""The trust gate in front of rollouts and rollbacks (bakery/trust/gate.py), called directly: which
version a group may move to, what it refuses (revoked, or unverified under a policy that requires
signatures), and the override that goes through loudly and on the record."""

from __future__ import annotations

import pytest

from bakery.config.models import Group
from bakery.core.catalog import ImageRecord
from bakery.errors import RolloutRefused, TrustError, UsageError
from bakery.progress import Recording
from bakery.trust.context import TrustContext
from bakery.trust.gate import TrustGate
from bakery.trust.revocations import Revocations
from bakery.workspace import Workspace
from tests.unit.trust.conftest import World


class Gate:
    def __init__(self, world: World) -> None:
        self.world = world
        project = world.project_dir.load()
        self.reporter = Recording()
        self.trust = TrustContext(project, Workspace(world.project_dir.home), self.reporter)
        self.gate = TrustGate(project, self.trust, self.reporter, lambda target: world.fake)
        self.group: Group = project.config.groups["web-eu"]

    def record(self, ref: str) -> ImageRecord:
        return next(r for r in self.world.fake.images("aws") if r.ref == ref)

    def web(self) -> list[ImageRecord]:
        return [r for r in self.world.fake.images("aws") if r.name == "web"]

    def revoke(self, ref: str, at: str = "2026-01-01T00:00:00Z") -> None:
        Revocations(self.trust).decide("aws", ref, revoked=True, reason="CVE-1", at=at, by="a@h", details={})

    def actions(self) -> list[tuple[str, str]]:
        return [(e["action"], e["result"]) for e in self.world.audit()]


@pytest.fixture()
def gate(world: World) -> Gate:
    return Gate(world)


def test_the_newest_version_that_is_not_revoked_is_allowed_and_the_skipped_ones_are_said(gate: Gate) -> None:
    first, second = gate.world.bake(), gate.world.bake(force=True)
    assert gate.gate.newest_allowed(gate.group, gate.web()).ref == second
    gate.revoke(second)
    assert gate.gate.newest_allowed(gate.group, gate.web()).ref == first
    assert gate.reporter.notes == [
        f"skipping {second}: revoked since 2026-01-01T00:00:00Z: CVE-1 (by a@h)",
    ]


def test_a_revocation_scheduled_for_later_does_not_skip_a_version_yet(gate: Gate) -> None:
    gate.world.bake()
    second = gate.world.bake(force=True)
    gate.revoke(second, at="2999-01-01T00:00:00Z")
    assert gate.gate.newest_allowed(gate.group, gate.web()).ref == second


def test_when_every_version_is_revoked_there_is_nothing_to_roll_out(gate: Gate) -> None:
    gate.revoke(gate.world.bake())
    with pytest.raises(TrustError) as refused:
        gate.gate.newest_allowed(gate.group, gate.web())
    assert refused.value.message == "every version of web on aws is revoked"
    assert refused.value.hint == "bake a new one: bakery build web --target aws"


def test_without_any_version_the_group_is_told_to_bake_one(gate: Gate) -> None:
    with pytest.raises(UsageError) as refused:
        gate.gate.newest_allowed(gate.group, [])
    assert refused.value.message == "no complete version of web on aws to roll out"
    assert refused.value.hint == "bake one: bakery build web --target aws"


def test_a_rollout_is_not_resumed_nor_carried_on_onto_an_image_revoked_meanwhile(gate: Gate) -> None:
    ref = gate.world.bake()
    record = gate.record(ref)
    gate.gate.refuse_revoked("web-eu", gate.group, record)  # not revoked: nothing to refuse
    gate.revoke(ref)
    with pytest.raises(TrustError) as resumed:
        gate.gate.refuse_revoked("web-eu", gate.group, record)
    assert resumed.value.message == (
        f"refusing to resume the rollout of web-eu onto {ref}: it is revoked since 2026-01-01T00:00:00Z: CVE-1 (by a@h)"
    )
    with pytest.raises(RolloutRefused) as paused:
        gate.gate.refuse_revoked("web-eu", gate.group, record, during="wave-2")
    assert paused.value.message == (
        f"{ref} was revoked while the rollout ran (revoked since 2026-01-01T00:00:00Z: CVE-1 (by a@h)); "
        "stopped before wave-2"
    )
    assert paused.value.hint == "`bakery rollback web-eu` returns the group to what it ran before"


def test_an_image_that_verifies_goes_through_naming_its_signers(gate: Gate) -> None:
    ref = gate.world.bake()
    result = gate.gate.check("web-eu", gate.group, gate.record(ref), operation="rollout", allow_unverified=False)
    assert result.ok and result.signed_by == ("ops",)
    assert gate.reporter.notes == [f"verified {ref}: signed by ops"]


def test_a_revoked_image_is_refused_even_with_the_override_and_the_refusal_is_audited(gate: Gate) -> None:
    ref = gate.world.bake()
    gate.revoke(ref)
    with pytest.raises(TrustError) as refused:
        gate.gate.check("web-eu", gate.group, gate.record(ref), operation="rollback", allow_unverified=True)
    assert refused.value.message.startswith(f"refusing to rollback web-eu onto {ref}: it is revoked since ")
    assert refused.value.exit_code == 1
    assert gate.actions()[-1] == ("rollback", "refused")


def test_a_dry_run_writes_no_decision_to_the_audit_log(gate: Gate) -> None:
    ref = gate.world.bake()
    gate.revoke(ref)
    before = gate.actions()
    with pytest.raises(TrustError):
        gate.gate.check(
            "web-eu", gate.group, gate.record(ref), operation="rollout", allow_unverified=False, audit=False
        )
    assert gate.actions() == before


def test_an_image_that_does_not_verify_is_refused_when_signatures_are_required(gate: Gate) -> None:
    ref = gate.world.bake()
    gate.world.fake.tag(gate.world.image_id(ref), "bakery:commit", "0" * 40)
    with pytest.raises(TrustError) as refused:
        gate.gate.check("web-eu", gate.group, gate.record(ref), operation="rollout", allow_unverified=False)
    assert refused.value.message.startswith(f"refusing to rollout web-eu onto {ref}: it does not verify (")
    assert any("bakery:commit" in p for p in refused.value.problems)
    assert refused.value.hint is not None and f"bakery verify {ref} --target aws" in refused.value.hint
    assert gate.actions()[-1] == ("verify-failed", "refused")


def test_the_override_deploys_what_does_not_verify_with_a_warning_and_an_audit_event(gate: Gate) -> None:
    ref = gate.world.bake()
    gate.world.fake.tag(gate.world.image_id(ref), "bakery:commit", "0" * 40)
    result = gate.gate.check("web-eu", gate.group, gate.record(ref), operation="rollout", allow_unverified=True)
    assert not result.ok
    assert gate.reporter.notes[-1].startswith(f"WARNING: {ref} does NOT verify and --allow-unverified deploys it")
    assert gate.actions()[-1] == ("override", "allowed-unverified")


def test_a_group_that_does_not_require_signatures_is_warned_not_refused(gate: Gate) -> None:
    ref = gate.world.bake()
    gate.world.fake.tag(gate.world.image_id(ref), "bakery:commit", "0" * 40)
    relaxed = gate.group.model_copy(update={"require_signed": False})
    assert gate.gate.required(relaxed) is False and gate.gate.required(gate.group) is True
    result = gate.gate.check("web-eu", relaxed, gate.record(ref), operation="rollout", allow_unverified=False)
    assert not result.ok
    assert gate.reporter.notes[-1].startswith(f"warning: {ref} does not verify (")
    assert gate.reporter.notes[-1].endswith("deploying it because trust.require is off for this group")
