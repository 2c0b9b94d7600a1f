"""A bake followed by the image's tests: what `bakery build` runs (unless --no-test).

The bake records the image first (it exists, signed, whatever the tests find); then its tests
boot it. A failed test fails the build (exit 1) and its signed result says FAILED: the image stays
recorded as tested and failed, and no promotion takes it. An image with no tests is recorded
untested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bakery.bake.service import Baker, BuildResult
from bakery.config.load import Project
from bakery.errors import BakeryError
from bakery.imagetest.service import Tester, TestRun
from bakery.progress import Reporter
from bakery.providers.base import ClientFactory
from bakery.workspace import Workspace

NO_TESTS = "no tests declared"
UP_TO_DATE = "not baked (up to date): not tested again"
SKIPPED = "--no-test"


class TestsFailed(BakeryError):
    """A bake whose image's tests failed (exit 1): the message names each failed task and check."""

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class TestedBuild:
    build: BuildResult
    tests: TestRun | None
    untested: str = ""  # why no tests ran: NO_TESTS, UP_TO_DATE, SKIPPED

    @property
    def ok(self) -> bool:
        return self.tests is None or self.tests.ok


def failure_of(run: TestRun) -> TestsFailed:
    shown = "\n  ".join(run.failed[:20])
    return TestsFailed(
        f"tests of {run.ref} on {run.target} failed:\n  {shown}",
        hint=f"the image stays recorded, tested and failed ({run.stored}); fix it and bake again",
    )


def build_and_test(
    project: Project,
    workspace: Workspace,
    reporter: Reporter,
    image: str,
    target: str,
    *,
    force: bool = False,
    allow_revoked_parent: str | None = None,
    test: bool = True,
    clients: ClientFactory | None = None,
    tester: Tester | None = None,
) -> TestedBuild:
    """Bake `image` on `target`, then run its tests on what was recorded. Raises what the bake
    raises, and what the tests raise before a result exists (UsageError, ProviderError, Interrupted)."""
    built = Baker(project, workspace, reporter, clients=clients).bake(
        image, target, force=force, allow_revoked_parent=allow_revoked_parent
    )
    return test_after(project, workspace, reporter, built, test=test, clients=clients, tester=tester)


def tests_after_each(
    project: Project, workspace: Workspace, *, clients: ClientFactory | None = None
) -> Callable[[BuildResult, Reporter], None]:
    """What `build --stale` runs after each bake: its tests; TestsFailed when they failed."""

    def after(built: BuildResult, reporter: Reporter) -> None:
        tested = test_after(project, workspace, reporter, built, clients=clients)
        if tested.tests is not None and not tested.tests.ok:
            raise failure_of(tested.tests)

    return after


def test_after(
    project: Project,
    workspace: Workspace,
    reporter: Reporter,
    built: BuildResult,
    *,
    test: bool = True,
    clients: ClientFactory | None = None,
    tester: Tester | None = None,
) -> TestedBuild:
    """The tests of what `built` recorded (none when it was up to date, or declares none)."""
    record = built.record
    if not test:
        return TestedBuild(built, None, SKIPPED)
    if built.skipped:
        return TestedBuild(built, None, UP_TO_DATE)
    eff = project.effective(record.name, record.target)
    if eff.tests.empty:
        reporter.note(f"{record.ref} on {record.target} declares no tests: recorded untested")
        return TestedBuild(built, None, NO_TESTS)
    tester = tester or Tester(project, workspace, reporter, clients=clients)
    records = tester.provider(eff.kind).images(record.target)
    return TestedBuild(built, tester.test_record(eff, record, records))
