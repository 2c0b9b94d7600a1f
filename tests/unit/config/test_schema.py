"""`bakery schema` says what `validate` accepts: checked with a standard JSON Schema validator on the
repository's files, the README's example, the corpus under data/ and a table of values per field."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from bakery.config import aptsource, yamlload
from bakery.config.models import Config

REPO = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def machine_apt(tmp_path, monkeypatch) -> Path:
    """A machine whose apt uses a local Debian archive (validate never reads the real /etc/apt here)."""
    etc = tmp_path / "etc-apt"
    etc.mkdir()
    (etc / "sources.list").write_text("deb file:///srv/mirror bookworm main\n")
    monkeypatch.setattr(aptsource, "ETC_APT", etc)
    return etc


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    from typer.testing import CliRunner

    from bakery.cli.app import app

    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def data_of(path: Path) -> Any:
    return yamlload.read(path)[0]


def schema_errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def readme_example() -> str:
    """The YAML block of the README's `## images.yaml` section, as a reader copies it."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## images.yaml\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert found, "the README's images.yaml section has no ```yaml block"
    return found.group(1)


# --- files that must be accepted by both --------------------------------------------------------


def test_schema_is_draft_2020_12_with_a_title(validator):
    assert validator.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert validator.schema["title"] == "bakery images.yaml"


@pytest.mark.parametrize(
    "path", [REPO / "images.yaml", REPO / "examples" / "moto" / "images.yaml"], ids=lambda p: str(p.relative_to(REPO))
)
def test_repository_files_are_accepted_by_schema_and_validate(validator, bakery_cli, path):
    assert schema_errors(validator, data_of(path)) == []
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 0, result.output


def test_readme_example_is_accepted_by_schema_and_validate(validator, project_dir, bakery_cli):
    path = project_dir.write(readme_example())
    assert schema_errors(validator, data_of(path)) == []
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("valid (2 images, 3 targets, 3 groups, 2 channels)\n")


@pytest.mark.parametrize("case", sorted((DATA / "valid").glob("*.yaml")), ids=lambda p: p.stem)
def test_right_but_unusual_files_are_accepted_by_both(validator, project_dir, bakery_cli, case):
    path = project_dir.write(case.read_text(encoding="utf-8"))
    assert schema_errors(validator, data_of(path)) == []
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 0, result.output


# --- files that must be refused ------------------------------------------------------------------


def invalid(verdict: str) -> list[Path]:
    return [p for p in sorted((DATA / "invalid").glob("*.yaml")) if f"# schema: {verdict}\n" in p.read_text()]


@pytest.mark.parametrize("case", invalid("rejects"), ids=lambda p: p.stem)
def test_wrong_files_are_refused_by_schema_and_validate(validator, project_dir, bakery_cli, case):
    path = project_dir.write(case.read_text(encoding="utf-8"))
    assert schema_errors(validator, data_of(path)), "the schema accepts what validate refuses"
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("case", invalid("accepts"), ids=lambda p: p.stem)
def test_what_only_validate_refuses_is_a_cross_reference_or_a_cloud_limit(validator, case):
    # References between sections, files on disk and cloud limits: beyond what a schema says.
    assert case.stem.startswith(("ref-", "limit-"))
    assert schema_errors(validator, data_of(case)) == []


def test_the_corpus_has_each_kind_of_file():
    assert len(invalid("rejects")) >= 20 and len(invalid("accepts")) >= 15 and len(invalid("unreadable")) >= 8


# --- field by field: the schema and the models agree on every value ------------------------------


class _Deleted:
    """The value of a key left out of the document (a stable test id, unlike object()'s address)."""

    def __repr__(self) -> str:
        return "<deleted>"


DELETE = _Deleted()
BASE: dict[str, Any] = {
    "targets": {
        "local": {"kind": "local"},
        "aws": {"kind": "aws", "region": "eu-west-1"},
        "gcp": {"kind": "gcp", "project": "bakery-demo", "zone": "europe-west1-b"},
    },
    "images": {
        "web": {
            "version": "1.0",
            "source": {
                "local": {},
                "aws": {"ami": "ami-0123456789abcdef0"},
                "gcp": {"family": "debian-12", "project": "debian-cloud"},
            },
        }
    },
    "groups": {"g": {"image": "web", "target": "aws"}},
    "channels": {"stable": {}},
}
SIZES = [1, 1024, 0, -1, 2.0, 2.5, "1G", "1g", "512M", "4GiB", "4gb", "4096", "0G", "01G", " 1G", "1 G", "1.5G"]
PROBES: list[tuple[tuple[str, ...], list[Any]]] = [
    (("targets", "local", "memory"), [*SIZES, "1T", "", True, None, [1], DELETE]),
    # (Not "3G\n": the jsonschema library matches patterns with Python's re, whose $ also matches
    # before a final newline; JSON Schema's ECMA-262 $, like validate, does not.)
    (("targets", "local", "disk_size"), [*SIZES, "3G ", False]),
    (("targets", "local", "cpus"), [1, 64, 65, 0, "2", 2.0, 2.5, True, None]),
    (("targets", "local", "accelerator"), ["auto", "kvm", "tcg", "xen", "", None, 1]),
    (("targets", "local", "ssh_timeout"), ["20m", "5s", "1h", "20", "m", "20 m", 20, "\u0662m"]),
    (("targets", "local", "kind"), ["local", "aws", "azure", None, DELETE]),
    (("targets", "aws", "region"), ["eu-west-1", "us-gov-west-1", "eu-west", "EU-west-1", "eu-west-\u0661", DELETE]),
    (("targets", "aws", "encrypted"), [True, False, "true", "yes", 1, 0, None]),
    (("targets", "aws", "volume_size"), [1, 16384, 16385, 0, "8", 8.0]),
    (("targets", "aws", "ssh_interface"), ["public_ip", "session_manager", "ssm"]),
    (("targets", "aws", "copy_to"), [[], ["eu-central-1"], ["eu"], "eu-central-1", [1]]),
    (("targets", "aws", "share_with"), [["123456789012"], ["12345678901"], [123456789012], ["\u0661" * 12]]),
    (("targets", "aws", "endpoint"), ["http://127.0.0.1:5000", "ftp://127.0.0.1", "http://", "http://a b", None]),
    (("targets", "aws", "communicator"), ["ssh", "none", "winrm"]),
    (("targets", "aws", "zone"), ["europe-west1-b"]),
    (("targets", "gcp", "disk_size"), [10, 9, 65536, 65537, "10", 10.0, "10G"]),
    (("targets", "gcp", "zone"), ["europe-west1-b", "europe-west1", "us-central1-a", DELETE]),
    (("targets", "gcp", "project"), ["bakery-demo", "Bakery-demo", "abc", "a" * 30, "a" * 31, "demo-"]),
    (("targets", "gcp", "use_internal_ip"), [True, "false"]),
    (("targets", "gcp", "region"), ["eu-west-1"]),
    (("images", "web", "version"), ["1.0", "0.10", "01.0", "1.0.0", "1", 1.0, 1, "", "\u0661.\u0660", DELETE]),
    (("images", "web", "description"), ["", "x", 1, None]),
    (("images", "web", "from"), [None, "web", 1]),
    (("images", "web", "source"), [None, {}, {"local": {}}, {"local": None}, [], "x", DELETE]),
    (
        ("images", "web", "source", "local", "mirror"),
        ["http://127.0.0.1:9/debian", "file:///srv/mirror", "https://127.0.0.1/d", "ftp://x", "file:/srv", None, "x"],
    ),
    (("images", "web", "source", "local", "suite"), ["bookworm", "Bookworm", "1", "trixie-backports"]),
    (("images", "web", "source", "local", "packages"), [[], ["vim"], ["Vim"], "vim", ["vim=1.0~1"], [None]]),
    (
        ("images", "web", "source", "aws"),
        [
            {"ami": "ami-0123456789abcdef0"},
            {},
            {"ami": None},
            {"ami": "ami-0123456789abcdef0", "filter": None},
            {"filter": {"owners": ["1"], "name": "x"}},
            {"filter": {"owners": [], "name": "x"}},
            {"filter": {"owners": ["1"], "name": ""}},
            {"filter": {"owners": ["1"], "name": "x", "most_recent": "yes"}},
            {"ami": "ami-0123456789abcdef0", "filter": {"owners": ["1"], "name": "x"}},
            {"ami": "ami-0123"},
        ],
    ),
    (
        ("images", "web", "source", "gcp"),
        [
            {"image": "x"},
            {"family": "f"},
            {"family": "f", "project": "p"},
            {"image": "x", "family": "f", "project": "p"},
            {"image": None, "family": "f", "project": None},
            {"image": "x", "project": "p"},
            {},
        ],
    ),
    (("images", "web", "playbooks"), [[], ["a.yml"], "a.yml", [1]]),
    (("images", "web", "vars"), [{}, {"a": {"b": [1, None]}}, [], None]),
    (("images", "web", "tags"), [{}, {"a": "b"}, {"a": 1}, {"a": None}, {"a": True}]),
    (("images", "web", "secrets"), [{"a": "ENV"}, {"a": "_x1"}, {"a": "1X"}, {"a": "X-Y"}, {"a": 1}, {"a": "É"}]),
    (("images", "web", "targets"), [None, [], ["aws"], "aws"]),
    (
        ("images", "web", "overrides"),
        [{}, {"aws": {}}, {"aws": {"tags": {"a": "b"}, "vars": {}, "playbooks": None}}, {"aws": {"foo": 1}}],
    ),
    (("groups", "g", "size"), [None, 0, 3, -1, "3", 3.0]),
    (("groups", "g", "strategy", "batch_size"), [1, 0, -1, 2.0, 2.5, "25%", "100%", "101%", "0%", "05%", "5", True]),
    (("groups", "g", "strategy", "type"), ["rolling", "canary", "blue-green", "bluegreen"]),
    (("groups", "g", "health", "path"), ["/", "/healthz", "healthz", "/a b", ""]),
    (("groups", "g", "health", "port"), [1, 65535, 0, 65536, "80"]),
    (("groups", "g", "rollback"), [True, "no"]),
    (("groups", "g", "channel"), [None, "stable", 1]),
    (("channels", "stable", "promote_from"), [None, "x", 1]),
    (("channels", "stable"), [None, {}, []]),
    (("images",), [{}, [], None, DELETE]),
    (("groups",), [{}, None, DELETE]),
]
NAMES = ["a", "a-1", "a--", "A", "1a", "-a", "a" * 40, "a" * 41, "a_b", "", "é"]


def probe_cases() -> list[tuple[tuple[str, ...], Any]]:
    cases = [(path, value) for path, values in PROBES for value in values]
    # names of images, targets, groups and channels (the entries are copies of valid ones)
    cases += [((section, "<name>"), name) for section in ("images", "targets", "groups", "channels") for name in NAMES]
    return cases


def with_value(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    if path[-1] == "<name>":
        section = doc[path[0]]
        section[value] = copy.deepcopy(next(iter(section.values())))
        return doc
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return doc


def shape_accepts(doc: dict[str, Any]) -> bool:
    try:
        Config.model_validate(doc)
    except ValidationError:
        return False
    return True


def test_the_base_document_is_accepted_by_both(validator):
    assert shape_accepts(BASE)
    assert schema_errors(validator, BASE) == []


@pytest.mark.parametrize(("path", "value"), probe_cases(), ids=[f"{'.'.join(p)}={v!r}"[:80] for p, v in probe_cases()])
def test_schema_and_validate_agree_on_every_value(validator, path, value):
    doc = with_value(path, value)
    by_schema = schema_errors(validator, doc)
    assert shape_accepts(doc) == (not by_schema), f"validate {'accepts' if shape_accepts(doc) else 'refuses'}, " + (
        f"the schema says {by_schema}" if by_schema else "the schema accepts"
    )


def test_sizes_are_numbers_or_text_with_a_unit(validator):
    memory = validator.schema["$defs"]["LocalTarget"]["properties"]["memory"]
    assert {"type": "integer", "minimum": 1} in memory["anyOf"]
    assert any(alt.get("type") == "string" and "pattern" in alt for alt in memory["anyOf"])


def test_targets_are_one_schema_per_kind_selected_by_kind(validator):
    entry = validator.schema["properties"]["targets"]["additionalProperties"]
    kinds = []
    for alternative in entry["oneOf"]:
        target = validator.schema["$defs"][alternative["$ref"].rsplit("/", 1)[1]]
        assert target["additionalProperties"] is False
        kinds.append(target["properties"]["kind"]["const"])
    assert kinds == ["local", "aws", "gcp"]
    assert entry["discriminator"]["propertyName"] == "kind"
