"""HTTP checks judged from what the instance answered, the test's key, and the local VM's kernel
command line that hands it over."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from bakery.config.imagetests import HttpCheck
from bakery.imagetest.base import Reach, TestKey
from bakery.imagetest.http import Answer, judge, run_check, url_of, wait_for_ssh
from bakery.imagetest.local import kernel_cmdline


def test_judge_names_status_and_body() -> None:
    check = HttpCheck(path="/healthz", port=80, status=200, body="^ok web")
    assert judge(check, Answer(200, "ok web 1.0.3\n")).ok
    assert judge(check, Answer(500, "broken\n")).detail == "answered 500 (expected 200): 'broken'"
    assert judge(check, Answer(200, "fine")).detail == "answered 200, but the body does not match '^ok web': 'fine'"
    assert judge(HttpCheck(path="/gone", status=404), Answer(404, "")).ok


def test_a_check_waits_while_nothing_answers_then_judges_the_first_answer() -> None:
    answers = iter([OSError("refused"), OSError("reset"), Answer(500, "x"), Answer(200, "ok")])
    seen: list[str] = []

    def get(url: str) -> Answer:
        seen.append(url)
        found = next(answers)
        if isinstance(found, Exception):
            raise found
        return found

    import bakery.imagetest.http as http

    http.POLL_SECONDS, saved = 0.0, http.POLL_SECONDS
    try:
        result = run_check(
            HttpCheck(path="/x"), Reach("10.0.0.5", ports={80: 8080}), float("inf"), alive=lambda: True, get=get
        )
    finally:
        http.POLL_SECONDS = saved
    assert not result.ok and result.detail.startswith("answered 500")
    assert seen == ["http://10.0.0.5:8080/x"] * 3


def test_ssh_wait_gives_up_when_the_instance_stops() -> None:
    said = wait_for_ssh(Reach("127.0.0.1", 2222), float("inf"), alive=lambda: False, answers=lambda h, p: False)
    assert said == "the instance stopped before SSH answered on 127.0.0.1:2222"
    assert wait_for_ssh(Reach("127.0.0.1", 2222), 0.0, alive=lambda: True, answers=lambda h, p: True) is None


def test_urls_of_ipv6_instances_are_bracketed() -> None:
    assert url_of(Reach("2001:db8::1"), HttpCheck(path="/")) == "http://[2001:db8::1]:80/"


def test_the_tests_key_is_private_to_its_run(tmp_path: Path) -> None:
    key = TestKey.make(tmp_path, "bakery-test-1a2b")
    assert key.public.startswith("ssh-ed25519 ") and key.public.endswith(" bakery-test-1a2b")
    assert stat.S_IMODE(os.stat(key.private_file).st_mode) == 0o600
    assert key.private_file.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    other = TestKey.make(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, "b")
    assert other.public.split()[1] != key.public.split()[1]


def test_the_vm_gets_the_key_on_its_kernel_command_line() -> None:
    line = kernel_cmdline("root=/dev/vda quiet", "ssh-ed25519 AAAA bakery-test-1")
    base, token = line.split(" bakery.ssh_key=")
    assert base == "root=/dev/vda quiet" and " " not in token
    assert base64.b64decode(token) == b"ssh-ed25519 AAAA bakery-test-1\n"
