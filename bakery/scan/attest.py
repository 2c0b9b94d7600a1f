"""Signed scan results in the registry, bound to the image's provenance (the machinery of SBOMs
and test results: bakery/sbom/attest.py, bakery/trust/testresults.py).

Where: `scan/<target>/<image>/<version>.json`; a later scan of the version replaces it (the scan
service refuses one made with an older feed unless told: service.py). Its audit event `scan` names
the digest of the statement stored; a reader holds the registry to the newest such event, so an
older envelope put back, or the scan deleted, reads as `invalid`; so does any, or none, while the
log does not verify. What: a DSSE envelope signed with this machine's signer whose payload is an
in-toto Statement v1 with the vulnerability predicate v0.2 (https://github.com/in-toto/attestation/blob/main/spec/predicates/vulns.md):

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [<the provenance subject, annotated with image, version, target, provenance>],
     "predicateType": "https://in-toto.io/attestation/vulns/v0.2",
     "predicate": {
       "scanner": {"uri": "https://bakery.dev/scan", "version": "<bakery's>",
                   "db": {"uri": "<the feed as named>", "version": "sha256:<of its bytes>",
                          "lastUpdate": "<RFC 3339: when it was read>",
                          "advisories": <how many it holds for the image's release>,
                          "newest": "<RFC 3339: its newest record's `modified` (OSV)>" | null (tracker)},
                   "result": [{"id": "CVE-2024-5535",
                               "severity": [{"method": "<feed format>", "score": "<as the feed says>"}],
                               "annotations": [{"source": "openssl", "installed": "3.0.13-1~deb12u1",
                                                "fixed": "3.0.14-1~deb12u1", "severity": "low",
                                                "packages": ["libssl3:amd64"], "aliases": [],
                                                "unreadable": "<why its CVSS vector could not be read>"
                                                (only when one could not be)}]}]},
       "metadata": {"scanStartedOn": "<RFC 3339>", "scanFinishedOn": "<RFC 3339>"}}}

A reader trusts it only when a key of trust.keys signed it, the predicateType is the one above and
its subject names the image, version, target and the provenance digest the image verifies with now.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bakery import __version__
from bakery.core import documents
from bakery.core.jcs import jcs_bytes, sha256
from bakery.core.provenance import STATEMENT_TYPE
from bakery.errors import TrustError
from bakery.registry.base import update
from bakery.scan.match import Finding
from bakery.trust.audit_facts import test_key
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, sign, verify
from bakery.trust.testresults import Subject

PREDICATE_TYPE = "https://in-toto.io/attestation/vulns/v0.2"
SCANNER = "https://bakery.dev/scan"
MAX_RESULTS = 100_000

State = Literal["present", "none", "invalid"]


def key_of(target: str, name: str, version: str) -> str:
    return f"scan/{target}/{name}/{version}.json"


@dataclass(frozen=True)
class Db:
    uri: str  # the feed as named
    digest: str  # sha256 of its bytes
    format: str
    read: str  # RFC 3339
    advisories: int = 0  # how many it holds for the image's release
    newest: str | None = None  # its newest record's date (OSV `modified`); None: it says none (tracker)


def statement(subject: Subject, db: Db, findings: tuple[Finding, ...], started: str, finished: str) -> dict[str, Any]:
    """The in-toto Statement of one scan (pure)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject.as_dict()],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "scanner": {
                "uri": SCANNER,
                "version": __version__,
                "db": {
                    "uri": db.uri,
                    "version": db.digest,
                    "lastUpdate": db.read,
                    "advisories": db.advisories,
                    "newest": db.newest,
                },
                "result": [_result(f, db.format) for f in findings],
            },
            "metadata": {"scanStartedOn": started, "scanFinishedOn": finished},
        },
    }


def _result(finding: Finding, method: str) -> dict[str, Any]:
    notes: dict[str, Any] = {
        "source": finding.source,
        "installed": finding.installed,
        "fixed": finding.fixed,
        "severity": finding.severity,
        "packages": list(finding.packages),
        "aliases": list(finding.aliases),
    }
    if finding.unreadable:  # kept only when said, so that other scans' statements stay as they were
        notes["unreadable"] = finding.unreadable
    return {"id": finding.id, "severity": [{"method": method, "score": finding.given}], "annotations": [notes]}


def store(trust: TrustContext, document: Mapping[str, Any]) -> tuple[str, str]:
    """Sign the scan statement and keep it at its key; returns the key and the statement's digest
    (what its audit event names)."""
    payload = jcs_bytes(dict(document))
    envelope = sign(payload, PAYLOAD_TYPE, [trust.signer()])
    annotations = document["subject"][0]["annotations"]
    key = key_of(annotations["target"], annotations["image"], annotations["version"])
    data = json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n"
    update(trust.store, key, lambda _there: data)
    return key, sha256(payload)


@dataclass(frozen=True)
class StoredScan:
    """A scan as the registry holds it, checked: `present` only when trusted."""

    state: State
    detail: str
    key: str
    feed: str = ""
    feed_digest: str = ""
    scanned: str = ""
    findings: tuple[Finding, ...] = ()
    signed_by: tuple[str, ...] = ()
    feed_newest: str | None = None  # the feed's newest date, as recorded (None: not said)


def read(trust: TrustContext, target: str, name: str, version: str, provenance_digest: str) -> StoredScan:
    """The stored scan of `name`@`version` on `target`: `invalid` unless it verifies against
    trust.keys and is about exactly this image and its provenance statement. Raises what the store
    raises (ProviderError)."""
    key = key_of(target, name, version)
    blob = trust.store.get(key)
    try:
        logged = trust.logged().scans.get(test_key(target, f"{name}@{version}"))
    except TrustError as exc:  # what it records cannot be known: neither "none" nor "present"
        why = f"cannot be held to the signed audit log: {exc.message}"
        return StoredScan("invalid", f"{key} in {trust.store.where}: {why}", key)
    if blob is None and logged is not None:
        problem = f"the signed audit log records a scan (event {logged[0]}), but the registry holds none (deleted?)"
        return StoredScan("invalid", f"{key} in {trust.store.where}: {problem}", key)
    if blob is None:
        return StoredScan("none", f"no scan at {key} in {trust.store.where}", key)
    try:
        envelope = documents.parse_object(blob.data)
        verified = verify(envelope, trust.keys, 1, payload_type=PAYLOAD_TYPE)
        document = verified.document
        problem = _problem(document, (name, version, target), provenance_digest)
        if not problem and logged is not None and sha256(jcs_bytes(document)) != logged[1]:
            problem = f"not the scan the signed audit log records last (event {logged[0]}): an older one put back?"
        if problem:
            return StoredScan("invalid", f"{key}: {problem}", key)
        scanner = document["predicate"]["scanner"]
        db = scanner["db"]
        findings = tuple(_finding(r) for r in _bounded_list(scanner["result"]))
        feed, digest, scanned = (_str(db, "uri"), _str(db, "version"), _str(db, "lastUpdate"))
        newest = _str(db, "newest") if db.get("newest") is not None else None
    except (ValueError, KeyError, TypeError, TrustError) as exc:
        return StoredScan("invalid", f"{key} does not verify: {getattr(exc, 'message', exc)}", key)
    detail = f"{len(findings)} finding(s) with feed {feed}, scanned {scanned}"
    return StoredScan("present", detail, key, feed, digest, scanned, findings, verified.signed_by, newest)


def _problem(document: Mapping[str, Any], image: tuple[str, str, str], provenance_digest: str) -> str:
    if document.get("predicateType") != PREDICATE_TYPE:
        return f"predicateType is {document.get('predicateType')!r}, not {PREDICATE_TYPE}"
    subjects = document.get("subject")
    first = subjects[0] if isinstance(subjects, list) and subjects else None
    annotations = first.get("annotations") if isinstance(first, dict) else None
    if not isinstance(annotations, dict):
        return "its subject names no image"
    said = (annotations.get("image"), annotations.get("version"), annotations.get("target"))
    if said != image:
        return f"it is about {said}, not {image}"
    if annotations.get("provenance") != provenance_digest:
        return "its subject is not this image's provenance (another provenance statement)"
    return ""


def _bounded_list(value: Any) -> list[Any]:
    if not isinstance(value, list) or len(value) > MAX_RESULTS:
        raise ValueError("scanner.result is not a list of results")
    return value


def _finding(result: Any) -> Finding:
    if not isinstance(result, dict) or not isinstance(result.get("annotations"), list) or not result["annotations"]:
        raise ValueError("a result without its annotations")
    notes = result["annotations"][0]
    severity = result.get("severity")
    given = (
        severity[0].get("score") if isinstance(severity, list) and severity and isinstance(severity[0], dict) else ""
    )
    if not isinstance(notes, dict):
        raise ValueError("a result's annotations are not an object")
    return Finding(
        _str(result, "id"), _str(notes, "source"), _str(notes, "installed"), _str(notes, "fixed"),
        _str(notes, "severity"), given if isinstance(given, str) else "",
        _strs(notes.get("packages")), _strs(notes.get("aliases")),
        _str(notes, "unreadable") if "unreadable" in notes else "",
    )  # fmt: skip


def _str(value: Mapping[str, Any], key: str) -> str:
    found = value.get(key)
    if not isinstance(found, str) or len(found) > 2000:
        raise ValueError(f"{key} is not text")
    return found


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) < 300 for v in value):
        raise ValueError("a list of names that is not one")
    return tuple(value)
