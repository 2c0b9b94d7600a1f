"""Text people and clouds read: control characters refused at input, escaped when printed, and
tag values kept to what EC2 takes; the CI identity only where the CI's own markers say so."""

from __future__ import annotations

import pytest

from bakery.core.identity import who
from bakery.core.text import clean, shown, tag_value
from bakery.errors import UsageError


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("bad build\nok revocation: not revoked", "a newline, U+000A"),
        ("colour \x1b[2J", "an escape, U+001B"),
        ("tab\there", "a tab, U+0009"),
        ("safe \u202egnp.exe", "RIGHT-TO-LEFT OVERRIDE, U+202E"),
        ("del\x7f", "a control character, U+007F"),
    ],
)
def test_a_reason_with_a_control_character_is_refused_naming_it(value: str, named: str) -> None:
    with pytest.raises(UsageError) as refused:
        clean(value, what="--reason")
    assert refused.value.exit_code == 2
    assert refused.value.message.startswith("--reason holds a control character (")
    assert named in refused.value.message


def test_plain_text_passes_unchanged() -> None:
    assert clean("CVE-2026-1234 in openssl: rebake (é ✓)", what="--reason") == "CVE-2026-1234 in openssl: rebake (é ✓)"


def test_text_read_back_is_printed_with_its_controls_escaped() -> None:
    assert shown("x\nok revocation: not revoked") == "x\\nok revocation: not revoked"
    assert shown("\x1b[31mred") == "\\x1b[31mred"
    assert "\n" not in shown("a\r\nb") and "\x1b" not in shown("\x1b")


def test_a_tag_value_keeps_only_what_ec2_takes_and_fits() -> None:
    assert tag_value("bad \x1b[2J build; rm -rf") == "bad __2J build_ rm -rf"
    assert tag_value("ok: a/b@c=d+e_f.g-h") == "ok: a/b@c=d+e_f.g-h"
    assert len(tag_value("x" * 400)) == 256


def test_the_ci_identity_needs_the_ci_s_own_markers() -> None:
    github = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "42", "GITHUB_ACTOR": "alice", "GITHUB_REPOSITORY": "o/r"}
    assert who(github) == "github:alice@o/r#42"
    forged = {"GITHUB_ACTIONS": "1", "GITHUB_ACTOR": "alice", "GITHUB_REPOSITORY": "o/r"}
    assert not who(forged).startswith("github:")
    assert not who({"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "alice"}).startswith("github:")  # no run id
    assert not who({"GITHUB_ACTOR": "alice"}).startswith("github:")
    assert who({"GITLAB_CI": "true", "CI_JOB_ID": "7", "GITLAB_USER_LOGIN": "bob", "CI_PROJECT_PATH": "g/p"}) == (
        "gitlab:bob@g/p#7"
    )


def test_an_identity_with_control_characters_is_escaped() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "1", "GITHUB_ACTOR": "eve\nroot", "GITHUB_REPOSITORY": "o/r"}
    assert who(env) == "github:eve\\nroot@o/r#1"
