"""Test instances of GCE images: one instance in the target's zone and network (its network,
subnetwork and network tags, which the firewall rules apply by), reached by SSH with a key made
for the test.

The key: its public half is the instance's own `ssh-keys` metadata (project keys blocked), which
the guest agent installs for the target's ssh_username; it lives and dies with the instance. The
instance is named after the run (`bakery-test-<image>-<run>`) and labelled `bakery-test-run`; the
insert carries a request id, so a retried insert never makes a second one. The cleanup deletes the
instance of that name, whether or not launch() returned, and waits until GCE says it is gone.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from bakery import runner
from bakery.config import kinds
from bakery.config.targets.gcp import GcpTarget
from bakery.errors import ProviderError
from bakery.imagetest.base import Launched, LaunchRequest, Reach, stand_in_endpoint
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory
from bakery.providers.gcp.api import default_clients, gcp_errors
from bakery.providers.gcp.provider import GcpProvider
from bakery.workspace import Workspace

RUN_LABEL = "bakery-test-run"
OPERATION_DEADLINE_SECONDS = 600.0
POLL_SECONDS = 2.0


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> GcpLauncher:
    return GcpLauncher(reporter, clients or default_clients)


def instance_body(request: LaunchRequest, spec: GcpTarget, image: str) -> dict[str, Any]:
    """The instance to insert (pure; REST field names): the image's boot disk, the target's
    network, subnetwork and tags, the test's key as the instance's only SSH key, the run's label."""
    interface: dict[str, Any] = {"network": spec.network or "global/networks/default"}
    if spec.subnetwork:
        interface["subnetwork"] = spec.subnetwork
    if not spec.use_internal_ip:
        interface["accessConfigs"] = [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}]
    body: dict[str, Any] = {
        "name": request.name,
        "machineType": f"zones/{spec.zone}/machineTypes/{spec.machine_type}",
        "disks": [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": image}}],
        "networkInterfaces": [interface],
        "labels": {RUN_LABEL: request.run},
        "metadata": {
            "items": [
                {"key": "ssh-keys", "value": f"{spec.ssh_username}:{request.key.public}"},
                {"key": "block-project-ssh-keys", "value": "true"},
            ]
        },
    }
    if spec.network_tags:
        body["tags"] = {"items": list(spec.network_tags)}
    if spec.service_account_email:
        body["serviceAccounts"] = [{"email": spec.service_account_email, "scopes": []}]
    return body


class GcpLauncher:
    def __init__(self, reporter: Reporter, clients: ClientFactory) -> None:
        self.reporter = reporter
        self.clients = clients

    def _client(self, service: str, spec: GcpTarget) -> Any:
        return self.clients(service, spec.project, GcpProvider.endpoint(spec))

    def launch(self, request: LaunchRequest) -> Launched:
        from google.cloud import compute_v1

        spec = kinds.typed(request.spec, GcpTarget, f"target '{request.target}'")
        project, _, name = request.record.locations[0].partition("/")
        image = f"projects/{project}/global/images/{name}"
        body = compute_v1.Instance.from_json(json.dumps(instance_body(request, spec, image)))
        instances = self._client("instances", spec)
        with gcp_errors("launch the test instance"):
            operation = instances.insert_unary(
                request=compute_v1.InsertInstanceRequest(
                    project=spec.project, zone=spec.zone, instance_resource=body, request_id=str(uuid.uuid4())
                )
            )
        self._wait(spec, operation, "launch the test instance", interruptible=True)
        with gcp_errors("read the test instance"):
            found = instances.get(project=spec.project, zone=spec.zone, instance=request.name)
        interface = found.network_interfaces[0]
        address = interface.network_i_p if spec.use_internal_ip else (interface.access_configs or [None])[0]
        host = address if isinstance(address, str) else getattr(address, "nat_i_p", "")
        if not host:
            raise ProviderError(
                f"test instance {request.name} has no {'internal' if spec.use_internal_ip else 'external'} address"
            )
        tags = f", tags {', '.join(spec.network_tags)}" if spec.network_tags else ""
        where = f"in {spec.project}/{spec.zone} ({spec.network or 'default network'}{tags})"
        endpoint = GcpProvider.endpoint(spec)
        nowhere = (
            f"its Compute endpoint {endpoint} is on this machine: a stand-in" if stand_in_endpoint(endpoint) else None
        )
        return Launched(request.name, where, Reach(host, 22, spec.ssh_username), spec, nowhere)

    def alive(self, launched: Launched) -> bool:
        spec = kinds.typed(launched.handle, GcpTarget, "the test instance's target")
        with gcp_errors("read the test instance"):
            found = self._client("instances", spec).get(project=spec.project, zone=spec.zone, instance=launched.id)
        return found.status in ("PROVISIONING", "STAGING", "RUNNING")

    def cleanup(self, request: LaunchRequest) -> list[str]:
        from google.api_core.exceptions import NotFound
        from google.cloud import compute_v1

        spec = kinds.typed(request.spec, GcpTarget, f"target '{request.target}'")
        instances = self._client("instances", spec)
        try:
            with gcp_errors("delete the test instance"):
                operation = instances.delete_unary(
                    request=compute_v1.DeleteInstanceRequest(
                        project=spec.project, zone=spec.zone, instance=request.name, request_id=str(uuid.uuid4())
                    )
                )
        except ProviderError as exc:
            if isinstance(exc.__cause__, NotFound):
                return []  # never made, or gone already
            raise
        self._wait(spec, operation, "delete the test instance", interruptible=False)
        return [f"test instance {request.name} in {spec.project}/{spec.zone} (deleted, with its key)"]

    def console(self, launched: Launched) -> str:
        return ""  # the serial port output is not enabled on test instances

    def _wait(self, spec: GcpTarget, operation: Any, what: str, *, interruptible: bool) -> None:
        """Until the zone operation is DONE; ProviderError when it failed or took too long. A
        cleanup goes on after a signal (runner.cleanup_phase): only a launch is interrupted."""
        from google.cloud import compute_v1

        operations = self._client("zoneOperations", spec)
        deadline = time.monotonic() + OPERATION_DEADLINE_SECONDS
        found = operation
        while found.status != compute_v1.Operation.Status.DONE:
            if interruptible:
                runner.check_interrupted(what)
            if time.monotonic() + POLL_SECONDS > deadline:
                raise ProviderError(
                    f"GCP: {what}: operation {found.name} not done after {OPERATION_DEADLINE_SECONDS:g}s"
                )
            time.sleep(POLL_SECONDS)
            with gcp_errors(what):
                found = operations.get(project=spec.project, zone=spec.zone, operation=found.name)
        errors = list(found.error.errors) if found.error else []
        if errors:
            raise ProviderError(f"GCP: {what}: " + "; ".join(f"{e.code}: {e.message}" for e in errors[:2]))
