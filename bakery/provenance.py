"""The provenance document (in-toto Statement v1, SLSA provenance v1) and its cloud encodings."""

from __future__ import annotations

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
    subject_sha256: str,
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
        "subject": [{"name": subject_name, "digest": {"sha256": subject_sha256}}],
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
