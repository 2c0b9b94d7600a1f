"""`bakery test IMAGE@VERSION --target T`: boot a test instance of a recorded image with a key made
for this test, wait for it (the boot deadline), run its test playbooks through ansible-runner and
its HTTP checks, remove the instance (always, whatever happens: a failure, SIGINT, SIGTERM, in any
phase), then sign the result and keep it in the registry (bakery.trust.testresults). Before the
launch, the test instances that killed runs left on the target, past the bound on their life
(bakery.imagetest.lifetime), are removed.

Only an image that verifies is tested: a result is signed about the provenance it carries.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from bakery import runner, steps, traces
from bakery.config.imagetests import ImageTests
from bakery.config.load import EffectiveImage, Project
from bakery.core import catalog
from bakery.core.catalog import ImageRecord
from bakery.core.jcs import digest
from bakery.errors import BakeryError, ProviderError, TrustError, UsageError
from bakery.imagetest import ansible, http
from bakery.imagetest.base import Launched, Launcher, LaunchRequest, Reach, TestKey, get_launcher
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory, Provider, get_provider
from bakery.trust import testresults
from bakery.trust.attestation import Attestations
from bakery.trust.context import TrustContext
from bakery.trust.signing import PAYLOAD_TYPE, verify
from bakery.trust.verify import Verifier
from bakery.workspace import Workspace

Connect = Callable[[Launched], Reach]


def reach_of(launched: Launched) -> Reach:
    """Where a test connects: where the launcher says the instance is (tests replace this with a
    stand-in on this machine for a cloud's instances, which cannot run there). UsageError for an
    instance of an endpoint on this machine (moto, a fake GCE): its address exists nowhere."""
    if launched.nowhere is not None:
        raise UsageError(
            f"not connecting to test instance {launched.id} at {launched.reach.host}: {launched.nowhere} "
            "whose instances run no guest",
            hint="bake with --no-test there, or declare no tests for that target (examples/moto declares none)",
        )
    return launched.reach


@dataclass(frozen=True)
class TestRun:
    """What one run of an image's tests found, and where its signed result is."""

    __test__ = False  # not a pytest test class

    image: str
    version: str
    target: str
    result: Literal["passed", "failed"]
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    instance: str  # "i-0abc in eu-west-1 (...)": what was booted, and is gone again
    removed: tuple[str, ...]  # what the cleanup removed
    seconds: float
    stored: str = ""  # where the signed result is: "tests/local/web/1.0.3.json in DIR"
    log_path: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "passed"

    @property
    def ref(self) -> str:
        return f"{self.image}@{self.version}"


@dataclass
class _Found:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Tester:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        project: Project,
        workspace: Workspace,
        reporter: Reporter,
        *,
        clients: ClientFactory | None = None,
        trust: TrustContext | None = None,
        launcher: Launcher | None = None,
        connect: Connect | None = None,
    ) -> None:
        """`launcher` and `connect` (where a test connects to what was launched) replace the
        target kind's own: tests point the SSH step of a cloud instance at a local stand-in."""
        self.project = project
        self.ws = workspace
        self.reporter = reporter
        self.clients = clients
        self.trust = trust or TrustContext(project, workspace, reporter, clients=clients)
        self._launcher = launcher
        self.connect: Connect = connect or (lambda launched: reach_of(launched))

    def provider(self, kind: str) -> Provider:
        return get_provider(kind, self.ws, self.reporter, self.clients, targets=self.project.config.targets)

    def tests_of(self, name: str, target: str) -> ImageTests:
        return self.project.effective(name, target).tests

    def test(self, ref: str, target: str) -> TestRun:
        """Test `ref` (IMAGE or IMAGE@VERSION, the newest when no version) on `target`. Raises
        UsageError (no such image, no tests declared), TrustError (the image does not verify),
        ProviderError (the instance could not be launched or removed), Interrupted."""
        name, version = catalog.parse_ref(ref)
        eff = self.project.effective(name, target)
        if eff.tests.empty:
            raise UsageError(
                f"image '{name}' declares no tests on target '{target}'",
                hint="add tests: {playbooks: [...], http: [...]} to the image (or to the target) in images.yaml",
            )
        records = self.provider(eff.kind).images(target)
        record = catalog.select(records, name=name, version=version, target=target)
        return self.test_record(eff, record, records)

    def test_record(self, eff: EffectiveImage, record: ImageRecord, records: list[ImageRecord]) -> TestRun:
        """Test the recorded image `record` (one of `records`, its target's) as `eff` declares."""
        attributes = {"image": record.name, "version": record.version, "target": record.target}
        with traces.job("image-test", **attributes, inputs_digest=record.inputs_digest):
            run = self._test(eff, record, records)
            traces.annotate(result=run.result, passed=len(run.passed), failed=len(run.failed))
            return run

    def _test(self, eff: EffectiveImage, record: ImageRecord, records: list[ImageRecord]) -> TestRun:
        subject = self._subject(record, records)
        launcher = self._launcher or get_launcher(eff.kind, self.ws, self.reporter, self.clients)
        run = uuid.uuid4().hex[:10]
        workdir = self.ws.root / "tests" / f"{record.name}-{record.target}-{run}"
        log_path = self.ws.builds / f"{record.name}-{record.target}-test-{run}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started, clock = steps.now(), time.monotonic()
        found, where, removed = _Found(), "not launched", []
        with runner.signal_guard(), open(log_path, "a", encoding="utf-8") as log:
            workdir.mkdir(parents=True, mode=0o700)
            try:  # the run's directory holds the test's private key: it goes whatever happens
                request = LaunchRequest(
                    record,
                    record.target,
                    self.project.config.targets[record.target],
                    eff.tests,
                    run,
                    TestKey.make(workdir, f"bakery-test-{run}"),
                    workdir,
                )
                try:
                    self._sweep(launcher, request)
                    self.reporter.phase("test", f"{record.ref} on {record.target}: launching a test instance")
                    with traces.step("launch"):
                        launched = launcher.launch(request)
                    where = f"{launched.id} {launched.where}"
                    self.reporter.note(f"test instance {where}")
                    with traces.step("run"):
                        self._run(eff, request, launcher, launched, found, lambda line: _write(log, line))
                finally:
                    with traces.step("cleanup"):
                        removed = self._cleanup(launcher, request, where)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        document = testresults.statement(
            subject,
            passed=found.passed,
            failed=found.failed,
            configuration=_configuration(
                self.project, eff, {"instance": where, "run": run, "startedOn": started, "finishedOn": steps.now()}
            ),
        )
        stored = testresults.store(self.trust, document)
        outcome: Literal["passed", "failed"] = "passed" if document["predicate"]["result"] == "PASSED" else "failed"
        self.trust.record(
            "test",
            f"{record.ref} on {record.target}",
            outcome,
            details={"run": run, "instance": where, "failed": found.failed[:10], "result": stored.digest},
        )
        return TestRun(
            record.name,
            record.version,
            record.target,
            outcome,
            tuple(found.passed),
            tuple(found.failed),
            where,
            tuple(removed),
            round(time.monotonic() - clock, 1),
            f"{stored.key} in {stored.where}",
            str(log_path),
        )

    def _run(
        self,
        eff: EffectiveImage,
        request: LaunchRequest,
        launcher: Launcher,
        launched: Launched,
        found: _Found,
        log: Callable[[str], None],
    ) -> None:
        tests = request.tests
        deadline = time.monotonic() + tests.boot_deadline
        reach = self.connect(launched)
        alive: Callable[[], bool] = lambda: launcher.alive(launched)  # noqa: E731
        self.reporter.phase("test", f"waiting for the instance to answer (boot deadline {tests.boot_deadline}s)")
        late = http.wait_for_ssh(reach, deadline, alive=alive) if tests.playbooks else None
        if late is not None:
            console = launcher.console(launched)
            found.failed.append(f"boot: {late}")
            if console:
                self.reporter.note("console of the test instance:\n  " + "\n  ".join(console.splitlines()[-15:]))
            return
        extravars: dict[str, Any] = {
            **eff.vars,
            "bakery_image": request.record.name,
            "bakery_version": request.record.version,
            "bakery_target": request.target,
        }
        for playbook in tests.playbooks:
            self.reporter.phase("test", f"ansible-playbook {playbook}")
            result = ansible.run_playbook(
                playbook,
                project_root=self.project.root,
                host=request.name,
                reach=reach,
                workdir=request.workdir,
                extravars=extravars,
                reporter=self.reporter,
                log=log,
            )
            found.passed += result.passed
            found.failed += result.failed_tests()
            for failure in result.failures:
                self.reporter.note(f"FAILED {playbook}: {failure}")
        for check in tests.http:
            outcome = http.run_check(check, reach, deadline, alive=alive)
            (found.passed if outcome.ok else found.failed).append(
                outcome.name if outcome.ok else f"{outcome.name}: {outcome.detail}"
            )
            self.reporter.note(f"{'ok' if outcome.ok else 'FAILED'}: {outcome.name}: {outcome.detail}")

    def _sweep(self, launcher: Launcher, request: LaunchRequest) -> None:
        """Remove the test instances that killed runs left on the target, past their life's bound.
        Not finding them (a refusal, a network error) does not stop this test: it is said."""
        try:
            removed = launcher.sweep(request)
        except ProviderError as exc:
            self.reporter.note(f"could not look for test instances left by earlier runs: {exc.message}")
            return
        for line in removed:
            self.reporter.note(f"removed a test instance left by an earlier run: {line}")

    def _cleanup(self, launcher: Launcher, request: LaunchRequest, where: str) -> list[str]:
        what = f"the test instance of run {request.run} ({where}) and its key"
        with runner.cleanup_phase(lambda: what, self.reporter.note):
            try:
                removed = launcher.cleanup(request)
            except BakeryError as exc:
                raise ProviderError(
                    f"could not remove {what}: {exc.message}",
                    hint=f"remove it by hand: it carries the mark bakery-test-run={request.run}",
                ) from exc
        for line in removed:
            self.reporter.note(f"removed {line}")
        return removed

    def _subject(self, record: ImageRecord, records: list[ImageRecord]) -> testresults.Subject:
        """The image's signed provenance subject, once the image verifies. TrustError if it does not."""
        verifier = Verifier(
            self.project, self.trust, lambda target: self.provider(self.project.config.targets[target].kind)
        )
        checked = verifier.verify_record(record, records)
        # An earlier test result, whatever it says, is what this run replaces.
        problems = [f"{c.name}: {c.detail}" for c in checked.checks if not c.ok and c.name != "tests"]
        if problems or checked.digest is None:
            raise TrustError(
                f"refusing to test {record.ref} on {record.target}: it does not verify: " + "; ".join(problems[:3]),
                hint=f"bakery verify {record.ref} --target {record.target} says why",
            )
        envelope = Attestations(self.trust).get(record)
        assert envelope is not None  # it verified just now
        statement = verify(envelope, self.trust.keys, self.trust.threshold, payload_type=PAYLOAD_TYPE).document
        first = statement["subject"][0]
        return testresults.Subject(
            str(first["name"]),
            str(first["digest"]["sha256"]),
            record.name,
            record.version,
            record.target,
            checked.digest,
        )


def _write(log: TextIO, line: str) -> None:
    log.write(line + "\n")


def _configuration(project: Project, eff: EffectiveImage, run: dict[str, str]) -> list[dict[str, Any]]:
    """The tests as run, as in-toto ResourceDescriptors: the tests block (its digest, what it says,
    where and when it ran) and each playbook file with its sha256."""
    tests = eff.tests.as_dict()
    described: list[dict[str, Any]] = [
        {
            "name": f"{project.path.name}#images.{eff.name}.tests@{eff.target}",
            "digest": {"sha256": digest(tests).removeprefix("sha256:")},
            "annotations": {"tests": tests, **run},
        }
    ]
    for playbook in eff.tests.playbooks:
        data = Path(project.root / playbook).read_bytes()
        described.append({"name": playbook, "digest": {"sha256": hashlib.sha256(data).hexdigest()}})
    return described
