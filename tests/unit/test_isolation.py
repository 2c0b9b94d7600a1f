"""The unit tier's fences, checked from inside it: sockets reach loopback and Unix sockets only
(pytest-socket, pyproject's addopts), and no program but Python starts (tests/unit/conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pytest_socket import SocketConnectBlockedError

from tests.unit.conftest import runs_python


@pytest.mark.filterwarnings("ignore:A test tried to use socket.socket.connect")  # pytest-socket says so too
@pytest.mark.parametrize("address", [("192.0.2.1", 80), ("10.255.255.1", 443)])  # TEST-NET-1, a private one
def test_an_address_off_this_machine_is_refused_before_a_packet_leaves(address: tuple[str, int]) -> None:
    with pytest.raises(SocketConnectBlockedError), socket.socket() as sock:
        sock.connect(address)


def test_loopback_and_unix_sockets_are_allowed(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname(), timeout=5):
        pass
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()
        accepting = threading.Thread(target=lambda: listener.accept()[0].close(), daemon=True)
        accepting.start()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
        accepting.join(timeout=5)


def test_only_python_programs_count_as_python(tmp_path: Path) -> None:
    path = os.environ["PATH"]
    assert runs_python(sys.executable, path)
    assert runs_python("git", path)  # the stand-in this conftest puts first on PATH
    assert runs_python("no-such-tool-9f2c", path)  # nothing starts: the caller sees FileNotFoundError
    shell = tmp_path / "tool"
    shell.write_text("#!/bin/sh\necho hi\n")
    shell.chmod(0o755)
    assert not runs_python(str(shell), path)
    if shutil.which("sh"):
        assert not runs_python("sh", path)


def test_starting_another_program_fails_the_test(tmp_path: Path) -> None:
    shell = tmp_path / "tool"
    shell.write_text("#!/bin/sh\necho hi\n")
    shell.chmod(0o755)
    with pytest.raises(pytest.fail.Exception, match=f"started {shell} "):
        subprocess.run([str(shell)], check=False)
    assert subprocess.run([sys.executable, "-c", "print('hi')"], capture_output=True, text=True).stdout == "hi\n"
