"""Every command against a cloud endpoint that misbehaves: one line, exit 1, valid JSON with --json.

Loopback servers stand in for what sits between bakery and a cloud in real life: a proxy that
answers an HTML 500 page, an endpoint that accepts the connection and never answers, and one
that closes the connection at once. The commands run in-process (typer's runner) with a short
request timeout, so the hanging endpoint costs seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bakery.cli.app import app

runner = CliRunner()

_PAGE = b"<html><head><title>500 Internal Server Error</title></head><body><h1>Proxy error</h1></body></html>"
HTML_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nConnection: close\r\n"
    + f"Content-Length: {len(_PAGE)}\r\n\r\n".encode()
    + _PAGE
)


class BadEndpoint:
    """A loopback TCP server misbehaving in one way: 'html500', 'hang' or 'close'."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.server = threading.Thread(target=self._serve, daemon=True)
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "close":
                conn.close()
            elif self.mode == "hang":
                self.held.append(conn)  # read nothing, answer nothing
            else:
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(HTML_500)
            except OSError:
                pass

    def stop(self) -> None:
        # Wake the accept() first and close only once the thread is gone: a thread still blocked in accept() on a
        # closed descriptor would serve the next socket given that number (a later test's fake GCE, say).
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.server.join(timeout=10)
        assert not self.server.is_alive(), "the misbehaving endpoint did not stop"
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(params=["html500", "hang", "close"])
def bad(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[BadEndpoint]:
    endpoint = BadEndpoint(request.param)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
    monkeypatch.setenv("BAKERY_GCP_ENDPOINT", endpoint.url)
    monkeypatch.setenv("BAKERY_REQUEST_TIMEOUT", "1")
    yield endpoint
    endpoint.stop()


COMMANDS = [
    ("build", "web", "--target", "{target}"),
    ("plan", "--target", "{target}"),
    ("images", "--target", "{target}"),
    ("show", "web", "--target", "{target}"),
    ("render", "web", "--target", "{target}", "--out", "{out}"),
]


@pytest.mark.parametrize("target", ["aws", "gcp"])
@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_fails_in_one_line(
    project_dir: Path, bad: BadEndpoint, target: str, command: tuple[str, ...], tmp_path: Path
) -> None:
    args = [a.format(target=target, out=tmp_path / "out") for a in command]
    shown = runner.invoke(app, args)
    as_json = runner.invoke(app, [*args, "--json"])
    for result in (shown, as_json):
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and "<html" not in result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert errors[0].startswith(("error: AWS: ", "error: GCP: ", "error: target ")), errors[0]
        assert len(errors[0]) < 300
    # images and plan show what they could read and name the target they could not
    assert shown.stdout == "" or args[0] in ("images", "plan"), shown.stdout
    document: dict[str, Any] = json.loads(as_json.stdout)
    if args[0] == "images":
        assert document["images"] == [] and set(document["errors"]) == {target}
    elif args[0] == "plan":
        assert document["items"] == [] and set(document["errors"]) == {target}
        assert shown.stdout == f"nothing planned ({target} not read)\n"
        assert errors[0].startswith(f"error: target {target} could not be read: ")
    else:
        assert document["kind"] == "error" and document["exit_code"] == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_ctrl_c_stops_a_bake_waiting_on_an_endpoint_that_never_answers(project_dir: Path, target: str) -> None:
    """The installed script, a real SIGINT, while a request hangs: bakery stops without waiting for
    the request to time out (the timeout is set to 600 s here; the test gives it a minute: a bakery
    that waited on the request would still be waiting)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    hang = BadEndpoint("hang")
    env = {**os.environ, "AWS_ENDPOINT_URL": hang.url, "BAKERY_GCP_ENDPOINT": hang.url}
    env["BAKERY_REQUEST_TIMEOUT"] = "600"
    bake = subprocess.Popen(
        [str(Path(sys.executable).parent / "bakery"), "build", "web", "--target", target],
        cwd=project_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not hang.held and time.monotonic() < deadline:  # bakery is waiting on the endpoint
            time.sleep(0.1)
        assert hang.held, "bakery never reached the endpoint"
        time.sleep(1)
        bake.send_signal(signal.SIGINT)
        _out, err = bake.communicate(timeout=60)
    finally:
        if bake.poll() is None:
            bake.kill()
        hang.stop()
    assert bake.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
