"""The provenance document (in-toto Statement v1, SLSA provenance v1) and its cloud encodings."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bakery import __version__
from bakery.errors import ConfigError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://bakery.dev/buildtypes/packer-ansible/v1"
BUILDER_ID = "https://bakery.dev/builder/bakery@v" + __version__

GCP_LABEL_MAX = 63
_GCP_PLAIN = re.compile(r"[a-z0-9-]")


@dataclass(frozen=True)
class Dependency:
    name: str
    digest: Mapping[str, str]
    uri: str | None = None
    annotations: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": dict(self.digest)}
        if self.uri:
            out["uri"] = self.uri
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def statement(
    *,
    subject_name: str,
    subject_digest: Mapping[str, str],
    external: Mapping[str, Any],
    internal: Mapping[str, Any],
    dependencies: list[Dependency],
    tool_versions: Mapping[str, str],
    invocation_id: str,
    started: str,
    finished: str,
) -> dict[str, Any]:
    """An in-toto Statement whose predicate is SLSA v1 provenance for one baked image."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": dict(subject_digest)}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": dict(external),
                "internalParameters": dict(internal),
                "resolvedDependencies": [d.as_dict() for d in dependencies],
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": dict(tool_versions)},
                "metadata": {"invocationId": invocation_id, "startedOn": started, "finishedOn": finished},
            },
        },
    }


def finalize(
    skeleton: Mapping[str, Any], *, subject_name: str, subject_digest: Mapping[str, str], finished: str
) -> dict[str, Any]:
    statement = copy.deepcopy(dict(skeleton))
    statement["subject"] = [{"name": subject_name, "digest": dict(subject_digest)}]
    statement["predicate"]["runDetails"]["metadata"]["finishedOn"] = finished
    return statement


def _encode_label(text: str) -> str:
    return "".join(ch if _GCP_PLAIN.fullmatch(ch) else "".join(f"_{b:02x}" for b in ch.encode()) for ch in text)


def decode_label(text: str) -> str:
    """Inverse of the GCP label encoding."""
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "_":
            raw += bytes.fromhex(text[i + 1 : i + 3])
            i += 3
        else:
            raw += text[i].encode()
            i += 1
    return raw.decode()


def gcp_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags -> GCP labels (lowercase [a-z0-9_-], <= 63): reversible, never truncated.

    Characters outside [a-z0-9-] become _xx (hex of each UTF-8 byte). Raises ConfigError for a
    key that does not start with a letter or an encoding longer than GCP allows.
    """
    out: dict[str, str] = {}
    for key, value in tags.items():
        k, v = _encode_label(key), _encode_label(value)
        if not re.match(r"^[a-z]", k):
            raise ConfigError(f"tag '{key}': a GCP label key must start with a lowercase letter")
        for what, raw, enc in (("key", key, k), ("value", value, v)):
            if len(enc) > GCP_LABEL_MAX:
                raise ConfigError(
                    f"tag {what} {raw!r} is {len(enc)} characters as a GCP label (limit {GCP_LABEL_MAX}); "
                    "shorten it, or keep it out of the gcp target with overrides.<target>.tags"
                )
        out[k] = v
    return out


# --- stamps: the provenance facts written on cloud images ----------------------------------------

STAMP_FIELDS = (
    "image",
    "version",
    "target",
    "state",
    "inputs-digest",
    "base",
    "parent",
    "commit",
    "dirty",
    "created",
    "invocation",
)
AWS_PREFIX = "bakery:"
AWS_MAX_TAGS = 50
AWS_MAX_VALUE = 256
AWS_CHUNK = 256
GCP_PREFIX = "bakery-"
GCP_MAX_LABELS = 64
DESCRIPTION_MARKER = "\n\nbakery-provenance:"
# Tags bakery writes while a bake runs, beside the stamp: who owns the image, and its heartbeat.
AWS_OWNER_TAG = AWS_PREFIX + "owner"
AWS_HEARTBEAT_TAG = AWS_PREFIX + "heartbeat"
# An AMI description is at most 255 characters; bakery appends its mark (" [bakery:<invocation>]").
AWS_DESCRIPTION_MAX = 255
AWS_MARK_LENGTH = len(" [bakery:]") + 12
# Tags of bakery's own on an AMI: the stamp, owner, heartbeat, the chunk count and room for a
# provenance document of typical size (the exact count is checked before a bake starts).
AWS_RESERVED_TAGS = len(STAMP_FIELDS) + 2 + 1 + 8


def aws_description(description: str, invocation: str) -> str:
    """The AMI description: the image's own, then the mark that ties the AMI to its bake from the
    moment it is created (tags come later, and only if the bake gets that far)."""
    mark = f"[bakery:{invocation}]"
    return f"{description} {mark}" if description else mark


def aws_mark(description: str) -> str | None:
    """The invocation in an AMI description's bakery mark, or None."""
    found = re.search(r"\[bakery:([0-9a-f]{12})\]$", description or "")
    return found.group(1) if found else None


def pack(document: Mapping[str, Any]) -> str:
    """gzip + base64 of canonical JSON: a provenance document small enough for tags."""
    import base64
    import gzip
    import json

    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode()


def unpack(text: str) -> dict[str, Any]:
    import base64
    import gzip
    import json

    data: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(text)))
    return data


def aws_tags(
    stamp: Mapping[str, str], user_tags: Mapping[str, str], document: Mapping[str, Any] | None
) -> dict[str, str]:
    """Tags for an AMI, its snapshots and copies: user tags, the stamp, and the document in chunks.

    Raises ConfigError when AWS's limits (50 tags, 256 characters a value) cannot hold them.
    """
    tags = dict(user_tags)
    tags.update({AWS_PREFIX + k: v for k, v in stamp.items()})
    if document is not None:
        packed = pack(document)
        chunks = [packed[i : i + AWS_CHUNK] for i in range(0, len(packed), AWS_CHUNK)]
        tags[AWS_PREFIX + "provenance-chunks"] = str(len(chunks))
        tags.update({f"{AWS_PREFIX}provenance-{i:02d}": c for i, c in enumerate(chunks)})
    long = [k for k, v in tags.items() if len(v) > AWS_MAX_VALUE]
    if long:
        raise ConfigError(f"AWS tag value too long (> {AWS_MAX_VALUE} characters) for: {', '.join(sorted(long))}")
    if len(tags) > AWS_MAX_TAGS:
        raise ConfigError(
            f"{len(tags)} tags exceed AWS's limit of {AWS_MAX_TAGS} ({len(user_tags)} from images.yaml, "
            f"{len(tags) - len(user_tags)} for provenance); remove some tags from the image"
        )
    return tags


def aws_stamp(tags: Mapping[str, str]) -> dict[str, str]:
    return {
        k[len(AWS_PREFIX) :]: v
        for k, v in tags.items()
        if k.startswith(AWS_PREFIX) and k[len(AWS_PREFIX) :] in STAMP_FIELDS
    }


def aws_document(tags: Mapping[str, str]) -> dict[str, Any] | None:
    count = tags.get(AWS_PREFIX + "provenance-chunks")
    if count is None:
        return None
    parts = [tags.get(f"{AWS_PREFIX}provenance-{i:02d}") for i in range(int(count))]
    if any(p is None for p in parts):
        return None
    return unpack("".join(p for p in parts if p is not None))


def _b32_digest(digest: str) -> str:
    import base64

    return base64.b32encode(bytes.fromhex(digest.removeprefix("sha256:"))).decode().lower().rstrip("=")


def _digest_b32(text: str) -> str:
    import base64

    return "sha256:" + base64.b32decode(text.upper() + "=" * (-len(text) % 8)).hex()


def gcp_stamp_labels(stamp: Mapping[str, str]) -> dict[str, str]:
    """The stamp as GCP labels; the digest as base32 (52 characters) so it is never truncated."""
    out = {}
    for key, value in stamp.items():
        encoded = _b32_digest(value) if key == "inputs-digest" else value
        out.update(gcp_labels({GCP_PREFIX + key: encoded}))
    return out


def gcp_stamp(labels: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for key, value in labels.items():
        name = key[len(GCP_PREFIX) :]
        if key.startswith(GCP_PREFIX) and name in STAMP_FIELDS:
            decoded = decode_label(value)
            out[name] = _digest_b32(decoded) if name == "inputs-digest" else decoded
    return out


def user_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {decode_label(k): decode_label(v) for k, v in labels.items() if not k.startswith(GCP_PREFIX)}


def stamp_of(statement: Mapping[str, Any], *, state: str) -> dict[str, str]:
    """The stamp (the short provenance facts written as tags or labels) of a provenance document."""
    build = statement["predicate"]["buildDefinition"]
    run = statement["predicate"]["runDetails"]["metadata"]
    external, internal = build["externalParameters"], build["internalParameters"]
    git: dict[str, Any] = next((d for d in build["resolvedDependencies"] if d["name"] == "git"), {})
    return {
        "image": external["image"],
        "version": external["version"],
        "target": external["target"],
        "state": state,
        "inputs-digest": internal["inputsDigest"],
        "base": internal["base"],
        "parent": internal["parent"] or "",
        "commit": git.get("digest", {}).get("gitCommit", ""),
        "dirty": str(git.get("annotations", {}).get("dirty", True)).lower(),
        "created": run["finishedOn"] or run["startedOn"],
        "invocation": run["invocationId"],
    }
