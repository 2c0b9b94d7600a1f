"""A project's images.yaml edited in place for the image-test integration tests (AWS on moto, GCP
on the fake GCE): an image given test playbooks and HTTP checks, a target given its network."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml


@contextmanager
def images_yaml(root: Path) -> Iterator[dict[str, Any]]:
    """The project's images.yaml as data, written back (in its order) when the block ends."""
    path = root / "images.yaml"
    config = yaml.safe_load(path.read_text())
    yield config
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def declare_tests(
    root: Path, image: str, target: str, *, playbook: str, http: list[dict[str, Any]], **network: Any
) -> None:
    """`image` tested by `playbook` (written to playbooks/tests/<image>.yml) and the `http` checks;
    the `target` given the `network` settings its test instances are launched in."""
    (root / "playbooks" / "tests").mkdir(exist_ok=True)
    (root / "playbooks" / "tests" / f"{image}.yml").write_text(playbook)
    with images_yaml(root) as config:
        config["targets"][target].update(network)
        config["images"][image]["tests"] = {"playbooks": [f"playbooks/tests/{image}.yml"], "http": http}
