"""HAProxy for local groups against the real HAProxy (Debian's): the configuration it accepts, servers
moved under a request loop, and the front ports it cannot bind. The pure parts are in
tests/unit/groups/local/test_haproxy.py."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from bakery import runner
from bakery.config.models import Health
from bakery.errors import ProviderError
from bakery.groups.local import haproxy
from bakery.groups.local.haproxy import Runtime, Server
from bakery.providers.local.boot import free_port
from tests.fakes.http_stand_in import serve

HEALTH = Health(path="/healthz", port=80, interval_seconds=2, healthy_threshold=3)


def test_config_is_accepted_by_haproxy(tmp_path: Path) -> None:

    config = tmp_path / "haproxy.cfg"
    odd = Health(path="/health#z?a='b'")
    config.write_text(
        haproxy.render_config(group="g", front_port=9000, stats_port=9001, health=odd, servers=[Server("g-1", 9002)])
    )
    assert runner.run(haproxy.check_argv(config), what="haproxy -c").returncode == 0


def backend(name: str) -> tuple[ThreadingHTTPServer, int]:
    httpd = serve(lambda _path: (200, name))
    return httpd, httpd.server_address[1]


def test_real_haproxy_moves_servers_without_a_failed_request(tmp_path: Path) -> None:
    one, one_port = backend("one")
    two, two_port = backend("two")
    front, stats = free_port(), free_port()
    config = tmp_path / "haproxy.cfg"
    health = Health(path="/healthz", interval_seconds=1, healthy_threshold=1)
    config.write_text(
        haproxy.render_config(
            group="t", front_port=front, stats_port=stats, health=health, servers=[Server("t-1", one_port)]
        )
    )
    runtime = Runtime(stats, "t")
    process = haproxy.start(config, tmp_path / "haproxy.log", runtime, front_port=front)
    served: list[str] = []
    failed: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{front}/", timeout=10) as answer:
                    served.append(answer.read().decode())
            except OSError as exc:
                failed.append(repr(exc))

    requests = threading.Thread(target=loop)
    requests.start()
    try:
        runtime.add(Server("t-2", two_port), health)
        runtime.remove("t-1")
        one.shutdown()  # as a VM is stopped once it left HAProxy
        after = len(served)
        while len(served) < after + 20 and requests.is_alive():
            time.sleep(0.01)
    finally:
        stop.set()
        requests.join()
        process.stop()
        two.shutdown()
    assert failed == []
    assert "one" in served
    assert set(served[after:]) == {"two"}


def test_a_taken_front_port_is_reported(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        front = taken.getsockname()[1]
        config = tmp_path / "haproxy.cfg"
        stats = free_port()
        config.write_text(
            haproxy.render_config(group="g", front_port=front, stats_port=stats, health=HEALTH, servers=[])
        )
        with pytest.raises(ProviderError) as failed:
            haproxy.start(config, tmp_path / "haproxy.log", Runtime(stats, "g"), front_port=front)
    assert failed.value.message.startswith("HAProxy of group g did not start: ")
    assert f"127.0.0.1:{front}" in failed.value.message  # HAProxy's own words: it cannot bind there
    assert failed.value.hint is not None and "change the group's local.port" in failed.value.hint


def test_a_second_haproxy_on_the_same_front_port_fails_to_bind(tmp_path: Path) -> None:
    front = free_port()
    configs = []
    for name in ("first", "second"):
        stats = free_port()
        config = tmp_path / f"{name}.cfg"
        config.write_text(
            haproxy.render_config(group=name, front_port=front, stats_port=stats, health=HEALTH, servers=[])
        )
        configs.append((config, Runtime(stats, name)))
    (first_config, first_runtime), (second_config, second_runtime) = configs
    first = haproxy.start(first_config, tmp_path / "first.log", first_runtime, front_port=front)
    try:
        with pytest.raises(ProviderError) as failed:
            haproxy.start(second_config, tmp_path / "second.log", second_runtime, front_port=front)
    finally:
        first.stop()
    assert "Address already in use" in failed.value.message
