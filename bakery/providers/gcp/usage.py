"""What uses a GCP image, read live for `bakery prune`: instance templates (global, and regional in
the target's region) whose boot disk it initializes, instances (in every zone of the project, in a
managed group or not) with a disk created from it, and who its own IAM policy grants a role on it.

An instance names its disks, and each disk the image it was created from (`sourceImage`): the
instances and disks of the project are read in one aggregated list each, for every image asked
about at once. Fail safe: a kind of use that the API refuses to list (403 and the like) is a use of
its own, "could not tell ...", that keeps the image and says why; so is a zone the aggregated list
could not read (its scope's warning, other than NO_RESULTS_ON_PAGE, or named in `unreachables`).
What comes back is untrusted: what is shown is one printable line of bounded length."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bakery.core.catalog import ImageRecord
from bakery.providers.base import Usage
from bakery.providers.gcp.access import GcpAccess
from bakery.providers.gcp.api import api_error
from bakery.providers.gcp.trust import located

Found = list[tuple[str | None, str]]  # (the image a use boots, None when it may be any; its line)
_IMAGE = re.compile(r"(?:^|/)projects/([^/]+)/global/images/([^/]+)$")
_EMPTY = "NO_RESULTS_ON_PAGE"  # the one warning of a scope that says all: it has nothing


def usage(provider: GcpAccess, records: Sequence[ImageRecord]) -> list[Usage]:
    """For each of `records`, what uses it and who may use it from elsewhere; each target's
    instance templates, instances and disks are read once. Raises the client's errors for an
    endpoint that cannot be reached (the provider's guard makes them a ProviderError): a prune
    never decides blind."""
    looks: dict[str, Found] = {}
    out = []
    for record in records:
        spec = provider.specs[record.target]

        def clients(service: str, spec: Any = spec) -> Any:
            return provider.client(service, spec.project, provider.endpoint(spec))

        if record.target not in looks:
            looks[record.target] = _look(spec, clients)
        project, name = located(record)
        uses = [line for image, line in looks[record.target] if image is None or image == f"{project}/{name}"]
        shared: list[str] = []
        with _unless_refused(uses, f"IAM policy of image {project}/{name}"):
            policy = clients("images").get_iam_policy(project=project, resource=name)
            shared = sorted({f"{_shown(m)} ({_shown(b.role)})" for b in policy.bindings for m in b.members})
        out.append(Usage(uses=tuple(uses), shared_with=tuple(shared)))
    return out


def _look(spec: Any, clients: Callable[[str], Any]) -> Found:
    region = spec.zone.rsplit("-", 1)[0]
    readers: list[tuple[str, Callable[[], Found]]] = [
        ("instance templates", lambda: _templates(clients("instanceTemplates").list(project=spec.project), "")),
        (
            f"instance templates in {region}",
            lambda: _templates(
                clients("regionInstanceTemplates").list(project=spec.project, region=region), f" in {region}"
            ),
        ),
        ("instances and their disks", lambda: _instances(clients, spec.project)),
    ]
    found: Found = []
    for what, read in readers:
        lines: list[str] = []
        with _unless_refused(lines, what):
            found += read()
        found += [(None, line) for line in lines]
    return found


def _templates(templates: Any, where: str) -> Found:
    found: Found = []
    for template in templates:
        disks = template.properties.disks if template.properties else []
        for disk in disks:
            image = _image(disk.initialize_params.source_image) if disk.initialize_params else None
            if image is not None:
                found.append((image, f"instance template {_shown(template.name)}{where}"))
    return found


def _instances(clients: Callable[[str], Any], project: str) -> Found:
    """Each instance with a disk made from an image (its boot disk, or another), after the zones
    that could not be read."""
    blind: Found = []
    made_from: dict[str, str] = {}  # disk URL -> "project/image" it was created from
    for _zone, scoped in _zones(clients("disks").aggregated_list(project=project), "disks", blind):
        for disk in scoped.disks:
            image = _image(disk.source_image)
            if image is not None:
                made_from[_path(disk.self_link)] = image
    found: Found = []
    for zone, scoped in _zones(clients("instances").aggregated_list(project=project), "instances", blind):
        for instance in scoped.instances:
            line = f"instance {_shown(instance.name)} ({_shown(instance.status)}) in {_shown(zone.split('/')[-1])}"
            for image in dict.fromkeys(made_from.get(_path(d.source), "") for d in instance.disks):
                if image:
                    found.append((image, line))
    return blind + found


def _zones(pager: Any, what: str, blind: Found) -> Iterator[tuple[str, Any]]:
    """Each scope of an aggregated list, page by page, with its list; a scope it could not read
    (its warning says other than that it is empty, or the page names it unreachable) is a use of
    any image, added to `blind`: what is in it is not known."""
    for page in pager.pages:
        for scope in page.unreachables:
            blind.append((None, f"could not tell: the {what} in {_shown(scope)} could not be read (unreachable)"))
        for scope, scoped in sorted(page.items.items(), key=lambda item: str(item[0])):  # a map has no order
            if "warning" in scoped and scoped.warning.code != _EMPTY:
                warning = f"{_shown(scoped.warning.code or '?', 40)}: {_shown(scoped.warning.message, 160)}"
                blind.append((None, f"could not tell: the {what} in {_shown(scope)} could not be read ({warning})"))
            yield scope, scoped


def _image(url: object) -> str | None:
    """'project/name' of an image URL (full, or from projects/ on), None for anything else."""
    match = _IMAGE.search(url) if isinstance(url, str) else None
    return f"{match.group(1)}/{match.group(2)}" if match else None


def _path(url: object) -> str:
    """A resource URL from its projects/ on (a full URL and a partial one name the same disk)."""
    text = url if isinstance(url, str) else ""
    at = text.find("projects/")
    return text[at:] if at >= 0 else text


@contextlib.contextmanager
def _unless_refused(uses: list[str], what: str) -> Iterator[None]:
    """The API's refusal to list `what` (403, 404, an error status) becomes a use that keeps the
    image and says why; a network failure still raises."""
    from google.api_core import exceptions

    try:
        yield
    except exceptions.GoogleAPICallError as exc:
        uses.append(f"could not tell: reading the {what} was refused ({_shown(api_error(exc), 160)})")


def _shown(value: object, limit: int = 120) -> str:
    """A value read from the cloud, as one printable line of at most `limit` characters."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else "?"
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
