"""The Compute Engine calls of the GCP group driver, for one group's project and zone or region:
instance templates, managed instance groups (zonal or regional), backend services, images.

Every call has a timeout and google-api-core's retry policy (bakery.retry.gcp_retry), except
those a retry could repeat wrongly (a backend patch, checked by its fingerprint instead). Creates
carry a requestId derived from the rollout, so a retried insert returns the first one's result.
Every change is followed to its operation's DONE through an operations client at the group's
endpoint (bakery.providers.gcp_api.Compute.wait). Answers come back as plain dicts (the
messages' Python field names); SDK errors are mapped by the caller's gcp_errors.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from bakery.errors import Conflict
from bakery.groups.gcp.requests import Where, name_of, resource_path
from bakery.progress import Reporter
from bakery.providers.gcp.api import Compute

_REQUEST_IDS = uuid.UUID("6f1c2b1e-4d0a-4c53-9a43-62616b657279")


def request_id(*parts: str) -> str:
    """The same UUID for the same create, on any machine (GCE drops a repeated requestId)."""
    return str(uuid.uuid5(_REQUEST_IDS, "/".join(parts)))


def as_dict(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = type(message).to_dict(message)
    return out


class _ScopedOperations:
    """A zone's or region's operations client, called as the global one is (Compute.wait's get)."""

    def __init__(self, client: Any, where: dict[str, str]) -> None:
        self.client = client
        self.where = where

    def get(self, *, project: str, operation: str, retry: Any, timeout: float) -> Any:
        return self.client.get(project=project, operation=operation, retry=retry, timeout=timeout, **self.where)


class GroupApi:
    def __init__(
        self,
        client: Callable[[str], Any],
        where: Where,
        reporter: Reporter,
        *,
        timeout: float,
        retry: Any,
        operation_deadline: float,
    ) -> None:
        """`client(service)` gives the client of one service for the group's project and endpoint."""
        self.client = client
        self.where = where
        self.project = where.project
        self.reporter = reporter
        self.timeout = timeout
        self.retry = retry
        self.operation_deadline = operation_deadline

    def _call(self, method: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("retry", self.retry)
        return method(project=self.project, timeout=self.timeout, **kwargs)

    def _wait(self, operation: Any, scope: str, what: str) -> None:
        if scope == "global":
            operations: Any = self.client("globalOperations")
        else:
            kind, _, place = scope.partition("/")
            service = "zoneOperations" if kind == "zones" else "regionOperations"
            operations = _ScopedOperations(self.client(service), {kind[:-1]: place})
        compute = Compute(
            None,
            operations,
            self.reporter,
            timeout=self.timeout,
            retry=self.retry,
            operation_deadline=self.operation_deadline,
        )
        compute.wait(self.project, operation, what=what)

    def _missing(self, call: Callable[[], Any]) -> Any | None:
        from google.api_core import exceptions

        try:
            return call()
        except exceptions.NotFound:
            return None

    # --- images --------------------------------------------------------------------------------

    def image(self, path: str) -> dict[str, Any] | None:
        """The image at 'projects/P/global/images/N' (or its family's newest), None if it is gone."""
        found = re.fullmatch(r"projects/([^/]+)/global/images/(family/)?([^/]+)", resource_path(path))
        if found is None:
            return None
        images = self.client("images")
        project, family, name = found.groups()

        def get() -> Any:
            if family:
                return images.get_from_family(project=project, family=name, retry=self.retry, timeout=self.timeout)
            return images.get(project=project, image=name, retry=self.retry, timeout=self.timeout)

        image = self._missing(get)
        return None if image is None else as_dict(image)

    # --- instance templates --------------------------------------------------------------------

    def _templates(self, path: str) -> tuple[Any, dict[str, str], str]:
        """(client, location kwargs, scope) for a template path."""
        region = re.search(r"/regions/([^/]+)/instanceTemplates/", path)
        if region:
            return self.client("regionInstanceTemplates"), {"region": region.group(1)}, f"regions/{region.group(1)}"
        return self.client("instanceTemplates"), {}, "global"

    def template(self, url: str) -> dict[str, Any] | None:
        client, where, _ = self._templates(resource_path(url))
        found = self._missing(lambda: self._call(client.get, instance_template=name_of(url), **where))
        return None if found is None else as_dict(found)

    def insert_template(self, scope: str, body: dict[str, Any], key: str) -> str:
        """Create the template (once: `key` makes its requestId) and wait for it; its path."""
        from google.cloud import compute_v1

        path = f"projects/{self.project}/{scope}/instanceTemplates/{body['name']}"
        client, where, _ = self._templates(path)
        request_type = (
            compute_v1.InsertRegionInstanceTemplateRequest if where else compute_v1.InsertInstanceTemplateRequest
        )
        request = request_type(
            project=self.project,
            instance_template_resource=compute_v1.InstanceTemplate(body),
            request_id=request_id(self.project, scope, "instanceTemplates", key, body["name"]),
            **where,
        )
        operation = client.insert_unary(request=request, retry=self.retry, timeout=self.timeout)
        self._wait(operation, scope, f"creating instance template {body['name']}")
        return path

    def templates(self, scope: str, flt: str) -> list[dict[str, Any]]:
        from google.cloud import compute_v1

        client, where, _ = self._templates(f"projects/{self.project}/{scope}/instanceTemplates/x")
        request_type = (
            compute_v1.ListRegionInstanceTemplatesRequest if where else compute_v1.ListInstanceTemplatesRequest
        )
        request = request_type(project=self.project, filter=flt, max_results=500, **where)
        return [as_dict(t) for t in client.list(request=request, retry=self.retry, timeout=self.timeout)]

    def delete_template(self, url: str) -> bool:
        """Delete it and wait; False when it was already gone."""
        client, where, scope = self._templates(resource_path(url))
        operation = self._missing(lambda: self._call(client.delete_unary, instance_template=name_of(url), **where))
        if operation is None:
            return False
        self._wait(operation, scope, f"deleting instance template {name_of(url)}")
        return True

    # --- managed instance groups ---------------------------------------------------------------

    def _migs(self) -> tuple[Any, dict[str, str]]:
        if self.where.zone:
            return self.client("instanceGroupManagers"), {"zone": self.where.zone}
        return self.client("regionInstanceGroupManagers"), {"region": str(self.where.region)}

    def mig(self, name: str) -> dict[str, Any] | None:
        client, where = self._migs()
        found = self._missing(lambda: self._call(client.get, instance_group_manager=name, **where))
        return None if found is None else as_dict(found)

    def migs(self, flt: str) -> list[dict[str, Any]]:
        from google.cloud import compute_v1

        client, where = self._migs()
        if self.where.zone:
            request: Any = compute_v1.ListInstanceGroupManagersRequest(project=self.project, filter=flt, **where)
        else:
            request = compute_v1.ListRegionInstanceGroupManagersRequest(project=self.project, filter=flt, **where)
        return [as_dict(m) for m in client.list(request=request, retry=self.retry, timeout=self.timeout)]

    def managed(self, name: str) -> list[dict[str, Any]]:
        """listManagedInstances: one entry per instance (current_action, instance_status, version,
        instance_health)."""
        client, where = self._migs()
        pager = self._call(client.list_managed_instances, instance_group_manager=name, **where)
        return [as_dict(m) for m in pager]

    def patch_mig(self, name: str, body: dict[str, Any], what: str, *, fingerprint: str | None = None) -> None:
        """PATCH the MIG. With `fingerprint` (of the MIG as read), GCE refuses it if the MIG changed
        since: Conflict then, not retried (the caller reads again and decides)."""
        from google.api_core.exceptions import PreconditionFailed
        from google.cloud import compute_v1

        client, where = self._migs()
        resource = {**body, "fingerprint": fingerprint} if fingerprint else body
        try:
            operation = self._call(
                client.patch_unary,
                instance_group_manager=name,
                instance_group_manager_resource=compute_v1.InstanceGroupManager(resource),
                **({"retry": None} if fingerprint else {}),
                **where,
            )
        except PreconditionFailed as exc:
            raise Conflict(f"{self.where.mig(name)} changed since it was read (fingerprint)") from exc
        self._wait(operation, self.where.scope, what)

    def resize(self, name: str, size: int) -> None:
        client, where = self._migs()
        operation = self._call(client.resize_unary, instance_group_manager=name, size=size, **where)
        self._wait(operation, self.where.scope, f"resizing {self.where.mig(name)} to {size}")

    def insert_mig(self, body: dict[str, Any], key: str) -> None:
        from google.cloud import compute_v1

        client, where = self._migs()
        zonal = bool(self.where.zone)
        request_type = (
            compute_v1.InsertInstanceGroupManagerRequest
            if zonal
            else compute_v1.InsertRegionInstanceGroupManagerRequest
        )
        request = request_type(
            project=self.project,
            instance_group_manager_resource=compute_v1.InstanceGroupManager(body),
            request_id=request_id(self.project, self.where.scope, "instanceGroupManagers", key, body["name"]),
            **where,
        )
        operation = client.insert_unary(request=request, retry=self.retry, timeout=self.timeout)
        self._wait(operation, self.where.scope, f"creating {self.where.mig(body['name'])}")

    def delete_mig(self, name: str) -> bool:
        client, where = self._migs()
        operation = self._missing(lambda: self._call(client.delete_unary, instance_group_manager=name, **where))
        if operation is None:
            return False
        self._wait(operation, self.where.scope, f"deleting {self.where.mig(name)}")
        return True

    # --- backend services (global) -------------------------------------------------------------

    def backend(self, name: str) -> dict[str, Any] | None:
        client = self.client("backendServices")
        found = self._missing(lambda: self._call(client.get, backend_service=name))
        return None if found is None else as_dict(found)

    def patch_backend(self, name: str, body: dict[str, Any]) -> None:
        """Patch with the fingerprint in `body`; not retried (a repeat would fail on the fingerprint:
        the caller reads the service again and decides)."""
        from google.cloud import compute_v1

        client = self.client("backendServices")
        operation = self._call(
            client.patch_unary,
            backend_service=name,
            backend_service_resource=compute_v1.BackendService(body),
            retry=None,
        )
        self._wait(operation, "global", f"changing the backends of backend service {name}")

    def backend_health(self, name: str, group: str) -> list[dict[str, Any]]:
        """The health of each instance of instance group `group` (a URL) as `name` sees it."""
        from google.cloud import compute_v1

        client = self.client("backendServices")
        answer = self._call(
            client.get_health,
            backend_service=name,
            resource_group_reference_resource=compute_v1.ResourceGroupReference(group=group),
        )
        return list(as_dict(answer).get("health_status", []))
