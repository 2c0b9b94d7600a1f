"""Test instances of GCE images: one instance in the target's zone and network (its network,
subnetwork and network tags, which the firewall rules apply by), reached by SSH with a key made
for the test.

The key: its public half is the instance's own `ssh-keys` metadata (project keys blocked), which
the guest agent installs for the target's ssh_username; it lives and dies with the instance. The
instance is named after the run (`bakery-test-<image>-<run>`) and labelled `bakery-test-run`; the
insert carries a request id, so a retried insert never makes a second one.

The cleanup deletes the instance of that name, whether or not launch() returned, and waits until
GCE says it is gone. An insert may be accepted after bakery gave up on it (a signal, a dropped
connection, a timeout while it was in flight): so the launcher remembers each insert it sent;
when its operation is known the cleanup first waits for it to finish, and when it is not, and the
delete finds nothing, the cleanup looks again (by name and by the run's label) for
cloud.LEFTOVER_GRACE_SECONDS and deletes what appears.

Its life is bounded (bakery.imagetest.lifetime): scheduling.maxRunDuration, with
instanceTerminationAction DELETE, makes GCE delete it when its time is up, whatever becomes of
bakery; sweep() deletes the labelled instances of the target's zone whose time is up (their
creation time plus their own maxRunDuration), and only those named as bakery names them
(`bakery-test-<image>-<run>`, the run being the label's value): a stray label is not enough.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bakery import runner
from bakery.config import kinds
from bakery.config.targets.gcp import GcpTarget
from bakery.core.retry import GCP_DEADLINE_SECONDS, gcp_retry, request_timeout
from bakery.errors import ProviderError
from bakery.imagetest import lifetime
from bakery.imagetest.base import Launched, LaunchRequest, Reach
from bakery.imagetest.cloud import CloudLauncher, stand_in
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory
from bakery.providers.gcp.api import default_clients, gcp_errors
from bakery.providers.gcp.provider import GcpProvider
from bakery.workspace import Workspace

RUN_LABEL = "bakery-test-run"
OPERATION_DEADLINE_SECONDS = 600.0


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> GcpLauncher:
    return GcpLauncher(reporter, clients or default_clients)


def instance_body(request: LaunchRequest, spec: GcpTarget, image: str) -> dict[str, Any]:
    """The instance to insert (pure; REST field names): the image's boot disk, the target's
    network, subnetwork and tags, the test's key as the instance's only SSH key, the run's label,
    and the bound on its life, after which GCE deletes it."""
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
        "scheduling": {
            "maxRunDuration": {"seconds": str(lifetime.life_seconds(request.tests))},
            "instanceTerminationAction": "DELETE",
        },
    }
    if spec.network_tags:
        body["tags"] = {"items": list(spec.network_tags)}
    if spec.service_account_email:
        body["serviceAccounts"] = [{"email": spec.service_account_email, "scopes": []}]
    return body


@dataclass
class _Insert:
    """An insert bakery sent: GCE may make its instance whatever bakery heard back."""

    operation: str = ""  # its operation's name, once GCE answered
    done: bool = False  # its operation finished: the instance exists, or never will


class GcpLauncher(CloudLauncher):
    def __init__(self, reporter: Reporter, clients: ClientFactory, **timing: float) -> None:
        super().__init__(reporter, clients, **timing)
        self.timeout = request_timeout()
        self.retry = gcp_retry(deadline=min(GCP_DEADLINE_SECONDS, 3 * self.timeout))
        self._inserts: dict[str, _Insert] = {}  # run -> the insert sent for it

    def _client(self, service: str, spec: GcpTarget) -> Any:
        return self.clients(service, spec.project, GcpProvider.endpoint(spec))

    def launch(self, request: LaunchRequest) -> Launched:
        from google.cloud import compute_v1

        spec = kinds.typed(request.spec, GcpTarget, f"target '{request.target}'")
        project, _, name = request.record.locations[0].partition("/")
        image = f"projects/{project}/global/images/{name}"
        body = compute_v1.Instance.from_json(json.dumps(instance_body(request, spec, image)))
        instances = self._client("instances", spec)
        # The request id makes api-core's retries of this insert safe: GCE answers a repeat with
        # the first one's operation instead of making a second instance.
        insert = compute_v1.InsertInstanceRequest(
            project=spec.project, zone=spec.zone, instance_resource=body, request_id=str(uuid.uuid4())
        )
        sent = self._inserts[request.run] = _Insert()
        with gcp_errors("launch the test instance"):
            operation = instances.insert_unary(request=insert, retry=self.retry, timeout=self.timeout)
        sent.operation = operation.name
        done = self._wait(spec, operation, "launch the test instance", interruptible=True)
        sent.done = True
        _raise_failed(done, "launch the test instance")
        with gcp_errors("read the test instance"):
            found = instances.get(
                project=spec.project, zone=spec.zone, instance=request.name, retry=self.retry, timeout=self.timeout
            )
        interface = found.network_interfaces[0]
        address = interface.network_i_p if spec.use_internal_ip else (interface.access_configs or [None])[0]
        host = address if isinstance(address, str) else getattr(address, "nat_i_p", "")
        if not host:
            raise ProviderError(
                f"test instance {request.name} has no {'internal' if spec.use_internal_ip else 'external'} address"
            )
        tags = f", tags {', '.join(spec.network_tags)}" if spec.network_tags else ""
        where = f"in {spec.project}/{spec.zone} ({spec.network or 'default network'}{tags})"
        nowhere = stand_in("Compute", GcpProvider.endpoint(spec))
        return Launched(request.name, where, Reach(host, 22, spec.ssh_username), spec, nowhere)

    def alive(self, launched: Launched) -> bool:
        spec = kinds.typed(launched.handle, GcpTarget, "the test instance's target")
        with gcp_errors("read the test instance"):
            found = self._client("instances", spec).get(
                project=spec.project, zone=spec.zone, instance=launched.id, retry=self.retry, timeout=self.timeout
            )
        return found.status in ("PROVISIONING", "STAGING", "RUNNING")

    def cleanup(self, request: LaunchRequest) -> list[str]:
        spec = kinds.typed(request.spec, GcpTarget, f"target '{request.target}'")
        sent = self._inserts.pop(request.run, None)
        if sent is not None and sent.operation and not sent.done:
            try:  # until it is done, a delete may find nothing and the insert make it afterwards
                self._wait(spec, sent.operation, "finish the test instance's insert", interruptible=False)
                sent.done = True
            except ProviderError as exc:
                self.reporter.note(f"{exc.message}; looking for the test instance instead")
        if self._delete(spec, request.name, interruptible=False):
            return [f"test instance {request.name} in {spec.project}/{spec.zone} (deleted, with its key)"]
        if sent is None or sent.done:
            return []  # never made, or gone already
        return self._delete_when_it_appears(spec, request)

    def sweep(self, request: LaunchRequest) -> list[str]:
        from google.cloud import compute_v1

        spec = kinds.typed(request.spec, GcpTarget, f"target '{request.target}'")
        now = dt.datetime.now(dt.UTC)
        listing = compute_v1.ListInstancesRequest(project=spec.project, zone=spec.zone, filter=f"labels.{RUN_LABEL}:*")
        with gcp_errors("look for test instances left by earlier runs"):
            listed = list(self._client("instances", spec).list(request=listing, retry=self.retry, timeout=self.timeout))
        removed: list[str] = []
        for instance in listed:
            if RUN_LABEL not in instance.labels or instance.status == "STOPPING":
                continue  # not a test instance, or being deleted already
            if not (
                instance.name.startswith("bakery-test-") and instance.name.endswith(f"-{instance.labels[RUN_LABEL]}")
            ):
                continue  # labelled by hand or by another tool, not named as bakery names its test instances
            life = int(instance.scheduling.max_run_duration.seconds) if instance.scheduling else 0
            ends = lifetime.deadline(None, instance.creation_timestamp, life)
            if ends is None or ends > now:
                continue
            name, run = _shown(instance.name), _shown(instance.labels[RUN_LABEL])
            if self._delete(spec, instance.name, interruptible=True):
                removed.append(
                    f"test instance {name} in {spec.project}/{spec.zone} "
                    f"(run {run}, its time was up at {lifetime.rfc3339(ends)}): deleted"
                )
        return removed

    def console(self, launched: Launched) -> str:
        return ""  # the serial port output is not enabled on test instances

    def _delete(self, spec: GcpTarget, name: str, *, interruptible: bool) -> bool:
        """Delete the instance and wait until GCE says it is gone: True; False if there was none."""
        from google.api_core.exceptions import NotFound
        from google.cloud import compute_v1

        delete = compute_v1.DeleteInstanceRequest(
            project=spec.project, zone=spec.zone, instance=name, request_id=str(uuid.uuid4())
        )
        try:
            with gcp_errors("delete the test instance"):
                operation = self._client("instances", spec).delete_unary(
                    request=delete, retry=self.retry, timeout=self.timeout
                )
        except ProviderError as exc:
            if isinstance(exc.__cause__, NotFound):
                return False
            raise
        done = self._wait(spec, operation, "delete the test instance", interruptible=interruptible)
        _raise_failed(done, "delete the test instance")
        return True

    def _delete_when_it_appears(self, spec: GcpTarget, request: LaunchRequest) -> list[str]:
        """Delete the run's instance should it appear within grace_seconds (by its name or its
        label): the insert was sent, and GCE may accept it after the delete found nothing."""
        from google.api_core.exceptions import NotFound
        from google.cloud import compute_v1

        instances = self._client("instances", spec)
        listing = compute_v1.ListInstancesRequest(
            project=spec.project, zone=spec.zone, filter=f'labels.{RUN_LABEL} = "{request.run}"'
        )

        def find_and_delete() -> list[str]:
            found: set[str] = set()
            with gcp_errors("look for the test instance"):
                try:
                    instances.get(
                        project=spec.project,
                        zone=spec.zone,
                        instance=request.name,
                        retry=self.retry,
                        timeout=self.timeout,
                    )
                    found.add(request.name)
                except NotFound:
                    pass
                found.update(i.name for i in instances.list(request=listing, retry=self.retry, timeout=self.timeout))
            return [
                f"test instance {_shown(name)} in {spec.project}/{spec.zone} (deleted, with its key)"
                for name in sorted(found)
                if self._delete(spec, name, interruptible=False)
            ]

        note = f"the test instance's insert got no answer: looking for {request.name}"
        return self._look_again(note, find_and_delete)

    def _wait(self, spec: GcpTarget, operation: Any, what: str, *, interruptible: bool) -> Any:
        """The zone operation (an Operation, or its name) once DONE; ProviderError when it takes
        too long. A cleanup goes on after a signal (runner.cleanup_phase): only a launch is interrupted."""
        from google.cloud import compute_v1

        operations = self._client("zoneOperations", spec)
        deadline = time.monotonic() + OPERATION_DEADLINE_SECONDS
        name = operation if isinstance(operation, str) else operation.name
        found = None if isinstance(operation, str) else operation
        while found is None or found.status != compute_v1.Operation.Status.DONE:
            if found is not None:
                if interruptible:
                    runner.check_interrupted(what)
                if time.monotonic() + self.poll_seconds > deadline:
                    raise ProviderError(f"GCP: {what}: operation {name} not done after {OPERATION_DEADLINE_SECONDS:g}s")
                time.sleep(self.poll_seconds)
            with gcp_errors(what):
                found = operations.get(
                    project=spec.project, zone=spec.zone, operation=name, retry=self.retry, timeout=self.timeout
                )
        return found


def _raise_failed(operation: Any, what: str) -> None:
    """ProviderError when the DONE `operation` failed."""
    errors = list(operation.error.errors) if operation.error else []
    if errors:
        raise ProviderError(f"GCP: {what}: " + "; ".join(f"{e.code}: {e.message}" for e in errors[:2]))


def _shown(text: str) -> str:
    """A name or label read back from GCE, fit for a line of output."""
    return re.sub(r"[^a-z0-9_-]", "?", str(text)[:63])
