"""GCP target: Compute Engine images baked by Packer's googlecompute builder, stamped with labels.

Labels carry the stamp (GCP's rules: lowercase [a-z0-9_-], 63 characters; encoded reversibly, the
digest as base32, never truncated; a value too long for a label as its digest). The whole
provenance document is too big for labels and an image's description cannot change after
creation, so Packer writes it into the description at creation (everything known before the
build), and the labels add what only the finished build knows; `bakery show` puts the two back
together.

Every image a bake creates carries the bake's mark from its creation: Packer inserts it with
bakery's pending labels (the stamp, the bake's invocation and its owner), and the bake renews a
heartbeat label while it runs. An image without bakery's labels is never bakery's.

Every change (setLabels, delete) is followed to its operation's DONE through an operations client
made for the target's endpoint, then read back; every call has a timeout.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bakery.config.models import Prune
from bakery.config.targets.gcp import GcpSource, GcpTarget
from bakery.core import jcs, provenance
from bakery.core.catalog import ImageRecord
from bakery.core.debris import Leftover, Owner, iso
from bakery.core.provenance import Dependency
from bakery.core.retry import GCP_DEADLINE_SECONDS, gcp_retry, request_timeout
from bakery.errors import ConfigError, ProviderError
from bakery.progress import Reporter
from bakery.providers.base import BakeRequest, Claim, ClientFactory, CloudProvider, Prepared, Usage, guarded_by
from bakery.providers.gcp import prune as gcp_prune
from bakery.providers.gcp import trust as gcp_trust
from bakery.providers.gcp import usage as gcp_usage
from bakery.providers.gcp.api import Compute, gcp_errors
from bakery.providers.gcp.api import default_clients as default_clients  # where the group driver and tests get it
from bakery.providers.gcp.labels import (
    HEARTBEAT_LABEL,
    INVOCATION_LABEL,
    OWNER_LABELS,
    PREFIX,
    REQUIRED,
    STATE_LABEL,
    claim,
    mark_of,
    owner_labels,
    owner_of,
    readable,
)
from bakery.providers.gcp.variables import GcpMarks, GcpPrepared
from bakery.providers.gcp.variables import packer_variables as packer_variables  # the kind's Packer variables
from bakery.providers.gcp.variables import preview as preview  # an offline render's values
from bakery.steps import Step
from bakery.workspace import Workspace

OPERATION_DEADLINE = 120.0  # seconds for an operation to be DONE


def make(workspace: Workspace, reporter: Reporter, clients: ClientFactory | None = None) -> GcpProvider:
    return GcpProvider(reporter, clients or default_clients)


_guarded = guarded_by(gcp_errors)


class GcpProvider(CloudProvider[GcpTarget]):
    kind = "gcp"
    spec_type = GcpTarget

    def __init__(
        self,
        reporter: Reporter,
        clients: ClientFactory,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        operation_deadline: float = OPERATION_DEADLINE,
    ) -> None:
        """`timeout`: seconds one request may wait for an answer (a hanging endpoint fails it), by
        default request_timeout(); `deadline`: seconds a call and its retries may take, by default
        three request timeouts, at most GCP_DEADLINE_SECONDS."""
        super().__init__(reporter, clients)
        self.timeout = timeout if timeout is not None else request_timeout()
        if deadline is None:
            deadline = min(GCP_DEADLINE_SECONDS, 3 * self.timeout)
        self.retry = gcp_retry(deadline=deadline)
        self.operation_deadline = operation_deadline

    @staticmethod
    def endpoint(spec: GcpTarget) -> str | None:
        """The target's endpoint, else $BAKERY_GCP_ENDPOINT (private endpoints, tests), else Google's."""
        return spec.endpoint or os.environ.get("BAKERY_GCP_ENDPOINT") or None

    def compute(self, spec: GcpTarget) -> Compute:
        endpoint = self.endpoint(spec)
        return Compute(
            self.client("images", spec.project, endpoint),
            self.client("globalOperations", spec.project, endpoint),
            self.reporter,
            timeout=self.timeout,
            retry=self.retry,
            operation_deadline=self.operation_deadline,
        )

    # --- before the build ---------------------------------------------------------------------

    @_guarded("looking up the source image")
    def resolve(self, request: BakeRequest) -> GcpPrepared:
        spec = self._spec(request)
        api = self.compute(spec)
        if request.parent is not None:
            project, _, name = request.parent.locations[0].partition("/")
            image = api.get(project, name, what=f"parent {request.parent.ref}")
        else:
            source = request.project.config.images[request.eff.name].source
            chosen = source.of("gcp", GcpSource) if source else None
            if chosen is None:
                raise ConfigError(f"image '{request.eff.name}' has no gcp source")
            project = chosen.project or spec.project
            if chosen.image:
                image = api.get(project, chosen.image, what="source image")
            else:
                key = (project, chosen.family, self.endpoint(spec))
                if key not in self._resolved:  # images sharing a family look it up once
                    self._resolved[key] = api.family(project, str(chosen.family))
                image = self._resolved[key]
        return GcpPrepared(
            source_image=image.name,
            source_image_project_id=(project,),
            base=f"{project}/{image.name}",
            base_dependency=Dependency(
                name=f"gce-image:{project}/{image.name}", uri=image.self_link, digest={"gceImageId": str(image.id)}
            ),
            parent=request.parent,
        )

    def prepare(self, request: BakeRequest) -> GcpPrepared:
        return self.resolve(request)

    def before_build(self, request: BakeRequest, skeleton: dict[str, Any]) -> GcpMarks:
        """What Packer sets when it creates the image: the description (the image's own, then the
        provenance known so far) and bakery's labels: the pending stamp, the bake's invocation and
        its owner. Raises ConfigError if the image's tags leave no room for them."""
        stamp = provenance.stamp_of(skeleton, state="pending")
        if request.invocation:
            stamp["invocation"] = request.invocation
        labels = provenance.gcp_stamp_labels(stamp)
        if request.owner is not None:
            labels.update(owner_labels(request.owner))
        tags = provenance.gcp_labels(request.eff.tags)
        ours = sorted(k for k in tags if k.startswith(PREFIX))
        if ours:
            raise ConfigError(
                f"image {request.eff.name}: tag(s) {', '.join(ours)}: GCP labels starting with "
                f"'{PREFIX}' are bakery's own; rename them"
            )
        needed = len(provenance.STAMP_FIELDS) + len(OWNER_LABELS) + 1  # + the heartbeat
        if len(tags) + needed > provenance.GCP_MAX_LABELS:
            raise ConfigError(
                f"image {request.eff.name} has {len(tags)} tags; with bakery's {needed} labels that exceeds "
                f"GCP's {provenance.GCP_MAX_LABELS}: remove some (overrides.<target>.tags)"
            )
        description = request.eff.image.description + provenance.DESCRIPTION_MARKER + provenance.pack(skeleton)
        return GcpMarks(image_description=description, gcp_build_labels=labels)

    # --- after the build ----------------------------------------------------------------------

    @_guarded("reading the baked image")
    def subject(self, request: BakeRequest, artifacts: list[str]) -> tuple[str, dict[str, str]]:
        spec = self._spec(request)
        name = artifacts[0] if artifacts else f"{request.eff.name}-{request.version.replace('.', '-')}"
        image = self.compute(spec).get(spec.project, name, what="baked image")
        return f"gce:{spec.project}/{image.name}", gcp_trust.digest_set(spec.project, image)

    @_guarded("recording the baked image")
    def publish(
        self,
        request: BakeRequest,
        prepared: Prepared,
        statement: dict[str, Any],
        inputs_digest: str,
        artifacts: list[str],
        attestation: str | None = None,
    ) -> ImageRecord:
        """Write the final labels (the complete stamp, the user's tags, the attestation's digest) in
        one setLabels, wait for it and read them back. Never deletes anything: on failure the Baker
        removes what its bake made."""
        spec = self._spec(request)
        name = statement["subject"][0]["name"].rpartition("/")[2]
        stamp = provenance.stamp_of(statement, state="complete")
        if request.invocation:
            stamp["invocation"] = request.invocation
        final = {**provenance.gcp_labels(request.eff.tags), **provenance.gcp_stamp_labels(stamp)}
        if attestation is not None:
            final[provenance.GCP_ATTESTATION_LABEL] = provenance.gcp_digest(attestation)

        def complete(labels: dict[str, str]) -> dict[str, str]:
            claim(labels, f"{spec.project}/{name}", stamp["invocation"])
            # Labels not bakery's stay; the owner and the heartbeat were for the running bake.
            return {**{k: v for k, v in labels.items() if not k.startswith(PREFIX)}, **final}

        image = self.compute(spec).relabel(spec.project, name, complete)
        return self._record(request.eff.target, spec.project, image, stamp)

    # --- reading ------------------------------------------------------------------------------

    @_guarded("listing images")
    def images(self, target: str, name: str | None = None) -> list[ImageRecord]:
        spec = self.specs[target]
        records = []
        for image in self._list(spec, target=target, image=name):
            stamp, problems = self.read_stamp(image)
            if stamp.get("state") != "complete" and "state" not in problems:
                continue
            where = f"{spec.project}/{image.name}"
            missing = [f for f in REQUIRED if f not in stamp]
            if missing:
                why = "; ".join(problems.get(f, f"no {PREFIX}{f} label") for f in missing)
                self.reporter.note(f"skipping GCP image {where}: bakery cannot read its labels: {why}")
                continue
            for problem in problems.values():
                self.reporter.note(f"GCP image {where}: ignoring a label bakery cannot read: {problem}")
            records.append(self._record(target, spec.project, image, stamp))
        return records

    @_guarded("reading the provenance in an image's description")
    def provenance(self, record: ImageRecord) -> dict[str, Any]:
        skeleton = gcp_trust.skeleton(record.extra.get("description", ""))
        if skeleton is None:
            raise ProviderError(f"{record.ref}: the description of {record.locations[0]} holds no bakery provenance")
        digests = {"gceImageId": record.extra["id"]}
        if "descriptor" in record.extra:
            digests["sha256"] = jcs.digest(record.extra["descriptor"]).removeprefix("sha256:")
        return provenance.finalize(
            skeleton, subject_name=f"gce:{record.locations[0]}", subject_digest=digests, finished=record.created
        )

    # --- trust (gcp_trust.py) -----------------------------------------------------------------

    @_guarded("reading an image")
    def descriptor(self, record: ImageRecord) -> dict[str, Any]:
        return gcp_trust.descriptor(self, record)

    @_guarded("reading an image's labels")
    def claims(self, record: ImageRecord) -> list[Claim]:
        return gcp_trust.claims(self, record)

    @_guarded("deprecating an image")
    def mark_revoked(self, record: ImageRecord, *, at: str, reason: str, replacement: ImageRecord | None) -> str:
        """GCP deprecation (it holds no reason: the registry's revocation does)."""
        return gcp_trust.mark_revoked(self, record, at=at, replacement=replacement)

    @_guarded("clearing an image's deprecation")
    def unmark_revoked(self, record: ImageRecord) -> str:
        return gcp_trust.unmark_revoked(self, record)

    # --- prune (gcp_prune.py) ------------------------------------------------------------------

    @_guarded("reading what uses the images")
    def usage(self, records: Sequence[ImageRecord]) -> list[Usage]:
        return gcp_usage.usage(self, records)

    def prune_steps(
        self, record: ImageRecord, *, replacement: ImageRecord | None, now: str, policy: Prune
    ) -> Sequence[Step]:
        steps = gcp_prune.prune_steps(self, record, replacement=replacement, now=now, policy=policy)
        return [replace(s, run=_guarded(f"pruning {record.ref}: {s.name}")(s.run)) for s in steps]

    @_guarded("reading an image's deprecation")
    def prune_next(self, record: ImageRecord, *, replacement: ImageRecord | None, now: str) -> str | None:
        return gcp_prune.next_rung(self, record, replacement=replacement, now=now)

    @_guarded("restoring an image to ACTIVE")
    def prune_restore(self, record: ImageRecord, *, act: bool) -> str | None:
        return gcp_prune.restore(self, record, act=act)

    # --- what bakes leave behind --------------------------------------------------------------

    @_guarded("looking for images of bakes")
    def marked(
        self, target: str, name: str, *, version: str | None = None, invocation: str | None = None
    ) -> list[Leftover]:
        spec = self.specs[target]
        bakes: dict[str, list[tuple[Any, dict[str, str]]]] = defaultdict(list)
        for image in self._list(spec, target=target, image=name, version=version, invocation=invocation):
            stamp, problems = self.read_stamp(image)
            if "invocation" not in stamp:
                why = problems.get("invocation", f"no {INVOCATION_LABEL} label")
                self.reporter.note(f"skipping GCP image {spec.project}/{image.name}: no bake's mark on it: {why}")
                continue
            bakes[stamp["invocation"]].append((image, stamp))
        return [self._leftover(target, spec.project, bake, found) for bake, found in sorted(bakes.items())]

    @staticmethod
    def _leftover(target: str, project: str, bake: str, found: list[tuple[Any, dict[str, str]]]) -> Leftover:
        found.sort(key=lambda pair: (pair[0].creation_timestamp, pair[0].name))
        first, stamp = found[0]
        labels = dict(first.labels)
        return Leftover(
            target=target,
            image=stamp.get("image", ""),
            version=stamp.get("version", ""),
            invocation=bake,
            locations=tuple(f"{project}/{image.name}" for image, _ in found),
            created=first.creation_timestamp,
            state=stamp.get("state", ""),
            owner=owner_of(labels, bake),
            heartbeat=readable(labels.get(HEARTBEAT_LABEL)),
        )

    @_guarded("writing the bake's heartbeat")
    def heartbeat(self, target: str, name: str, owner: Owner) -> None:
        spec = self.specs[target]
        beat = {**owner_labels(owner), HEARTBEAT_LABEL: provenance.gcp_value(iso(datetime.now(UTC)))}

        def renew(labels: dict[str, str]) -> dict[str, str] | None:
            if mark_of(labels) != owner.invocation or labels.get(STATE_LABEL) == "complete":
                return None  # a published image does not change
            return {**labels, **beat}

        api = self.compute(spec)
        for image in self._list(spec, target=target, image=name, invocation=owner.invocation):
            api.relabel(spec.project, image.name, renew)

    @_guarded("removing images")
    def remove(self, leftover: Leftover) -> list[str]:
        api = self.compute(self.specs[leftover.target])
        removed = []
        for location in leftover.locations:
            project, _, name = location.partition("/")
            image = api.find(project, name)
            if image is None:
                continue  # already gone: another cleanup got there first
            if mark_of(dict(image.labels)) != leftover.invocation:
                self.reporter.note(f"not removing GCP image {location}: it is no longer bake {leftover.invocation}'s")
                continue
            if api.delete(project, name):
                removed.append(f"image {location}")
        return removed

    # --- helpers ------------------------------------------------------------------------------

    def _spec(self, request: BakeRequest) -> GcpTarget:
        spec = request.project.config.targets[request.eff.target]
        if not isinstance(spec, GcpTarget):
            raise ConfigError(f"target '{request.eff.target}' is not a gcp target")
        self.specs[request.eff.target] = spec
        return spec

    def _list(self, spec: GcpTarget, **wanted: str | None) -> list[Any]:
        """Images of the target's project whose bakery labels have the `wanted` values."""
        flt = " AND ".join(f"labels.{PREFIX}{k}={provenance.gcp_value(v)}" for k, v in wanted.items() if v)
        return self.compute(spec).list(spec.project, flt)

    @staticmethod
    def read_stamp(image: Any) -> tuple[dict[str, str], dict[str, str]]:
        """The stamp on `image` and its unreadable labels; values kept as digests are taken from
        the provenance in the description, which holds them whole."""
        labels = dict(image.labels)
        digested = any(k.startswith(PREFIX) and v.startswith(provenance.GCP_DIGEST_MARK) for k, v in labels.items())
        skeleton = gcp_trust.skeleton(image.description) if digested else None
        whole = None
        if skeleton is not None:
            try:
                whole = provenance.stamp_of(skeleton, state="")
            except (KeyError, TypeError, AttributeError):
                whole = None
        return provenance.gcp_stamp(labels, whole)

    @staticmethod
    def _record(target: str, project: str, image: Any, stamp: dict[str, str]) -> ImageRecord:
        attestation = gcp_trust.attestation_of(dict(image.labels))
        return ImageRecord(
            name=stamp.get("image", ""),
            version=stamp.get("version", ""),
            target=target,
            kind="gcp",
            inputs_digest=stamp.get("inputs-digest", ""),
            created=stamp.get("created") or image.creation_timestamp,
            base=stamp.get("base", ""),
            parent=stamp.get("parent") or None,
            locations=(f"{project}/{image.name}",),
            extra={
                "state": stamp.get("state", ""),
                "id": str(image.id),
                "description": image.description,
                "invocation": stamp.get("invocation", ""),
                "registered": image.creation_timestamp,
                "labels": dict(image.labels),
                "descriptor": gcp_trust.descriptor_of(project, image),
                **({"attestation": attestation} if attestation else {}),
            },
            revoked_marks=gcp_trust.revoked_marks(project, image),
        )
