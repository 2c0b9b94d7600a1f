"""Cloud limits checked by `validate`, each at the line where the value is written.

An image's tags, description and name become AMI tags and names on aws targets, GCP labels and
image names on gcp targets. A value that one of them would refuse fails here, before a bake starts
(the exact AWS tag count, which depends on the size of the provenance document, is checked again
when the bake starts). Each kind names its checks (bakery.config.kinds); kinds without one have none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bakery.config import kinds
from bakery.config.models import ImageBase as Image
from bakery.config.yamlload import Loc
from bakery.core import provenance
from bakery.errors import ConfigError

Problem = tuple[Loc, str]

# bakery's PATCH numbers: names keep room for this many digits.
PATCH_ROOM = "9" * 6

AWS_TAG_KEY_MAX = 128
AWS_TAG_VALUE_MAX = 256
AWS_USER_TAGS_MAX = provenance.AWS_MAX_TAGS - provenance.AWS_RESERVED_TAGS
AWS_DESCRIPTION_ROOM = provenance.AWS_DESCRIPTION_MAX - provenance.AWS_MARK_LENGTH
AWS_AMI_NAME = re.compile(r"[A-Za-z0-9()\[\] ./'@_-]{3,128}")

# bakery's own labels on a GCP image: its stamp and the owner labels of a bake in progress.
GCP_OWNER_LABELS = 5
GCP_USER_LABELS_MAX = provenance.GCP_MAX_LABELS - len(provenance.STAMP_FIELDS) - GCP_OWNER_LABELS
GCP_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
GCP_NAME_MAX = 63


def image_problems(name: str, image: Image, targets: Mapping[str, str]) -> list[Problem]:
    """What the clouds of `targets` (target name -> kind) would refuse of image `name`."""
    problems: list[Problem] = []
    for target, kind in targets.items():
        check = kinds.get(kind).limits if kinds.known(kind) else None
        if check is not None:
            problems += check(name, image, target)
    return list(dict.fromkeys(problems))  # two targets of one kind find the same problems


def effective_tags(name: str, image: Image, target: str) -> dict[str, tuple[Loc, str]]:
    """The tags an image carries on `target` (its own, then the target's overrides), each with
    the key path where it is written."""
    here: Loc = ("images", name)
    tags = {key: ((*here, "tags", key), value) for key, value in image.tags.items()}
    override = image.override_for(target)
    tags.update({key: ((*here, "overrides", target, "tags", key), v) for key, v in override.tags.items()})
    return tags


def _tags_loc(name: str, image: Image, target: str) -> Loc:
    """Where to report the number of tags: the override's tags when it adds any."""
    if image.override_for(target).tags:
        return ("images", name, "overrides", target, "tags")
    return ("images", name, "tags")


def aws_problems(name: str, image: Image, target: str) -> list[Problem]:
    problems: list[Problem] = []
    tags = effective_tags(name, image, target)
    for key, (loc, value) in tags.items():
        if len(key) > AWS_TAG_KEY_MAX:
            problems.append((loc, f"AWS tag keys are at most {AWS_TAG_KEY_MAX} characters; this one has {len(key)}"))
        if key.lower().startswith("aws:"):
            problems.append((loc, f"tag '{key}': keys starting with 'aws:' are reserved by AWS"))
        elif key.startswith(provenance.AWS_PREFIX):
            problems.append((loc, f"tag '{key}': keys starting with '{provenance.AWS_PREFIX}' are bakery's own"))
        if len(value) > AWS_TAG_VALUE_MAX:
            problems.append(
                (loc, f"AWS tag values are at most {AWS_TAG_VALUE_MAX} characters; this one has {len(value)}")
            )
    if len(tags) > AWS_USER_TAGS_MAX:
        problems.append(
            (
                _tags_loc(name, image, target),
                f"{len(tags)} tags on target '{target}': an AMI holds {provenance.AWS_MAX_TAGS} tags and bakery's "
                f"provenance needs {provenance.AWS_RESERVED_TAGS}, which leaves {AWS_USER_TAGS_MAX}",
            )
        )
    if len(image.description) > AWS_DESCRIPTION_ROOM:
        problems.append(
            (
                ("images", name, "description"),
                f"{len(image.description)} characters: an AMI description holds {provenance.AWS_DESCRIPTION_MAX} "
                f"and bakery appends {provenance.AWS_MARK_LENGTH}, which leaves {AWS_DESCRIPTION_ROOM}",
            )
        )
    ami_name = provenance.aws_ami_name(name, f"{image.version}.{PATCH_ROOM}", target, "0" * 12)
    if not AWS_AMI_NAME.fullmatch(ami_name):
        problems.append(
            (
                ("images", name, "version"),
                f"the AMI name {name}-{image.version}.PATCH-{target}-BAKE would be {len(ami_name)} characters "
                f"with a {len(PATCH_ROOM)}-digit PATCH; AWS allows 128",
            )
        )
    return problems


def gcp_problems(name: str, image: Image, target: str) -> list[Problem]:
    problems: list[Problem] = []
    tags = effective_tags(name, image, target)
    for key, (loc, value) in tags.items():
        try:
            labels = provenance.gcp_labels({key: value})
        except ConfigError as exc:
            problems.append((loc, exc.message))
            continue
        if next(iter(labels)).startswith(provenance.GCP_PREFIX):
            problems.append(
                (loc, f"tag '{key}': GCP label keys starting with '{provenance.GCP_PREFIX}' are bakery's own")
            )
    if len(tags) > GCP_USER_LABELS_MAX:
        problems.append(
            (
                _tags_loc(name, image, target),
                f"{len(tags)} tags on target '{target}': a GCP image holds {provenance.GCP_MAX_LABELS} labels and "
                f"bakery needs {provenance.GCP_MAX_LABELS - GCP_USER_LABELS_MAX}, which leaves {GCP_USER_LABELS_MAX}",
            )
        )
    if not _gcp_name(name):
        problems.append(
            (
                ("images", name),
                f"image name '{name}' is also its GCP image family, which must end with a letter or digit",
            )
        )
    image_name = f"{name}-{image.version.replace('.', '-')}-{PATCH_ROOM}"
    if not _gcp_name(image_name):
        problems.append(
            (
                ("images", name, "version"),
                f"the GCP image name {name}-{image.version.replace('.', '-')}-PATCH would be {len(image_name)} "
                f"characters with a {len(PATCH_ROOM)}-digit PATCH; GCP allows {GCP_NAME_MAX}",
            )
        )
    return problems


def _gcp_name(text: str) -> bool:
    return len(text) <= GCP_NAME_MAX and GCP_NAME.fullmatch(text) is not None
