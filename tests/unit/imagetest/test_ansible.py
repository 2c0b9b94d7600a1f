"""Results per task and host from ansible-runner's events (event dicts as its callback records
them), and the inventory and environment a test playbook runs with."""

from __future__ import annotations

from pathlib import Path

from bakery.imagetest.ansible import Failure, Tally, added_env, inventory, message_of
from bakery.imagetest.base import Reach


def event(kind: str, task: str, host: str = "bakery-test-web-1", **data: object) -> dict[str, object]:
    return {
        "event": kind,
        "uuid": "0242ac11-0002-443b-cdb1-000000000008",
        "counter": 7,
        "stdout": "",
        "event_data": {"playbook": "web.yml", "task": task, "host": host, "remote_addr": "127.0.0.1", **data},
    }


RECORDED = [
    {"event": "playbook_on_start", "event_data": {"playbook": "web.yml"}},
    event("playbook_on_task_start", "nginx runs"),
    event("runner_on_ok", "nginx runs", res={"changed": False, "stdout": "active", "rc": 0}),
    event("runner_on_skipped", "Only on arm"),
    event("runner_on_failed", "Ignored", ignore_errors=True, res={"msg": "ignored"}),
    event(
        "runner_on_failed",
        "The page names this image and version",
        res={"msg": "Status code was 500 and not [200]: HTTP Error 500", "status": 500},
    ),
    event("runner_on_unreachable", "Gathering Facts", host="other", res={"msg": "Connection timed out\x1b[31m"}),
    {"event": "playbook_on_stats", "event_data": {"failures": {"bakery-test-web-1": 1}, "dark": {"other": 1}}},
    {"event": "verbose", "stdout": "a line"},
]


def test_events_give_results_per_task_and_host() -> None:
    tally = Tally("playbooks/tests/web.yml")
    for recorded in RECORDED:
        assert tally(recorded) is True  # ansible-runner keeps every event in the artifacts
    result = tally.result(2)
    assert result.passed == ("playbooks/tests/web.yml: nginx runs [bakery-test-web-1]",)
    assert result.failures == (
        Failure(
            "bakery-test-web-1",
            "The page names this image and version",
            "Status code was 500 and not [200]: HTTP Error 500",
        ),
        Failure("other", "Gathering Facts", "unreachable: Connection timed out [31m"),
    )
    assert not result.ok
    assert result.failed_tests() == [
        "playbooks/tests/web.yml: The page names this image and version [bakery-test-web-1]: "
        "Status code was 500 and not [200]: HTTP Error 500",
        "playbooks/tests/web.yml: Gathering Facts [other]: unreachable: Connection timed out [31m",
    ]
    assert str(result.failures[0]) == (
        "bakery-test-web-1: task 'The page names this image and version' failed: "
        "Status code was 500 and not [200]: HTTP Error 500"
    )


def test_a_playbook_that_exits_before_any_task_fails_is_a_failure() -> None:
    result = Tally("playbooks/tests/web.yml").result(4)  # a syntax error: no task event at all
    assert not result.ok
    assert result.failed_tests() == ["playbooks/tests/web.yml: ansible-playbook exited 4 before any task failed"]


def test_a_failed_command_says_its_stderr_and_rc_on_one_bounded_line() -> None:
    said = message_of({"msg": "non-zero return code", "stderr": "line one\nline two", "rc": 3})
    assert said == "non-zero return code | line one line two | rc=3"
    assert len(message_of({"msg": "x" * 5000})) == 400
    assert message_of({}) == "no message"


def test_inventory_reaches_the_instance_with_the_tests_key(tmp_path: Path) -> None:
    reach = Reach("203.0.113.7", 2222, "admin")
    hosts = inventory("bakery-test-web-1", reach, tmp_path / "id_ed25519", tmp_path / "known_hosts")
    host = hosts["all"]["hosts"]["bakery-test-web-1"]
    assert host["ansible_host"] == "203.0.113.7" and host["ansible_port"] == 2222
    assert host["ansible_user"] == "admin" and host["ansible_become"] is True
    assert host["ansible_ssh_private_key_file"] == str(tmp_path / "id_ed25519")
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in host["ansible_ssh_common_args"]
    local = inventory("x", Reach("127.0.0.1", local=True, python="/usr/bin/python3"), tmp_path, tmp_path)
    assert local["all"]["hosts"]["x"] == {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
    }


def test_only_what_ansible_runner_added_reaches_ansible_playbook() -> None:
    base = {"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "HOME": "/root"}
    prepared = {**base, "ANSIBLE_STDOUT_CALLBACK": "awx_display", "PATH": "/bin"}
    assert added_env(prepared, base) == {"ANSIBLE_STDOUT_CALLBACK": "awx_display"}
