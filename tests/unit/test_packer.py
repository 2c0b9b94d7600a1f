"""Packer argv by equality, and parsing of `-machine-readable` output."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery import packer
from bakery.packer import Event


def test_build_argv():
    assert packer.build_argv(Path("/w/packer")) == [
        "packer",
        "build",
        "-machine-readable",
        "-color=false",
        "-on-error=cleanup",
        "/w/packer",
    ]


def test_build_argv_force():
    assert packer.build_argv(Path("/w/packer"), force=True) == [
        "packer",
        "build",
        "-machine-readable",
        "-color=false",
        "-on-error=cleanup",
        "-force",
        "/w/packer",
    ]


def test_validate_and_version_argv():
    assert packer.validate_argv(Path("/w/packer")) == ["packer", "validate", "/w/packer"]
    assert packer.version_argv() == ["packer", "version"]


def test_directory_with_spaces_is_one_argument():
    assert packer.build_argv(Path("/w/my build"))[-1] == "/w/my build"


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (
            "1700000000,,ui,say,==> amazon-ebs.image: Prevalidating AMI Name...",
            Event("1700000000", "", "ui", ("say", "==> amazon-ebs.image: Prevalidating AMI Name...")),
        ),
        (
            "1700000001,amazon-ebs.image,ui,message,    amazon-ebs.image: Found Image ID%!(PACKER_COMMA) ami-0abc",
            Event(
                "1700000001", "amazon-ebs.image", "ui", ("message", "    amazon-ebs.image: Found Image ID, ami-0abc")
            ),
        ),
        (
            "1700000002,,ui,error,Build 'x' errored:\\nline two\\r\\nline three",
            Event("1700000002", "", "ui", ("error", "Build 'x' errored:\nline two\r\nline three")),
        ),
        (
            "1700000003,amazon-ebs.image,artifact-count,1",
            Event("1700000003", "amazon-ebs.image", "artifact-count", ("1",)),
        ),
        ("1700000004,,version,1.11.2", Event("1700000004", "", "version", ("1.11.2",))),
        (
            "1700000005,,ui,say,a%!(PACKER_COMMA)b%!(PACKER_COMMA)%!(PACKER_COMMA)c",
            Event("1700000005", "", "ui", ("say", "a,b,,c")),
        ),
        ("1700000006,,ui,say,", Event("1700000006", "", "ui", ("say", ""))),
    ],
)
def test_parse_line(line, event):
    assert packer.parse_line(line) == event


@pytest.mark.parametrize(
    "line",
    [
        "",
        "==> Some builds didn't complete successfully",
        "Build 'x' finished after 3 seconds.",
        "abc,,ui,say,hello",
        "1700000000,only-two",
    ],
)
def test_parse_line_ignores_plain_lines(line):
    assert packer.parse_line(line) is None


def test_ui_text():
    assert packer.ui_text(Event("1", "", "ui", ("say", "hello, world"))) == "hello, world"
    assert packer.ui_text(Event("1", "", "artifact", ("0", "id", "x"))) is None
    assert packer.ui_text(Event("1", "", "ui", ("say",))) is None


def test_artifact_ids_from_a_build():
    lines = [
        "1700000000,,ui,say,==> Builds finished. The artifacts of successful builds are:",
        "1700000001,amazon-ebs.image,artifact-count,1",
        "1700000002,amazon-ebs.image,artifact,0,builder-id,mitchellh.amazonebs",
        "1700000003,amazon-ebs.image,artifact,0,id,eu-west-1:ami-0abc%!(PACKER_COMMA)eu-central-1:ami-0def",
        "1700000004,amazon-ebs.image,artifact,0,string,AMIs were created:\\neu-west-1: ami-0abc\\n",
        "1700000005,amazon-ebs.image,artifact,0,files-count,0",
        "1700000006,amazon-ebs.image,artifact,0,end",
        "1700000007,qemu.image,artifact,0,id,/w/output/disk.qcow2",
        "not machine readable",
    ]
    events = [e for e in map(packer.parse_line, lines) if e is not None]
    assert len(events) == 8
    assert packer.artifact_ids(events) == ["eu-west-1:ami-0abc,eu-central-1:ami-0def", "/w/output/disk.qcow2"]


def test_artifact_ids_of_a_build_without_artifacts():
    assert packer.artifact_ids([Event("1", "", "ui", ("say", "id"))]) == []


def test_runner_masks_secrets_in_every_form() -> None:
    import json

    from bakery.runner import mask

    pem = "-----BEGIN KEY-----\nMIIBVgIBADANBgkqhkiG9w0B\n-----END KEY-----"
    quoted = 'a"b\\c'
    line_of_log = "raw " + pem + " as json " + json.dumps({"k": pem, "q": quoted}) + " plain " + quoted
    masked = mask(line_of_log, [pem, quoted])
    assert "MIIBVgIBADANBgkqhkiG9w0B" not in masked
    assert quoted not in masked and json.dumps(quoted)[1:-1] not in masked
    assert masked.startswith("raw ********")
