"""What needs baking (bakery/bake/plan.py), against the fake provider: images are baked by Baker with a
stand-in `packer`, so the plan compares with what a real bake records (its key, its provenance)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bakery.bake import tools
from bakery.bake.plan import NEW, STALE, UP_TO_DATE, Plan, Planner
from bakery.bake.service import Baker
from bakery.errors import ProviderError, UsageError
from bakery.progress import Recording
from bakery.workspace import Workspace
from tests.fakes.provider import FakePacker, FakeProvider

PROJECT = """\
targets:
  cloud:
    kind: aws
    region: eu-west-1
images:
  base:
    version: "1.0"
    source: {aws: {ami: ami-0123456789abcdef0}}
    playbooks: [playbooks/base.yml]
  web:
    version: "1.0"
    from: base
    playbooks: [playbooks/web.yml]
    vars: {page_title: Hello}
  api:
    version: "2.0"
    from: web
  other:
    version: "3.0"
    source: {aws: {ami: ami-0123456789abcdef0}}
    playbooks: [playbooks/base.yml]
    vars: {colour: blue}
"""


@pytest.fixture()
def packer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePacker]:
    stand_in = FakePacker(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{stand_in.bin_dir}{os.pathsep}{os.environ['PATH']}")
    tools.packer_version.cache_clear()
    yield stand_in
    tools.packer_version.cache_clear()


@pytest.fixture()
def fake(tmp_path: Path) -> FakeProvider:
    return FakeProvider(inbox=tmp_path / "cloud")


@pytest.fixture()
def project(project_dir: Any, packer: FakePacker) -> Any:
    project_dir.write(PROJECT)
    return project_dir


def bake(project: Any, fake: FakeProvider, *names: str) -> None:
    for name in names:
        Baker(project.load(), Workspace(project.home), Recording(), provider=fake).bake(name, "cloud")


def plan(project: Any, fake: FakeProvider, images: list[str] | None = None, target: str | None = None) -> Plan:
    return Planner(project.load(), Workspace(project.home), Recording(), provider=fake).plan(images, target)


def table(result: Plan) -> dict[str, tuple[str, list[str]]]:
    return {item.image: (item.status, item.reasons) for item in result.items}


def waves(result: Plan) -> list[list[str]]:
    return [[item.image for item in wave] for wave in result.waves()]


def append(project: Any, path: str, text: str) -> None:
    file = project.root / path
    file.write_text(file.read_text() + text)


def edit(project: Any, old: str, new: str) -> None:
    text = project.config.read_text()
    assert old in text
    project.write(text.replace(old, new, 1))


# --- new, up to date ----------------------------------------------------------------------------


def test_nothing_baked_everything_is_new_parents_first(project: Any, fake: FakeProvider) -> None:
    result = plan(project, fake)
    assert table(result) == {
        "base": (NEW, ["no version on this target yet"]),
        "other": (NEW, ["no version on this target yet"]),
        "web": (NEW, ["parent base will be baked first"]),
        "api": (NEW, ["parent web will be baked first"]),
    }
    by_name = {i.image: i for i in result.items}
    assert by_name["base"].inputs_digest is not None and by_name["web"].inputs_digest is None
    assert by_name["api"].depends_on == ["web@cloud"] and by_name["base"].depends_on == []
    assert waves(result) == [["base", "other"], ["web"], ["api"]]
    assert len(fake.called("images")) == 1  # one listing per target, however many images


def test_what_was_baked_from_the_same_inputs_is_up_to_date(project: Any, fake: FakeProvider) -> None:
    bake(project, fake, "base", "web", "api", "other")
    result = plan(project, fake)
    assert table(result) == {name: (UP_TO_DATE, []) for name in ("base", "other", "web", "api")}
    assert {i.image: i.current for i in result.items} == {
        "base": "base@1.0.0",
        "other": "other@3.0.0",
        "web": "web@1.0.0",
        "api": "api@2.0.0",
    }
    assert result.stale == [] and waves(result) == []


# --- stale, and why ------------------------------------------------------------------------------


def _playbook_changed(project: Any, fake: FakeProvider) -> list[str]:
    append(project, "playbooks/base.yml", "# changed\n")
    return ["playbooks/base.yml changed"]


def _entry_changed(project: Any, fake: FakeProvider) -> list[str]:
    edit(project, "colour: blue", "colour: red")
    return ["images.yaml entry of other changed"]


def _base_changed(project: Any, fake: FakeProvider) -> list[str]:
    fake.base = "fake-base:2"
    return ["base fake-base:1 → fake-base:2"]


def _packer_upgraded(project: Any, fake: FakeProvider) -> list[str]:
    FakePacker(Path(os.environ["PATH"].split(os.pathsep)[0]), version="1.9.4")
    tools.packer_version.cache_clear()
    return ["packer 1.6.6 → 1.9.4"]


def _playbook_added(project: Any, fake: FakeProvider) -> list[str]:
    edit(
        project,
        "    playbooks: [playbooks/base.yml]\n    vars: {colour",
        "    playbooks: [playbooks/base.yml, playbooks/web.yml]\n    vars: {colour",
    )
    return ["playbooks/web.yml added", "images.yaml entry of other changed"]


@pytest.mark.parametrize(
    "change",
    [_playbook_changed, _entry_changed, _base_changed, _packer_upgraded, _playbook_added],
    ids=lambda f: f.__name__.strip("_"),
)
def test_a_stale_image_says_why(project: Any, fake: FakeProvider, change: Any) -> None:
    bake(project, fake, "other")
    expected = change(project, fake)
    (item,) = plan(project, fake, ["other"]).items
    assert item.status == STALE and item.current == "other@3.0.0"
    assert set(expected) <= set(item.reasons)
    # Only files by their path are compared as files: the provider's base ("fake-image:...") is none.
    assert not [r for r in item.reasons if r.startswith("fake-image:")]
    if change is not _playbook_added:
        assert item.reasons == expected


def test_a_rebaked_parent_makes_its_children_stale(project: Any, fake: FakeProvider) -> None:
    bake(project, fake, "base", "web", "api")
    append(project, "playbooks/base.yml", "# changed\n")
    before = plan(project, fake, ["base"])
    assert table(before) == {
        "base": (STALE, ["playbooks/base.yml changed"]),
        "web": (STALE, ["parent base will be baked first"]),
        "api": (STALE, ["parent web will be baked first"]),
    }
    assert waves(before) == [["base"], ["web"], ["api"]]

    bake(project, fake, "base")
    after = plan(project, fake)
    assert table(after)["base"] == (UP_TO_DATE, [])
    assert table(after)["web"] == (STALE, ["parent base@1.0.0 → base@1.0.1"])
    assert table(after)["api"] == (STALE, ["parent web will be baked first"])


def test_asking_for_one_image_plans_its_stale_ancestors_and_its_descendants(project: Any, fake: FakeProvider) -> None:
    bake(project, fake, "base", "web", "api", "other")
    append(project, "playbooks/base.yml", "# changed\n")  # base and other read it
    assert [i.image for i in plan(project, fake, ["web"]).items] == ["base", "web", "api"]
    assert [i.image for i in plan(project, fake, ["other"]).items] == ["other"]


def test_a_plan_of_an_unknown_image_or_target_is_a_usage_error(project: Any, fake: FakeProvider) -> None:
    with pytest.raises(UsageError, match="unknown target 'nowhere'; known: cloud"):
        plan(project, fake, target="nowhere")
    with pytest.raises(UsageError, match="nope"):
        plan(project, fake, ["nope"])
    assert fake.calls == []


# --- an unreadable provenance ------------------------------------------------------------------


def test_an_unreadable_provenance_leaves_the_digest_comparison_standing(project: Any, fake: FakeProvider) -> None:
    bake(project, fake, "other")
    append(project, "playbooks/base.yml", "# changed\n")
    fake.fail("provenance", ProviderError("the provenance tags on ami-0abc are gone"))
    (item,) = plan(project, fake, ["other"]).items
    assert (item.status, item.reasons) == (
        STALE,
        ["inputs changed (the provenance of other@3.0.0 is unreadable: the provenance tags on ami-0abc are gone)"],
    )


def test_an_unreadable_provenance_still_names_a_new_base(project: Any, fake: FakeProvider) -> None:
    bake(project, fake, "other")
    fake.base = "fake-base:2"
    fake.fail("provenance")
    (item,) = plan(project, fake, ["other"]).items
    assert (item.status, item.reasons) == (STALE, ["base fake-base:1 → fake-base:2"])


def test_a_bug_reading_the_provenance_is_not_hidden(project: Any, fake: FakeProvider) -> None:
    bake(project, fake, "other")
    append(project, "playbooks/base.yml", "# changed\n")
    fake.fail("provenance", KeyError("predicate"))
    with pytest.raises(KeyError, match="predicate"):
        plan(project, fake, ["other"])


# --- a target that cannot be read ----------------------------------------------------------------


def two_targets(project: Any) -> None:
    edit(project, "images:\n", "  other-cloud:\n    kind: aws\n    region: eu-central-1\nimages:\n")


def test_a_partial_plan_names_the_target_it_cannot_read_and_plans_the_others(project: Any, fake: FakeProvider) -> None:
    two_targets(project)
    fake.on("images", lambda: _refuse_listing(fake, "cloud"), times=None)
    result = Planner(project.load(), Workspace(project.home), Recording(), provider=fake).plan(partial=True)
    assert result.unreadable == {"cloud": "fake cloud: listing cloud refused"}
    assert {(i.image, i.target, i.status) for i in result.items} == {
        ("base", "other-cloud", NEW),
        ("other", "other-cloud", NEW),
        ("web", "other-cloud", NEW),
        ("api", "other-cloud", NEW),
    }
    assert waves(result) == [["base", "other"], ["web"], ["api"]]


def test_a_whole_plan_fails_on_a_target_it_cannot_read(project: Any, fake: FakeProvider) -> None:
    two_targets(project)
    fake.on("images", lambda: _refuse_listing(fake, "other-cloud"), times=None)
    with pytest.raises(ProviderError, match="listing other-cloud refused"):
        plan(project, fake)  # what `build --stale` asks for: it never bakes on a partial plan


def test_a_bug_while_planning_is_not_taken_for_an_unreadable_target(project: Any, fake: FakeProvider) -> None:
    fake.fail("images", KeyError("Images"))
    with pytest.raises(KeyError, match="Images"):
        Planner(project.load(), Workspace(project.home), Recording(), provider=fake).plan(partial=True)


def _refuse_listing(fake: FakeProvider, target: str) -> None:
    call = fake.called("images")[-1]
    if call.args["target"] == target:
        raise ProviderError(f"fake cloud: listing {target} refused")
