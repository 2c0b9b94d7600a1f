"""The report's SBOM and findings sections, read from the registry: an image's signed SBOM and its
stored, signed scan, each trusted only when a trusted key signed it and it is bound to the image's
provenance statement as signed now (whether the image itself is unchanged, the version's own
checks on the page say). One the registry holds that cannot be trusted (a signature that fails,
another image's, or a scan the signed audit log says is not the newest: put back or deleted) is
shown as untrusted, with why, as `bakery status` and `bakery scan` refuse it; never as "none".
A version is marked over policy when its findings are over the scan policy of a channel it is,
or was, the head of, or of a channel a group declared to run its image follows. Nothing is
scanned here: the findings are those `bakery scan` and `bakery scan --heads` stored."""

from __future__ import annotations

from bakery.config.load import Project
from bakery.core.catalog import ImageRecord
from bakery.errors import BakeryError
from bakery.progress import Reporter
from bakery.report import model
from bakery.report.build import Readers
from bakery.sbom import attest as sbom_attest
from bakery.scan import attest as scan_attest
from bakery.scan.policy import judge
from bakery.scan.scanner import today
from bakery.trust.attestation import Attestations, payload_digest
from bakery.trust.channels import Channels
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, verify
from bakery.workspace import Workspace

TOP = 12  # packages listed on the page; the count says how many there are


class RegistryReaders:
    def __init__(self, project: Project, trust: TrustContext) -> None:
        self.project, self.trust = project, trust
        self._digests: dict[tuple[str, str], str | None] = {}

    def readers(self) -> Readers:
        return Readers(sbom=self.sbom, findings=self.findings)

    def _digest(self, record: ImageRecord) -> str | None:
        key = (record.target, record.ref)
        if key not in self._digests:
            try:
                envelope = Attestations(self.trust).get(record)
                if envelope is not None:
                    verify(envelope, self.trust.keys, self.trust.threshold, payload_type=PAYLOAD_TYPE)
                self._digests[key] = payload_digest(envelope) if envelope is not None else None
            except BakeryError:
                self._digests[key] = None  # no trusted provenance: nothing is bound to it
        return self._digests[key]

    def sbom(self, record: ImageRecord) -> model.Sbom | model.Untrusted | None:
        found = sbom_attest.read(self.trust, record.target, record.name, record.version, self._bound(record))
        if found.state != "present":
            return self._untrusted(record, found.state, found.detail, found.key)
        top = tuple(model.Package(p.name, p.version) for p in found.packages[:TOP])
        return model.Sbom(len(found.packages), found.system, top)

    def findings(self, record: ImageRecord) -> model.Findings | model.Untrusted | None:
        stored = scan_attest.read(self.trust, record.target, record.name, record.version, self._bound(record))
        if stored.state != "present":
            return self._untrusted(record, stored.state, stored.detail, stored.key)
        allowed: dict[str, str] = {}
        over = False
        for name in self._channels(record):
            policy = self.project.config.channels[name].scan
            assert policy is not None  # _channels names only channels with a policy
            verdict = judge(name, policy, stored.findings, today())
            over = over or not verdict.ok
            allowed.update({a.finding.id: f"{name}: until {a.until} ({a.reason})" for a in verdict.allowed})
        findings = tuple(
            model.Finding(f.id, f.source, f.installed, f.severity, f.fixed, allowed.get(f.id, ""), f.unreadable)
            for f in stored.findings
        )
        return model.Findings(stored.feed, stored.scanned, findings, over)

    def _bound(self, record: ImageRecord) -> str:
        """The provenance digest a stored SBOM or scan must name; '' (which none names) when the
        image has no trusted provenance."""
        return self._digest(record) or ""

    def _untrusted(self, record: ImageRecord, state: str, detail: str, key: str) -> model.Untrusted | None:
        """None for nothing stored; else why what is stored cannot be trusted."""
        if state == "none":
            return None
        if self._digest(record) is None:
            return model.Untrusted(
                f"{key}: nothing binds it to the image, which has no provenance statement that verifies"
            )
        return model.Untrusted(detail)

    def _channels(self, record: ImageRecord) -> list[str]:
        """The channels with a scan policy that govern `record` (see the module's docstring)."""
        out = []
        for name, config in sorted(self.project.config.channels.items()):
            if config.scan is None:
                continue
            followed = any(
                g.channel == name and g.image == record.name and g.target == record.target
                for g in self.project.config.groups.values()
            )
            try:
                headed = bool(Channels(self.trust).read(name, record.target, record.name).was_head(record.version))
            except BakeryError:
                headed = False  # a history that does not verify: the report names it where it shows channels
            if followed or headed:
                out.append(name)
        return out


def registry_readers(project: Project, workspace: Workspace, reporter: Reporter) -> Readers:
    """The readers `bakery report` hands the builder: SBOMs and stored scans from the registry."""
    return RegistryReaders(project, TrustContext(project, workspace, reporter, creates_key=False)).readers()
