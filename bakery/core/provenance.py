"""The provenance document (in-toto Statement v1, SLSA provenance v1) and its cloud encodings."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
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
_HEX_PAIR = re.compile(r"[0-9a-f]{2}")
# A label value standing for a value too long for a label: this mark, then the value's sha256 in
# base32 (54 characters in all). The reversible encoding never makes it (its `_` is followed by hex).
GCP_DIGEST_MARK = "_z"


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
    skeleton: Mapping[str, Any],
    *,
    subject_name: str,
    subject_digest: Mapping[str, str],
    finished: str,
    more: Iterable[tuple[str, Mapping[str, str]]] = (),
) -> dict[str, Any]:
    """The statement of a finished bake: its subject (the image), and `more` subjects that boot
    with it (a local image's kernel and initrd), each (name, digest set)."""
    statement = copy.deepcopy(dict(skeleton))
    statement["subject"] = [
        {"name": subject_name, "digest": dict(subject_digest)},
        *({"name": name, "digest": dict(digest)} for name, digest in more),
    ]
    statement["predicate"]["runDetails"]["metadata"]["finishedOn"] = finished
    return statement


def _encode_label(text: str) -> str:
    return "".join(ch if _GCP_PLAIN.fullmatch(ch) else "".join(f"_{b:02x}" for b in ch.encode()) for ch in text)


def decode_label(text: str) -> str:
    """Inverse of the GCP label encoding. Raises ValueError for a label it did not make: a `_` not
    followed by two lowercase hex digits (GCP allows `_` anywhere), bytes that are not UTF-8."""
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "_":
            pair = text[i + 1 : i + 3]
            if not _HEX_PAIR.fullmatch(pair):
                raise ValueError(f"'_' at position {i} is not followed by two hex digits")
            raw.append(int(pair, 16))
            i += 3
        else:
            raw += text[i].encode()
            i += 1
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ValueError("its _xx escapes are not UTF-8") from None


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
# The digest of an image's signed attestation (its DSSE envelope in the registry), beside the stamp.
AWS_ATTESTATION_TAG = AWS_PREFIX + "attestation"
GCP_ATTESTATION_LABEL = GCP_PREFIX + "attestation"
# A revocation written on an AMI where the endpoint has no AMI deprecation: when, and why.
AWS_REVOKED_TAG = AWS_PREFIX + "revoked"
AWS_REVOKED_REASON_TAG = AWS_PREFIX + "revoked-reason"
# Tags of bakery's own on an AMI: the stamp, owner, heartbeat, the attestation, the two of a
# revocation, the chunk count and room for a provenance document of typical size (the exact
# count is checked before a bake starts).
AWS_RESERVED_TAGS = len(STAMP_FIELDS) + 2 + 1 + 2 + 1 + 8


def aws_description(description: str, invocation: str) -> str:
    """The AMI description: the image's own, then the mark that ties the AMI to its bake from the
    moment it is created (tags come later, and only if the bake gets that far)."""
    mark = f"[bakery:{invocation}]"
    return f"{description} {mark}" if description else mark


def aws_ami_name(image: str, version: str, target: str, invocation: str) -> str:
    """IMAGE-VERSION-TARGET-INVOCATION: AWS sets an AMI's name at CreateImage (and every copy keeps
    it), so the bake's mark, and the target it bakes for, are on the AMI from its first moment;
    Packer adds description and tags later. Two targets in one account and region never mistake
    each other's AMIs."""
    return f"{image}-{version}-{target}-{invocation}"


def parse_aws_ami_name(image: str, target: str, name: str) -> tuple[str, str | None] | None:
    """(version, invocation) of an AMI bakery named for `image` on `target`; (version, None) for
    an AMI of a bake from before names carried the mark (`image-version`)."""
    found = re.fullmatch(re.escape(image) + r"-(\d+\.\d+\.\d+)(?:-" + re.escape(target) + r"-([0-9a-f]{12}))?", name)
    return (found.group(1), found.group(2)) if found else None


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


def _b32(raw: bytes) -> str:
    import base64

    return base64.b32encode(raw).decode().lower().rstrip("=")


def _sha256(text: str) -> bytes:
    import hashlib

    return hashlib.sha256(text.encode()).digest()


def _b32_digest(digest: str) -> str:
    return _b32(bytes.fromhex(digest.removeprefix("sha256:")))


def gcp_digest(digest: str) -> str:
    """'sha256:<hex>' as a GCP label value: its 32 bytes in base32 (52 characters)."""
    return _b32_digest(digest)


def gcp_read_digest(label: str) -> str:
    """Inverse of gcp_digest. Raises ValueError for anything but 52 base32 characters."""
    return _digest_b32(label)


def _digest_b32(text: str) -> str:
    """Inverse of _b32_digest. Raises ValueError for anything but 52 base32 characters."""
    import base64
    import binascii

    if not re.fullmatch(r"[a-z2-7]{52}", text):
        raise ValueError("not a sha256 digest in base32")
    try:
        return "sha256:" + base64.b32decode(text.upper() + "====").hex()
    except binascii.Error:
        raise ValueError("not a sha256 digest in base32") from None


def gcp_value(text: str) -> str:
    """`text` as a GCP label value: encoded reversibly when that fits in 63 characters, else the
    digest mark (never truncated, never refused): the whole value must then be kept elsewhere, as
    bakery keeps its stamp's values in the provenance in the image's description."""
    encoded = _encode_label(text)
    return encoded if len(encoded) <= GCP_LABEL_MAX else GCP_DIGEST_MARK + _b32(_sha256(text))


def gcp_read_value(label: str, whole: Iterable[str] = ()) -> str:
    """The value a label made by `gcp_value` stands for. A digest mark is resolved to the value in
    `whole` whose digest it is. Raises ValueError if the label cannot be decoded or no value fits."""
    if not label.startswith(GCP_DIGEST_MARK):
        return decode_label(label)
    digest = label[len(GCP_DIGEST_MARK) :]
    for candidate in whole:
        if _b32(_sha256(candidate)) == digest:
            return candidate
    raise ValueError("it stands for a longer value (by its digest) that bakery cannot find")


def gcp_stamp_labels(stamp: Mapping[str, str]) -> dict[str, str]:
    """The stamp as GCP labels: the digest as base32 (52 characters); a value too long for a label
    (a source image `project/name` reaches 94 characters) as a digest mark, its whole value being in
    the provenance (`gcp_stamp` takes it back from there)."""
    return {
        GCP_PREFIX + key: _b32_digest(value) if key == "inputs-digest" else gcp_value(value)
        for key, value in stamp.items()
    }


def gcp_stamp(
    labels: Mapping[str, str], whole: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """The stamp in an image's labels, and the stamp labels that could not be read ({field: why}).

    A label holding a digest mark takes its value from `whole` (the stamp of the image's
    provenance) when the digest matches. Nothing raises: labels are written by hand too.
    """
    stamp: dict[str, str] = {}
    problems: dict[str, str] = {}
    for key, value in labels.items():
        name = key[len(GCP_PREFIX) :]
        if not key.startswith(GCP_PREFIX) or name not in STAMP_FIELDS:
            continue
        try:
            if name == "inputs-digest":
                stamp[name] = _digest_b32(value)
            else:
                stamp[name] = gcp_read_value(value, [whole[name]] if whole and name in whole else [])
            if name == "version" and not re.fullmatch(r"\d+\.\d+\.\d+", stamp[name]):
                raise ValueError(f"{stamp.pop(name)!r} is not a MAJOR.MINOR.PATCH version")
        except ValueError as exc:
            problems[name] = f"label {key}={value!r}: {exc}"
    return stamp, problems


def user_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The image's own labels (its tags), decoded; one bakery did not encode (made by hand, such as
    `cost_center`) is shown as it is."""

    def readable(text: str) -> str:
        try:
            return decode_label(text)
        except ValueError:
            return text

    return {readable(k): readable(v) for k, v in labels.items() if not k.startswith(GCP_PREFIX)}


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
