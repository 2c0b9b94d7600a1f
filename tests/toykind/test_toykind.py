"""A kind defined entirely under tests/ (tests/toykind), registered through bakery's public API,
driven through the CLI: validate, build, images, rollout, status and verify work on it as on the
kinds bakery ships, and bakery forgets it again once it is unregistered."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bakery.bake import inputs, render, tools
from bakery.config import kinds
from bakery.errors import UsageError
from bakery.providers.base import Prepared, packer_variables
from bakery.trust.keys import generate
from tests.fakes.packer import FakePacker
from tests.fakes.provider import FakeMarks
from tests.toykind import kind as toykind
from tests.toykind.provider import ToyVariables

HERE = Path(__file__).resolve().parent

PROJECT = """\
targets:
  shop:
    kind: toy
    shelf: middle
images:
  bread:
    description: a toy loaf
    version: "1.0"
    source:
      toy: {dough: rye}
    playbooks: [playbooks/base.yml]
    tags: {team: bakers}
groups:
  counter:
    image: bread
    target: shop
    toy: {size: 3}
trust:
  keys:
    - {name: ops, public_key: keys/ops.key.pub}
  signing: {key_file: keys/ops.key}
"""


@pytest.fixture()
def toy(project_dir: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A project with one toy target, image and group; the stand-in packer first on PATH."""
    generate(project_dir.root / "keys" / "ops.key")
    shutil.copyfile(HERE / "toy.pkr.hcl", project_dir.root / "templates" / "toy.pkr.hcl")
    project_dir.write(PROJECT)
    packer = FakePacker(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{packer.bin_dir}{os.pathsep}{os.environ['PATH']}")
    tools.packer_version.cache_clear()
    with toykind.registered():
        yield project_dir
    tools.packer_version.cache_clear()


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_the_toy_kind_goes_through_every_command(toy: Any, bakery_cli: Any) -> None:
    checked = ok(bakery_cli("validate"))
    assert "valid (1 images, 1 targets, 1 groups, 0 channels)" in checked.stdout

    built = ok(bakery_cli("build", "bread", "--target", "shop"))
    assert "bread@1.0.0" in built.output

    listed = json.loads(ok(bakery_cli("images", "--target", "shop", "--json")).stdout)
    assert [(i["name"], i["version"], i["target"]) for i in listed["images"]] == [("bread", "1.0.0", "shop")]

    verified = ok(bakery_cli("verify", "bread", "--target", "shop"))
    assert "bread@1.0.0 on shop: verified" in verified.stdout

    moved = ok(bakery_cli("rollout", "counter", "--yes"))
    assert "bread@1.0.0" in moved.output
    assert "3 toy instances answer" in moved.output  # the toy block's own gate, in the plan

    status = ok(bakery_cli("status", "counter"))
    assert "counter (toy on shop)" in status.stdout
    doc = json.loads(ok(bakery_cli("status", "counter", "--json")).stdout)
    (group,) = doc["groups"]
    assert group["kind"] == "toy"
    assert {i["image"] for i in group["instances"]} == {"bread@1.0.0"} and len(group["instances"]) == 3

    again = ok(bakery_cli("build", "bread", "--target", "shop"))  # same inputs: the bake key finds it
    assert "up to date: bread@1.0.0 on shop has the same inputs digest" in again.stdout


def test_the_toy_variables_say_which_enter_the_bake_key(toy: Any) -> None:
    project = toy.load()
    eff = project.effective("bread", "shop")
    values = render.variables(project, eff, "1.0.0")
    assert isinstance(values.kind, ToyVariables)
    assert values.as_dict()["dough"] == "rye" and values.as_dict()["shelf"] == "middle"
    assert "bake_id" in values.as_dict() and "bake_id" not in values.keyed()
    assert values.keyed()["oven"] == 180
    base = Prepared(base="toy-base", base_dependency=None)
    tools_used = {"packer": "1.6.6", "ansible": "2.17.0"}
    key = inputs.bake_key(project, eff, values, base, tools_used)
    marked = render.variables(project, eff, "1.0.9", base, FakeMarks(fake_mark="0123456789ab"))
    assert marked.as_dict()["bake_id"] == "0123456789ab"
    assert inputs.bake_key(project, eff, marked, base, tools_used) == key  # version and marks: not inputs
    toy.write(PROJECT.replace("shelf: middle", "shelf: middle\n    oven: 200"))
    hotter = toy.load()
    warm = hotter.effective("bread", "shop")
    assert inputs.bake_key(hotter, warm, render.variables(hotter, warm, "1.0.0"), base, tools_used) != key


def test_a_kind_nobody_registered_is_an_error(toy: Any, bakery_cli: Any) -> None:
    toy.write(PROJECT.replace("kind: toy", "kind: tin"))
    refused = bakery_cli("validate")
    assert refused.exit_code == 2
    assert "'kind' must be one of local, aws, gcp, toy, got 'tin'" in refused.stderr
    with pytest.raises(UsageError, match="no provider for target kind 'tin'; valid kinds: aws, gcp, local, toy"):
        packer_variables("tin")


def test_an_unregistered_kind_is_forgotten(project_dir: Any, bakery_cli: Any) -> None:
    with toykind.registered():
        assert "toy" in kinds.names()
    assert kinds.names() == ("local", "aws", "gcp")
    project_dir.write(PROJECT)
    refused = bakery_cli("validate")
    assert refused.exit_code == 2
    assert "'kind' must be one of local, aws, gcp, got 'toy'" in refused.stderr
