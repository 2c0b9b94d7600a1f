"""`tests:` in images.yaml: the target's defaults, the image's own and its override for a target,
laid in that order; every refusal names file:line and the key path, exit 2."""

from __future__ import annotations

from bakery.config.imagetests import DEFAULT_BOOT_DEADLINE, HttpCheck

WITH_TESTS = """\
targets:
  local:
    kind: local
    tests:
      boot_deadline: 600
      http:
        - {path: /healthz}
  aws:
    kind: aws
    region: eu-west-1
images:
  web:
    version: "1.0"
    source:
      local: {}
      aws: {ami: ami-0123456789abcdef0}
    playbooks: [playbooks/base.yml]
    tests:
      playbooks: [playbooks/web.yml]
    overrides:
      aws:
        tests:
          http:
            - {path: /, port: 8080, status: 200, body: "Hello.*world"}
"""


def test_layers_apply_target_then_image_then_override(project_dir) -> None:
    project_dir.write(WITH_TESTS)
    project = project_dir.load()
    local = project.effective("web", "local").tests
    assert local.boot_deadline == 600  # the target's
    assert local.playbooks == ("playbooks/web.yml",)  # the image's
    assert local.http == (HttpCheck(path="/healthz"),)  # the target's
    aws = project.effective("web", "aws").tests
    assert aws.boot_deadline == DEFAULT_BOOT_DEADLINE
    assert aws.playbooks == ("playbooks/web.yml",)
    assert [c.name for c in aws.http] == ["GET / on port 8080 answers 200 matching Hello.*world"]
    assert aws.guest_ports() == (8080,)


def test_an_image_without_tests_has_none(project_dir) -> None:
    project = project_dir.load()  # VALID_YAML declares no tests
    assert project.effective("web", "local").tests.empty


def test_tests_stay_out_of_the_bake_key(project_dir) -> None:
    from bakery.bake.inputs import resolved_entry

    project = project_dir.load()
    before = resolved_entry(project, project.effective("web", "local"))
    project_dir.write(WITH_TESTS.replace("    tests:\n      boot_deadline: 600\n", "    tests:\n"))
    after = project_dir.load()
    entry = resolved_entry(after, after.effective("web", "local"))
    assert "tests" not in entry["entry"] and "tests" not in entry["target"]
    assert before["target"] == entry["target"]


def test_missing_test_playbook_is_named_with_its_line(project_dir, bakery_cli) -> None:
    path = project_dir.write(WITH_TESTS.replace("playbooks: [playbooks/web.yml]", "playbooks: [tests/nope.yml]"))
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 2
    assert f"{path}:19:19: images.web.tests.playbooks[0]" in result.stderr
    assert "images.web.tests.playbooks[0]: playbook 'tests/nope.yml' not found" in result.stderr


def test_playbook_outside_the_project_is_refused(project_dir, bakery_cli) -> None:
    path = project_dir.write(WITH_TESTS.replace("playbooks: [playbooks/web.yml]", "playbooks: [../web.yml]"))
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 2
    assert "images.web.tests.playbooks[0]: playbook '../web.yml' must be a path inside" in result.stderr


def test_bad_check_values_are_refused_where_written(project_dir, bakery_cli) -> None:
    text = WITH_TESTS.replace('body: "Hello.*world"', 'body: "Hello(("').replace("{path: /healthz}", "{path: healthz}")
    path = project_dir.write(text.replace("boot_deadline: 600", "boot_deadline: 5"))
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 2, result.output
    assert f"{path}:5:" in result.stderr and "targets.local.tests.boot_deadline" in result.stderr
    assert "targets.local.tests.http[0].path" in result.stderr
    assert "images.web.overrides.aws.tests.http[0].body: 'body' is not a regular expression" in result.stderr


def test_unknown_key_in_a_check_suggests_the_right_one(project_dir, bakery_cli) -> None:
    path = project_dir.write(WITH_TESTS.replace("{path: /healthz}", "{path: /healthz, staus: 200}"))
    result = bakery_cli("validate", "-f", path)
    assert result.exit_code == 2
    assert "targets.local.tests.http[0].staus: unknown key 'staus' (did you mean 'status'?)" in result.stderr
