"""images.yaml errors as a user sees them: `bakery validate -f FILE` exits 2, names file:line:col and
the key path, prints no traceback and writes nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bakery.config import aptsource
from bakery.errors import ConfigError, UsageError

DATA = Path(__file__).parent / "data"
# The installed entry point, beside the interpreter running the tests (.venv/bin/bakery).
BAKERY = Path(sys.executable).parent / "bakery"


@pytest.fixture(autouse=True)
def machine_apt(tmp_path, monkeypatch) -> Path:
    """This machine's apt sources as validate reads them: a local Debian archive. No test reads the
    real /etc/apt, so what validate says does not depend on the machine that runs the tests."""
    etc = tmp_path / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("deb file:///srv/mirror bookworm main\n")
    monkeypatch.setattr(aptsource, "ETC_APT", etc)
    return etc


def refused(project_dir, bakery_cli, text: str):
    """Write `text` as images.yaml, validate it, and check what every refusal shares."""
    path = project_dir.write(text)
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""  # the error goes to stderr; stdout stays clean for pipes
    assert project_dir.nothing_written()
    return result.stderr


def located(stderr: str, path, line: int | None, col: int | None, key: str) -> str:
    """The stderr line that names `path:line:col: key`; fails the test if there is none."""
    any_number = r"\d+"
    where = rf"{re.escape(str(path))}:{line or any_number}:{col or any_number}: {re.escape(key)}(:|\s)"
    match = re.search(where + r".*", stderr)
    assert match, f"no '{path}:{line}:{col}: {key}' in:\n{stderr}"
    return match.group(0)


# (id, edit of VALID_YAML, line, col, key path, fragments the message must hold)
CASES = [
    (
        "unknown-key-playbook",
        lambda t: t.replace("    playbooks:\n", "    playbook:\n"),
        22,
        5,
        "images.web.playbook",
        ["unknown key 'playbook'", "did you mean 'playbooks'?"],
    ),
    (
        "unknown-key-memroy",
        lambda t: t.replace("    kind: local\n", "    kind: local\n    memroy: 1G\n"),
        4,
        5,
        "targets.local.memroy",
        ["unknown key 'memroy'", "did you mean 'memory'?"],
    ),
    (
        "unknown-key-in-aws-target",
        lambda t: t.replace("    region: eu-west-1\n", "    region: eu-west-1\n    instance_typ: t3.micro\n"),
        7,
        5,
        "targets.aws.instance_typ",
        ["did you mean 'instance_type'?"],
    ),
    ("unknown-top-level-key", lambda t: t + "chanels: {}\n", 39, 1, "chanels", ["did you mean 'channels'?"]),
    (
        "version-float",
        lambda t: t.replace('version: "1.0"', "version: 1.0"),
        14,
        5,
        "images.web.version",
        ['quoted string such as "1.0"', "YAML reads 1.0 as a number"],
    ),
    (
        "version-int",
        lambda t: t.replace('version: "1.0"', "version: 2"),
        14,
        5,
        "images.web.version",
        ["quoted string", "YAML reads 2 as a number"],
    ),
    (
        "version-not-major-minor",
        lambda t: t.replace('version: "1.0"', 'version: "x"'),
        14,
        5,
        "images.web.version",
        ["MAJOR.MINOR", "'x'"],
    ),
    (
        "version-with-patch",
        lambda t: t.replace('version: "1.0"', 'version: "1.0.3"'),
        14,
        5,
        "images.web.version",
        ["MAJOR.MINOR", "'1.0.3'"],
    ),
    (
        "aws-region-missing",
        lambda t: t.replace("    region: eu-west-1\n", ""),
        4,
        3,
        "targets.aws.region",
        ["required key is missing"],
    ),  # at the target that lacks it
    (
        "bad-target-kind",
        lambda t: t.replace("kind: aws", "kind: azure"),
        5,
        5,
        "targets.aws.kind",
        ["'kind' must be one of local, aws, gcp", "'azure'"],
    ),
    ("target-kind-missing", lambda t: t.replace("    kind: aws\n", ""), 4, 3, "targets.aws", ["missing 'kind'"]),
    (
        "image-name-uppercase",
        lambda t: t.replace("  web:\n", "  Web:\n", 1),
        12,
        3,
        "images.Web",
        ["name 'Web' is not allowed", "lowercase"],
    ),
    (
        "from-cycle",
        lambda t: t.replace(
            "groups:\n", '  a:\n    version: "1.0"\n    from: b\n  b:\n    version: "1.0"\n    from: a\ngroups:\n'
        ),
        31,
        5,
        "images.a.from",
        ["cycle", "a -> b -> a"],
    ),
    (
        "from-unknown-image",
        lambda t: t.replace("groups:\n", '  child:\n    version: "1.0"\n    from: wbe\ngroups:\n'),
        31,
        5,
        "images.child.from",
        ["unknown image 'wbe'", "did you mean 'web'?"],
    ),
    (
        "playbook-missing",
        lambda t: t.replace("      - playbooks/web.yml\n", "      - playbooks/nope.yml\n"),
        24,
        9,
        "images.web.playbooks[1]",
        ["playbooks/nope.yml", "not found"],
    ),
    (
        "playbook-outside-project",
        lambda t: t.replace("      - playbooks/web.yml\n", "      - playbooks/../playbooks/web.yml\n"),
        24,
        9,
        "images.web.playbooks[1]",
        ["must be a path inside"],
    ),
    (
        "group-unknown-image",
        lambda t: t.replace("    image: web\n    target: aws\n", "    image: wbe\n    target: aws\n"),
        31,
        5,
        "groups.web-eu.image",
        ["unknown image 'wbe'", "did you mean 'web'?"],
    ),
    (
        "group-unknown-target",
        lambda t: t.replace("    target: aws\n", "    target: asw\n"),
        32,
        5,
        "groups.web-eu.target",
        ["unknown target 'asw'", "did you mean 'aws'?"],
    ),
    (
        "group-unknown-channel",
        lambda t: t.replace("    channel: stable\n", "    channel: stabel\n"),
        33,
        5,
        "groups.web-eu.channel",
        ["unknown channel 'stabel'", "did you mean 'stable'?"],
    ),
    (
        "channel-promotes-from-itself",
        lambda t: t.replace("promote_from: testing", "promote_from: stable"),
        38,
        5,
        "channels.stable.promote_from",
        ["'promote_from' makes a cycle: stable -> stable"],
    ),
    (
        "channel-promotes-from-unknown",
        lambda t: t.replace("promote_from: testing", "promote_from: tesitng"),
        38,
        5,
        "channels.stable.promote_from",
        ["unknown channel 'tesitng'", "did you mean 'testing'?"],
    ),
    (
        "channel-soaks-without-promote-from",
        lambda t: t.replace("  testing: {}\n", "  testing: {soak: 24h}\n"),
        36,
        None,
        "channels.testing.soak",
        ["'soak' needs 'promote_from'"],
    ),
    (
        "channel-soak-not-a-duration",
        lambda t: t.replace("    promote_from: testing\n", "    promote_from: testing\n    soak: a day\n"),
        39,
        None,
        "channels.stable.soak",
        ["'a day' does not have the expected form"],
    ),
    (
        "channel-auto-with-approvals",
        lambda t: t.replace("  testing: {}\n", "  testing: {auto: true, approvals: 1}\n"),
        36,
        None,
        "channels.testing.auto",
        ["no approval can precede"],
    ),
    (
        "channel-tests-not-passed",
        lambda t: t.replace("    promote_from: testing\n", "    promote_from: testing\n    tests: green\n"),
        39,
        None,
        "channels.stable.tests",
        ["'passed'"],
    ),
    (
        "source-and-from",
        lambda t: t.replace(
            "groups:\n", '  child:\n    version: "1.0"\n    from: web\n    source:\n      local: {}\ngroups:\n'
        ),
        29,
        3,
        "images.child",
        ["'source' and 'from' exclude each other"],
    ),
    (
        "neither-source-nor-from",
        lambda t: t.replace("groups:\n", '  child:\n    version: "1.0"\ngroups:\n'),
        29,
        3,
        "images.child",
        ["needs a 'source'", "or 'from'"],
    ),
    (
        "aws-ami-and-filter",
        lambda t: t.replace(
            "        ami: ami-0123456789abcdef0\n",
            "        ami: ami-0123456789abcdef0\n        filter: {owners: ['136693071363'], name: debian-12-*}\n",
        ),
        17,
        7,
        "images.web.source.aws",
        ["exactly one of 'ami'", "'filter'"],
    ),
    (
        "gcp-family-without-project",
        lambda t: t.replace("        project: debian-cloud\n", ""),
        19,
        7,
        "images.web.source.gcp",
        ["'family' needs 'project'"],
    ),
    (
        "override-for-unknown-target",
        lambda t: t.replace("groups:\n", "    overrides:\n      lcoal: {vars: {a: 1}}\ngroups:\n"),
        30,
        7,
        "images.web.overrides.lcoal",
        ["unknown target 'lcoal'", "did you mean 'local'?"],
    ),
    (
        "tag-value-not-text",
        lambda t: t.replace("      team: platform\n", "      port: 80\n"),
        28,
        7,
        "images.web.tags.port",
        ["valid string"],
    ),
    (
        "size-not-a-size",
        lambda t: t.replace("    kind: local\n", "    kind: local\n    memory: lots\n"),
        4,
        5,
        "targets.local.memory",
        ["expected a size", "'lots'"],
    ),
    (
        "secret-not-an-env-name",
        lambda t: t.replace("      team: platform\n", "      team: platform\n    secrets: {token: not an env}\n"),
        29,
        15,
        "images.web.secrets.token",
        ["secret 'token' must name an environment variable, got 'not an env'"],
    ),
]


@pytest.mark.parametrize(("edit", "line", "col", "key", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_file_is_refused_with_location(project_dir, bakery_cli, valid_yaml, edit, line, col, key, fragments):
    stderr = refused(project_dir, bakery_cli, edit(valid_yaml))
    message = located(stderr, project_dir.config, line, col, key)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_yaml_syntax_error_names_line_and_column(project_dir, bakery_cli, valid_yaml):
    text = valid_yaml.replace("      page_title: Hello\n", "      page_title: [Hello\n")
    stderr = refused(project_dir, bakery_cli, text)
    # The flow sequence opened on line 26 meets the next key on line 27: PyYAML reports there.
    assert re.search(rf"{re.escape(str(project_dir.config))}:27:\d+: not valid YAML", stderr), stderr


def test_tab_indentation_is_a_yaml_error_at_its_line(project_dir, bakery_cli, valid_yaml):
    stderr = refused(project_dir, bakery_cli, valid_yaml.replace("    kind: local\n", "\tkind: local\n"))
    assert f"{project_dir.config}:3:1: not valid YAML" in stderr


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"], ids=["empty", "blank", "comment-only"])
def test_empty_file_is_refused(project_dir, bakery_cli, text):
    stderr = refused(project_dir, bakery_cli, text)
    assert f"{project_dir.config}:1:1:" in stderr
    assert "empty" in stderr


def test_top_level_list_is_refused(project_dir, bakery_cli):
    stderr = refused(project_dir, bakery_cli, "- web\n- aws\n")
    assert f"{project_dir.config}:1:1:" in stderr
    assert "mapping" in stderr


def test_duplicate_key_names_the_second_occurrence(project_dir, bakery_cli, valid_yaml):
    text = valid_yaml.replace('    version: "1.0"\n', '    version: "1.0"\n    version: "1.1"\n')
    stderr = refused(project_dir, bakery_cli, text)
    assert f"{project_dir.config}:15:5: images.web.version: key 'version' appears twice" in stderr


def test_duplicate_image_name_is_refused(project_dir, bakery_cli, valid_yaml):
    text = valid_yaml.replace("groups:\n", '  web:\n    version: "2.0"\n    from: web\ngroups:\n')
    stderr = refused(project_dir, bakery_cli, text)
    assert f"{project_dir.config}:29:3: images.web: key 'web' appears twice" in stderr


def test_cycle_is_reported_for_every_image_on_it(project_dir, bakery_cli, valid_yaml):
    text = valid_yaml.replace(
        "groups:\n", '  a:\n    version: "1.0"\n    from: b\n  b:\n    version: "1.0"\n    from: a\ngroups:\n'
    )
    stderr = refused(project_dir, bakery_cli, text)
    assert "(2 problems)" in stderr
    located(stderr, project_dir.config, 31, 5, "images.a.from")
    located(stderr, project_dir.config, 34, 5, "images.b.from")


def test_several_problems_are_all_listed_in_file_order(project_dir, bakery_cli, valid_yaml):
    text = valid_yaml.replace('version: "1.0"', "version: 1.0").replace(
        "    kind: local\n", "    kind: local\n    memroy: 1G\n"
    )
    stderr = refused(project_dir, bakery_cli, text)
    assert "(2 problems)" in stderr
    first = located(stderr, project_dir.config, 4, 5, "targets.local.memroy")
    second = located(stderr, project_dir.config, 15, 5, "images.web.version")
    assert stderr.index(first) < stderr.index(second)


def test_file_that_is_not_utf8_is_refused_at_the_byte(project_dir, bakery_cli):
    project_dir.config.write_bytes(b"\xff\xfe\x00not utf-8")
    result = bakery_cli("validate", "-f", project_dir.config)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"{project_dir.config}:1:1: byte 0xff is not UTF-8 text" in result.stderr


def test_missing_file_is_a_usage_error(project_dir, bakery_cli):
    result = bakery_cli("validate", "-f", project_dir.root / "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml: no such file" in result.stderr
    assert "--file" in result.stderr  # the hint says how to point at the file


def test_non_text_key_names_line_column_and_key_path(project_dir, bakery_cli, valid_yaml):
    # YAML 1.1 reads `on:` as the boolean true: a classic slip the message must locate fully.
    text = valid_yaml.replace("    kind: local\n", "    kind: local\n    on: true\n")
    stderr = refused(project_dir, bakery_cli, text)
    assert f"{project_dir.config}:4:5:" in stderr, stderr
    assert "targets.local" in stderr, stderr


def test_union_field_error_names_the_key_not_pydantic_internals(project_dir, bakery_cli, valid_yaml):
    text = valid_yaml.replace("    channel: stable\n", "    channel: stable\n    strategy: {batch_size: lots}\n")
    stderr = refused(project_dir, bakery_cli, text)
    located(stderr, project_dir.config, 34, None, "groups.web-eu.strategy.batch_size")
    assert "constrained-str" not in stderr and "batch_size.int" not in stderr, stderr
    assert "(1 problem)" in stderr, stderr


@pytest.mark.parametrize("batch", ["0", "-1", "'250%'"])
def test_group_batch_size_out_of_range_is_refused(project_dir, bakery_cli, valid_yaml, batch):
    text = valid_yaml.replace("    channel: stable\n", f"    channel: stable\n    strategy: {{batch_size: {batch}}}\n")
    stderr = refused(project_dir, bakery_cli, text)
    located(stderr, project_dir.config, None, None, "groups.web-eu.strategy.batch_size")


# --- the corpus: tests/unit/config/data/invalid/*.yaml---------------------------------------------
# Each file says in its first lines where it must be refused and what the message starts with:
#   # refused: LINE:COL
#   # says: KEY.PATH: message
#   # schema: rejects | accepts | unreadable   (what `bakery schema` makes of it, see test_schema.py)


def corpus(kind: str) -> list[Path]:
    return sorted((DATA / kind).glob("*.yaml"))


def header(path: Path) -> dict[str, str]:
    found = re.findall(r"^# (refused|says|schema): (.*)$", path.read_text(encoding="utf-8"), re.M)
    return dict(found)


@pytest.mark.parametrize("case", corpus("invalid"), ids=lambda p: p.stem)
def test_invalid_corpus_is_refused_at_the_line_of_the_problem(project_dir, bakery_cli, case):
    expect = header(case)
    stderr = refused(project_dir, bakery_cli, case.read_text(encoding="utf-8"))
    assert f"{project_dir.config}:{expect['refused']}: {expect['says']}" in stderr, stderr


def billion_laughs() -> str:
    """The classic alias bomb: about 800 bytes, ten levels of ten aliases, 10**9 strings expanded."""
    lines = ['lol0: &lol0 "lol"']
    lines += [f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


# (id, file content, line, col, what the message starts with)
TRICKS = [
    ("nul", b"targets:\n  local: {kind: lo\x00cal}\nimages: {}\n", 2, 19, "character U+0000 is not allowed"),
    ("escape", b"targets: {}\nimages: {}\n\x1b[31m\n", 3, 1, "character U+001B is not allowed"),
    ("latin-1", b"targets: {}\nimages: {}\nchannels:\n  stable: {description: caf\xe9}\n", 4, 28, "byte 0xe9"),
    ("deep-flow", b"x: " + b"[" * 10_000, 1, 67, "nesting deeper than 64 levels"),
    ("deep-block", "".join(" " * i + "a:\n" for i in range(100)).encode(), 64, 64, "nesting deeper than 64"),
    ("alias-bomb", billion_laughs().encode(), 6, 7, "aliases expand this value to more than"),
    ("huge-number", b"targets:\n  local: {kind: local, cpus: " + b"9" * 5000 + b"}\n", 2, 30, "targets.local.cpus: a"),
]


@pytest.mark.parametrize(("content", "line", "col", "says"), [t[1:] for t in TRICKS], ids=[t[0] for t in TRICKS])
def test_yaml_tricks_are_refused_at_their_line(project_dir, bakery_cli, content, line, col, says):
    project_dir.config.write_bytes(content)
    result = bakery_cli("validate", "-f", project_dir.config)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{project_dir.config}:{line}:{col}: {says}" in result.stderr, result.stderr
    assert project_dir.nothing_written()


@pytest.mark.parametrize(
    ("content", "line", "says"),
    [
        ((DATA / "invalid" / "tag-python-object.yaml").read_bytes(), 9, "YAML tag !!python/object/apply:os.system"),
        ((DATA / "invalid" / "ref-promote-cycle-of-two.yaml").read_bytes(), 10, "channels.stable.promote_from"),
        (billion_laughs().encode(), 6, "aliases expand"),
        (b"x: " + b"[" * 10_000, 1, "nesting deeper"),
        (b"targets: {}\nimages: {\x00}\n", 2, "character U+0000"),
    ],
    ids=["tag", "promote-cycle", "alias-bomb", "deep", "nul"],
)
def test_installed_script_refuses_without_traceback(project_dir, content, line, says):
    project_dir.config.write_bytes(content)
    run = subprocess.run(
        [str(BAKERY), "validate", "-f", str(project_dir.config)],
        capture_output=True,
        text=True,
        cwd=project_dir.root,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert re.search(rf"{re.escape(str(project_dir.config))}:{line}:\d+: {re.escape(says)}", run.stderr), run.stderr
    assert project_dir.nothing_written()


def test_a_cycle_is_named_in_the_order_its_references_run(project_dir, bakery_cli):
    text = (
        "targets: {}\nimages: {}\nchannels:\n"
        "  a: {promote_from: d}\n  b: {promote_from: a}\n  c: {promote_from: b}\n  d: {promote_from: c}\n"
        "  e: {promote_from: d}\n"  # leads into the cycle, is not on it
        "  x: {promote_from: y}\n  y: {promote_from: x}\n"  # a second cycle
    )
    stderr = refused(project_dir, bakery_cli, text)
    assert "(6 problems)" in stderr
    cycle = "'promote_from' makes a cycle: "
    assert cycle + "a -> d -> c -> b -> a" in located(stderr, project_dir.config, 4, 7, "channels.a.promote_from")
    assert cycle + "d -> c -> b -> a -> d" in located(stderr, project_dir.config, 7, 7, "channels.d.promote_from")
    assert cycle + "y -> x -> y" in located(stderr, project_dir.config, 10, 7, "channels.y.promote_from")
    assert "channels.e" not in stderr


# --- merge keys ----------------------------------------------------------------------------------


def test_merge_keys_merge_and_explicit_keys_win(project_dir):
    project_dir.write((DATA / "valid" / "merge-keys.yaml").read_text())
    cfg = project_dir.load().config
    local = cfg.targets["local"]
    assert (local.kind, local.memory, local.cpus) == ("local", 1024, 4)  # cpus: 4 beats the merged 2
    web, base = cfg.images["web"], cfg.images["base"]
    assert web.tags == {"team": "web", "cost": "shared"}  # <<: [*tags, *image]: the earlier mapping wins
    assert web.version == "1.0" and web.playbooks == ("playbooks/web.yml",)
    assert web.source is not None and web.source.local is not None
    assert web.source.local.mirror == "http://127.0.0.1:9/debian"
    assert (base.version, base.tags) == ("2.1", {"team": "platform"})


def test_an_error_in_a_merged_value_points_at_where_it_is_written(project_dir, bakery_cli):
    text = (DATA / "valid" / "merge-keys.yaml").read_text().replace("  memory: 1G\n", "  memory: lots\n")
    stderr = refused(project_dir, bakery_cli, text)
    # the value is written in the anchor (line 4); the key path says where it was merged into
    located(stderr, project_dir.config, 4, 3, "targets.local.memory")


def test_merged_keys_override_merged_keys_in_order(project_dir, bakery_cli):
    text = (
        "x-a: &a {kind: local, memory: 1G}\nx-b: &b {memory: 2G, cpus: 3}\n"
        "targets:\n  one: {<<: [*a, *b]}\n  two: {<<: [*b, *a]}\n  three: {<<: *b, kind: local, cpus: 1}\n"
        "images: {}\n"
    )
    project_dir.write(text)
    targets = project_dir.load().config.targets
    assert (targets["one"].memory, targets["one"].cpus) == (1024, 3)
    assert (targets["two"].memory, targets["two"].cpus) == (2048, 3)
    assert (targets["three"].memory, targets["three"].cpus) == (2048, 1)


# --- the mirror of a local recipe ----------------------------------------------------------------


def test_local_recipe_without_mirror_on_a_machine_without_one_asks_for_mirror(
    project_dir, bakery_cli, valid_yaml, machine_apt
):
    (machine_apt / "sources.list").write_text("# deb http://127.0.0.1:9/debian bookworm main\n")
    stderr = refused(project_dir, bakery_cli, valid_yaml)
    message = located(stderr, project_dir.config, 16, 7, "images.web.source.local")
    assert "no 'mirror:' here" in message and "add mirror: URL" in message
    assert "(1 problem)" in stderr


def test_local_recipe_with_its_own_mirror_needs_no_machine_mirror(project_dir, bakery_cli, valid_yaml, machine_apt):
    (machine_apt / "sources.list").unlink()
    project_dir.write(valid_yaml.replace("      local: {}\n", "      local: {mirror: file:///srv/mirror}\n"))
    result = bakery_cli("validate", "-f", project_dir.config)
    assert result.exit_code == 0, result.output


def test_local_recipe_no_local_target_uses_needs_no_mirror(project_dir, bakery_cli, valid_yaml, machine_apt):
    (machine_apt / "sources.list").unlink()
    project_dir.write(valid_yaml.replace("  local:\n    kind: local\n", ""))
    result = bakery_cli("validate", "-f", project_dir.config)
    assert result.exit_code == 0, result.output


# --- valid files ---------------------------------------------------------------------------------


def test_valid_file_passes(project_dir, bakery_cli):
    result = bakery_cli("validate", "-f", project_dir.config)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{project_dir.config}: valid (1 images, 3 targets, 1 groups, 2 channels)\n"
    assert project_dir.nothing_written()


def test_valid_file_as_json(project_dir, bakery_cli):
    result = bakery_cli("validate", "-f", project_dir.config, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == {
        "schema_version": 1,
        "kind": "validate",
        "file": str(project_dir.config),
        "valid": True,
        "images": ["web"],
        "targets": ["aws", "gcp", "local"],
        "groups": ["web-eu"],
        "channels": ["stable", "testing"],
    }


def test_invalid_file_as_json_lists_problems(project_dir, bakery_cli, valid_yaml):
    project_dir.write(valid_yaml.replace("    playbooks:\n", "    playbook:\n"))
    result = bakery_cli("validate", "-f", project_dir.config, "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    assert len(doc["problems"]) == 1
    assert doc["problems"][0].startswith(f"{project_dir.config}:22:5: images.web.playbook: unknown key")
    assert project_dir.nothing_written()


def test_validate_finds_images_yaml_in_the_current_directory(project_dir, bakery_cli):
    result = bakery_cli("validate")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{project_dir.config}: valid")


def test_validate_uses_bakery_config(project_dir, bakery_cli, monkeypatch, valid_yaml):
    other = project_dir.root / "other.yaml"
    other.write_text(valid_yaml.replace('version: "1.0"', 'version: "2.0"'))
    project_dir.config.unlink()
    monkeypatch.setenv("BAKERY_CONFIG", str(other))
    result = bakery_cli("validate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["file"] == str(other)


def test_schema_describes_images_and_targets(bakery_cli):
    result = bakery_cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"images", "targets"} <= set(schema["properties"])
    assert set(schema["required"]) == {"images", "targets"}


# --- the loaded Project ------------------------------------------------------------------------


def test_effective_merges_vars_and_tags_and_replaces_playbooks(project_dir, valid_yaml):
    project_dir.write(
        valid_yaml.replace(
            "groups:\n",
            (
                "    overrides:\n"
                "      aws:\n"
                "        playbooks: [playbooks/web.yml]\n"
                "        vars: {page_title: On AWS, extra: 1}\n"
                "        tags: {cost: web}\n"
                "groups:\n"
            ),
        )
    )
    project = project_dir.load()
    aws = project.effective("web", "aws")
    assert aws.playbooks == ("playbooks/web.yml",)
    assert aws.vars == {"page_title": "On AWS", "extra": 1}
    assert aws.tags == {"team": "platform", "cost": "web"}
    local = project.effective("web", "local")
    assert local.playbooks == ("playbooks/base.yml", "playbooks/web.yml")
    assert local.vars == {"page_title": "Hello"}
    assert local.kind == "local"


def test_effective_unknown_names_are_usage_errors(project_dir):
    project = project_dir.load()
    with pytest.raises(UsageError, match=r"unknown image 'wbe' \(did you mean 'web'\?\)") as exc:
        project.effective("wbe", "aws")
    assert exc.value.exit_code == 2
    with pytest.raises(UsageError, match=r"unknown target 'asw' \(did you mean 'aws'\?\)"):
        project.effective("web", "asw")


def test_targets_follow_the_root_source(project_dir, valid_yaml):
    project_dir.write(
        valid_yaml.replace(
            "groups:\n",
            '  app:\n    version: "1.0"\n    from: web\n'
            '  lone:\n    version: "1.0"\n    source:\n'
            "      local: {}\ngroups:\n",
        )
    )
    project = project_dir.load()
    assert project.targets_of("web") == ("local", "aws", "gcp")
    assert project.targets_of("app") == ("local", "aws", "gcp")
    assert project.targets_of("lone") == ("local",)
    assert project.lineage("app") == ("app", "web")
    assert project.order(["app"]) == ("web", "app")
    with pytest.raises(UsageError, match="does not bake on target 'aws'"):
        project.effective("lone", "aws")


def test_load_raises_config_error_with_problems(project_dir, valid_yaml):
    project_dir.write(valid_yaml.replace("kind: aws", "kind: azure"))
    with pytest.raises(ConfigError) as exc:
        project_dir.load()
    assert exc.value.exit_code == 2
    assert exc.value.problems == (
        f"{project_dir.config}:5:5: targets.aws.kind: 'kind' must be one of local, aws, gcp, got 'azure'",
    )


def test_order_puts_parents_first_and_is_stable(project_dir, valid_yaml):
    images = (
        '  zeta:\n    version: "1.0"\n    from: web\n'
        '  app:\n    version: "1.0"\n    from: zeta\n'
        '  alpha:\n    version: "1.0"\n    source:\n      local: {}\n'
    )
    project_dir.write(valid_yaml.replace("groups:\n", images + "groups:\n"))
    project = project_dir.load()
    assert project.order() == ("alpha", "web", "zeta", "app")
    assert project.order(["app"]) == ("web", "zeta", "app")
    assert project.lineage("app") == ("app", "zeta", "web")


# --- prune policy (bakery prune) --------------------------------------------------------------


def test_an_image_prune_policy_is_read_with_its_defaults(project_dir, valid_yaml):
    from bakery.config.load import load

    text = valid_yaml.replace(
        "    tags:\n      team: platform\n", "    tags:\n      team: platform\n    prune: {keep: 5}\n"
    )
    image = load(project_dir.write(text)).config.images["web"]
    assert (image.prune.keep, image.prune.older_than_days, image.prune.shared) == (5, 30, False)


@pytest.mark.parametrize(
    ("policy", "key", "says"),
    [
        ("{keep: 0}", "images.web.prune.keep", "greater than or equal to 1"),
        ("{older_than_days: -1}", "images.web.prune.older_than_days", "greater than or equal to 0"),
        ("{keep: '3'}", "images.web.prune.keep", "integer"),
        ("{shared: 'yes'}", "images.web.prune.shared", "boolean"),
        ("{keep_last: 3}", "images.web.prune.keep_last", "keep"),
    ],
)
def test_a_bad_prune_policy_is_refused_at_its_key(project_dir, bakery_cli, valid_yaml, policy, key, says):
    text = valid_yaml.replace(
        "    tags:\n      team: platform\n", f"    tags:\n      team: platform\n    prune: {policy}\n"
    )
    stderr = refused(project_dir, bakery_cli, text)
    assert says in located(stderr, project_dir.config, 29, None, key), stderr
