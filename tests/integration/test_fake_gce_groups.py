# mypy: disable-error-code="no-untyped-call"
"""The fake's instance templates, managed instance groups and backend services (tests/fakes/gce_groups.py)
driven by the real google-cloud-compute clients: GCE's rules that the group driver relies on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from tests.fakes.gce import FakeGce
from tests.fakes.gce_migs import Mig

PROJECT = "bakery-test"
ZONE = "europe-west1-b"
TEMPLATES = f"projects/{PROJECT}/global/instanceTemplates"


def client(kind: type, gce: FakeGce) -> object:
    return kind(credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": gce.endpoint})


@pytest.fixture()
def gce() -> Iterator[FakeGce]:
    with FakeGce(operation_delay=0.2, mig_step=3600.0) as fake:  # groups move only when a test ticks them
        for name in ("web-1", "web-2"):
            fake.add_image(PROJECT, name)
            fake.groups.templates.add(PROJECT, f"t-{name}", image=f"{PROJECT}/{name}")
        fake.groups.add_mig(PROJECT, "web-mig", template=f"{TEMPLATES}/t-web-1", size=4, zone=ZONE, health_check="hc")
        yield fake


def the_mig(gce: FakeGce) -> Mig:
    return gce.groups.migs[(PROJECT, f"zones/{ZONE}")]["web-mig"]


def test_a_patch_is_made_when_its_zonal_operation_is_done(gce: FakeGce) -> None:
    migs = client(compute_v1.InstanceGroupManagersClient, gce)
    body = compute_v1.InstanceGroupManager(versions=[{"instance_template": f"{TEMPLATES}/t-web-2"}])
    operation = migs.patch_unary(  # type: ignore[attr-defined]
        project=PROJECT, zone=ZONE, instance_group_manager="web-mig", instance_group_manager_resource=body
    )
    assert operation.status == compute_v1.Operation.Status.RUNNING
    assert operation.self_link.endswith(f"/zones/{ZONE}/operations/{operation.name}")
    before = migs.get(project=PROJECT, zone=ZONE, instance_group_manager="web-mig")  # type: ignore[attr-defined]
    assert before.versions[0].instance_template.endswith("/t-web-1")
    operations = client(compute_v1.ZoneOperationsClient, gce)
    done = operations.wait(project=PROJECT, zone=ZONE, operation=operation.name)  # type: ignore[attr-defined]
    assert done.status == compute_v1.Operation.Status.DONE
    after = migs.get(project=PROJECT, zone=ZONE, instance_group_manager="web-mig")  # type: ignore[attr-defined]
    assert after.versions[0].instance_template.endswith("/t-web-2")
    assert not after.status.version_target.is_reached


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), (2, 1), (0, 2)])
def test_the_updater_keeps_within_max_surge_and_max_unavailable(gce: FakeGce, surge: int, unavailable: int) -> None:
    mig = the_mig(gce)
    mig.body["versions"] = [{"instanceTemplate": gce.groups.templates.get(PROJECT, "t-web-2")["selfLink"]}]
    mig.body["updatePolicy"] = {
        "type": "PROACTIVE",
        "maxSurge": {"fixed": surge},
        "maxUnavailable": {"fixed": unavailable},
    }
    for _ in range(100):
        moved = gce.groups.updater.tick(mig)
        live = [vm for vm in mig.vms if vm.action != "DELETING"]
        assert len(live) <= 4 + surge
        assert sum(mig.available(vm) for vm in mig.vms) >= 4 - unavailable  # never fewer serving
        if not moved:
            break
    assert mig.stable() and mig.reached()
    assert {vm.image.rpartition("/")[2] for vm in mig.vms} == {"web-2"}


def test_a_canary_version_gets_its_target_size_and_no_more(gce: FakeGce) -> None:
    mig = the_mig(gce)
    new = gce.groups.templates.get(PROJECT, "t-web-2")["selfLink"]
    old = gce.groups.templates.get(PROJECT, "t-web-1")["selfLink"]
    mig.body["versions"] = [{"instanceTemplate": old}, {"instanceTemplate": new, "targetSize": {"percent": 50}}]
    mig.body["updatePolicy"] = {"type": "PROACTIVE", "maxSurge": {"fixed": 1}, "maxUnavailable": {"fixed": 0}}
    while gce.groups.updater.tick(mig):
        pass
    assert sorted(vm.image.rpartition("/")[2] for vm in mig.vms) == ["web-1", "web-1", "web-2", "web-2"]
    assert mig.stable() and mig.reached()


def test_an_opportunistic_group_replaces_nothing(gce: FakeGce) -> None:
    mig = the_mig(gce)
    mig.body["versions"] = [{"instanceTemplate": gce.groups.templates.get(PROJECT, "t-web-2")["selfLink"]}]
    mig.body["updatePolicy"] = {"type": "OPPORTUNISTIC", "maxSurge": {"fixed": 1}, "maxUnavailable": {"fixed": 0}}
    assert not gce.groups.updater.tick(mig)
    assert mig.stable() and not mig.reached()


def test_a_template_in_use_cannot_be_deleted(gce: FakeGce) -> None:
    templates = client(compute_v1.InstanceTemplatesClient, gce)
    with pytest.raises(exceptions.BadRequest, match="is already being used by"):
        templates.delete_unary(project=PROJECT, instance_template="t-web-1")  # type: ignore[attr-defined]


def test_a_backend_patch_needs_the_current_fingerprint(gce: FakeGce) -> None:
    group = gce.groups.mig(PROJECT, "web-mig", zone=ZONE)["instanceGroup"]
    gce.groups.backends.add(PROJECT, "web-bs")
    services = client(compute_v1.BackendServicesClient, gce)
    body = compute_v1.BackendService(backends=[{"group": group}], fingerprint="stale")
    with pytest.raises(exceptions.PreconditionFailed):
        services.patch_unary(project=PROJECT, backend_service="web-bs", backend_service_resource=body)  # type: ignore[attr-defined]
    current = services.get(project=PROJECT, backend_service="web-bs")  # type: ignore[attr-defined]
    body = compute_v1.BackendService(backends=[{"group": group}], fingerprint=current.fingerprint)
    operation = services.patch_unary(project=PROJECT, backend_service="web-bs", backend_service_resource=body)  # type: ignore[attr-defined]
    client(compute_v1.GlobalOperationsClient, gce).wait(project=PROJECT, operation=operation.name)  # type: ignore[attr-defined]
    health = services.get_health(  # type: ignore[attr-defined]
        project=PROJECT, backend_service="web-bs", resource_group_reference_resource={"group": group}
    )
    assert [s.health_state for s in health.health_status] == ["HEALTHY"] * 4


def test_a_regional_group_takes_a_fixed_surge_of_zero_or_at_least_its_zones(gce: FakeGce) -> None:
    region = "europe-west1"
    gce.groups.add_mig(PROJECT, "web-rmig", template=f"{TEMPLATES}/t-web-1", size=4, region=region)
    migs = client(compute_v1.RegionInstanceGroupManagersClient, gce)

    def patch(surge: int, unavailable: int) -> object:
        policy = {"type_": "PROACTIVE", "max_surge": {"fixed": surge}, "max_unavailable": {"fixed": unavailable}}
        body = compute_v1.InstanceGroupManager(update_policy=policy)
        return migs.patch_unary(  # type: ignore[attr-defined]
            project=PROJECT, region=region, instance_group_manager="web-rmig", instance_group_manager_resource=body
        )

    with pytest.raises(
        exceptions.BadRequest,
        match=r"'resource.updatePolicy.maxSurge.fixed': '1'. Fixed updatePolicy.maxSurge for regional managed "
        r"instance group has to be either 0 or at least equal to the number of zones.",
    ):
        patch(1, 0)
    with pytest.raises(exceptions.BadRequest, match=r"updatePolicy.maxUnavailable.fixed': '2'"):
        patch(3, 2)
    patch(3, 0)  # 3 zones: accepted
