"""GCP target: Compute Engine images baked by Packer's googlecompute builder, stamped with labels.

Labels carry the stamp (GCP's rules: lowercase [a-z0-9_-], 63 characters; encoded reversibly, the
digest as base32, never truncated). The whole provenance document is too big for labels and an
image's description cannot change after creation, so Packer writes it into the description at
creation (everything known before the build), and the labels add what only the finished build
knows; `bakery show` puts the two back together.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from typing import Any

from bakery import provenance
from bakery.catalog import ImageRecord
from bakery.errors import ConfigError, ProviderError
from bakery.models import GcpTarget
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, ClientFactory, CloudProvider, Prepared
from bakery.retry import gcp_retry
from bakery.workspace import Workspace

PAGE_SIZE = 500


def default_clients(service: str, project: str, endpoint: str | None) -> Any:
    from google.cloud import compute_v1

    options = {"api_endpoint": endpoint} if endpoint else None
    if endpoint and endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        from google.auth.credentials import AnonymousCredentials

        return compute_v1.ImagesClient(
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            transport="rest",
            client_options=options,
        )
    return compute_v1.ImagesClient(transport="rest", client_options=options)


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> GcpProvider:
    return GcpProvider(reporter, clients or default_clients)


class GcpProvider(CloudProvider):
    kind = "gcp"
    spec_type = GcpTarget

    def __init__(self, reporter: Reporter, clients: ClientFactory) -> None:
        super().__init__(reporter, clients)
        self.retry = gcp_retry()

    @staticmethod
    def endpoint(spec: GcpTarget) -> str | None:
        """The target's endpoint, else $BAKERY_GCP_ENDPOINT (private endpoints, tests), else Google's."""
        return spec.endpoint or os.environ.get("BAKERY_GCP_ENDPOINT") or None

    def images_api(self, spec: GcpTarget) -> Any:
        return self.client("images", spec.project, self.endpoint(spec))

    # --- before the build ---------------------------------------------------------------------

    def resolve(self, request: BakeRequest) -> Prepared:
        spec = self._spec(request)
        api = self.images_api(spec)
        if request.parent is not None:
            project, _, name = request.parent.locations[0].partition("/")
            image = self._get(api, project=project, image=name, what=f"parent {request.parent.ref}")
        else:
            source = request.project.config.images[request.eff.name].source
            assert source is not None and source.gcp is not None
            project = source.gcp.project or spec.project
            if source.gcp.image:
                image = self._get(api, project=project, image=source.gcp.image, what="source image")
            else:
                key = (project, source.gcp.family, self.endpoint(spec))
                if key not in self._resolved:  # images sharing a family look it up once
                    self._resolved[key] = self._call(
                        f"family {source.gcp.family} in {project}",
                        api.get_from_family,
                        project=project,
                        family=source.gcp.family,
                    )
                image = self._resolved[key]
        return Prepared(
            variables={"source_image": image.name, "source_image_project_id": [project]},
            base=f"{project}/{image.name}",
            base_dependency={
                "name": f"gce-image:{project}/{image.name}",
                "uri": image.self_link,
                "digest": {"gceImageId": str(image.id)},
            },
            parent=request.parent,
        )

    def prepare(self, request: BakeRequest) -> Prepared:
        return self.resolve(request)

    def before_build(self, request: BakeRequest, skeleton: dict[str, Any]) -> dict[str, Any]:
        """The description (with the provenance known so far) and the pending labels, set at creation."""
        stamp = provenance.stamp_of(skeleton, state="pending")
        description = request.eff.image.description + provenance.DESCRIPTION_MARKER + provenance.pack(skeleton)
        labels = provenance.gcp_stamp_labels(stamp)
        if len(labels) + len(request.eff.tags) > provenance.GCP_MAX_LABELS:
            raise ConfigError(
                f"image {request.eff.name} has {len(request.eff.tags)} tags; with bakery's {len(labels)} labels "
                f"that exceeds GCP's {provenance.GCP_MAX_LABELS}: remove some (overrides.<target>.tags)"
            )
        return {"image_description": description, "gcp_build_labels": labels}

    # --- after the build ----------------------------------------------------------------------

    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, dict[str, str]]:
        spec = self._spec(request)
        name = artifacts[0] if artifacts else f"{request.eff.name}-{request.version.replace('.', '-')}"
        image = self._get(self.images_api(spec), project=spec.project, image=name, what="baked image")
        return f"gce:{spec.project}/{image.name}", {"gceImageId": str(image.id)}

    def discard(self, request: BakeRequest, artifacts: list[str]) -> None:
        spec = self._spec(request)
        for name in artifacts:
            try:
                self._call(f"delete {name}", self.images_api(spec).delete, project=spec.project, image=name)
            except ProviderError as exc:
                self.reporter.note(f"{exc.message}: remove it by hand")

    def publish(
        self,
        request: BakeRequest,
        prepared: Prepared,
        statement: dict[str, Any],
        inputs_digest: str,
        artifacts: list[str],
    ) -> ImageRecord:
        spec = self._spec(request)
        name = statement["subject"][0]["name"].rpartition("/")[2]
        stamp = provenance.stamp_of(statement, state="complete")
        labels = {**provenance.gcp_labels(request.eff.tags), **provenance.gcp_stamp_labels(stamp)}
        self.set_labels(spec, name, labels)
        image = self._get(self.images_api(spec), project=spec.project, image=name, what="baked image")
        return self._record(request.eff.target, spec, image)

    def set_labels(self, spec: GcpTarget, name: str, labels: dict[str, str]) -> None:
        """setLabels with the current fingerprint, verified by reading back.

        Not retried blindly: after a throttle, a 5xx or a fingerprint race (412) the labels are read
        again first, since the failed attempt may have been applied, and only set if still missing.
        """
        api = self.images_api(spec)
        delay = 0.5
        with _gcp_errors(f"labels of {name}"):
            self._set_labels(api, spec, name, labels, delay)

    def _set_labels(self, api: Any, spec: GcpTarget, name: str, labels: dict[str, str], delay: float) -> None:
        from google.api_core import exceptions
        from google.cloud import compute_v1

        for _ in range(6):
            image = self._get(api, project=spec.project, image=name, what="image")
            current = dict(image.labels)
            if all(current.get(k) == v for k, v in labels.items()):
                return
            request = compute_v1.GlobalSetLabelsRequest(
                labels={**current, **labels}, label_fingerprint=image.label_fingerprint
            )
            try:
                api.set_labels(
                    project=spec.project, resource=name, global_set_labels_request_resource=request, retry=None
                )
            except (exceptions.PreconditionFailed, exceptions.TooManyRequests, exceptions.ServerError) as exc:
                self.reporter.note(f"labels of {name}: {exc.code} {type(exc).__name__}; reading them again")
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 10.0)
        raise ProviderError(f"labels on image {name} did not stick after 6 attempts")

    # --- reading ------------------------------------------------------------------------------

    def images(self, target: str, name: str | None = None, *, include_pending: bool = False) -> list[ImageRecord]:
        from google.cloud import compute_v1

        spec = self.specs[target]
        flt = f"labels.bakery-target={target}"
        if name:
            flt += f" AND labels.bakery-image={name}"
        request = compute_v1.ListImagesRequest(project=spec.project, filter=flt, max_results=PAGE_SIZE)
        pager = self._call(f"images of {spec.project}", self.images_api(spec).list, request=request)
        records = []
        with _gcp_errors(f"images of {spec.project}"):  # later pages are fetched while iterating
            for image in pager:
                record = self._record(target, spec, image)
                if record.extra["state"] == "complete" or include_pending:
                    records.append(record)
        return records

    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        description = record.extra.get("description", "")
        if provenance.DESCRIPTION_MARKER not in description:
            raise ProviderError(f"{record.ref}: its description holds no bakery provenance")
        skeleton = provenance.unpack(description.split(provenance.DESCRIPTION_MARKER, 1)[1])
        return provenance.finalize(
            skeleton,
            subject_name=f"gce:{record.locations[0]}",
            subject_digest={"gceImageId": record.extra["id"]},
            finished=record.created,
        )

    def clean_up(self, record: ImageRecord) -> None:
        spec = self.specs[record.target]
        project, _, name = record.locations[0].partition("/")
        self._call(f"delete {name}", self.images_api(spec).delete, project=project, image=name)

    # --- helpers ------------------------------------------------------------------------------

    def _spec(self, request: BakeRequest) -> GcpTarget:
        spec = request.project.config.targets[request.eff.target]
        assert isinstance(spec, GcpTarget)
        self.specs[request.eff.target] = spec
        return spec

    def _call(self, what: str, method: Any, **kwargs: Any) -> Any:
        with _gcp_errors(what):
            return method(retry=self.retry, **kwargs)

    def _get(self, api: Any, *, project: str, image: str, what: str) -> Any:
        return self._call(f"{what} {project}/{image}", api.get, project=project, image=image)

    @staticmethod
    def _record(target: str, spec: GcpTarget, image: Any) -> ImageRecord:
        stamp = provenance.gcp_stamp(dict(image.labels))
        return ImageRecord(
            name=stamp.get("image", ""),
            version=stamp.get("version", ""),
            target=target,
            kind="gcp",
            inputs_digest=stamp.get("inputs-digest", ""),
            created=stamp.get("created", image.creation_timestamp),
            base=stamp.get("base", ""),
            parent=stamp.get("parent") or None,
            locations=(f"{spec.project}/{image.name}",),
            extra={
                "state": stamp.get("state", ""),
                "id": str(image.id),
                "description": image.description,
                "invocation": stamp.get("invocation", ""),
                "registered": image.creation_timestamp,
                "labels": dict(image.labels),
            },
        )


@contextlib.contextmanager
def _gcp_errors(what: str) -> Iterator[None]:
    """API refusals, missing credentials and unreachable endpoints as a ProviderError."""
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        yield
    except exceptions.GoogleAPICallError as exc:
        raise ProviderError(f"GCP: {what}: {exc.message}") from exc
    except (exceptions.RetryError, auth_exceptions.GoogleAuthError) as exc:
        raise ProviderError(f"GCP: {what}: {exc}", hint="check GCP credentials, project and endpoint") from exc
    except OSError as exc:  # requests' connection errors are OSErrors
        raise ProviderError(f"GCP: {what}: {exc}", hint="check the endpoint and the network") from exc
