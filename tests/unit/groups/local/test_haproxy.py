"""HAProxy for local groups (bakery/groups/local/haproxy.py): the configuration and the runtime
commands by equality, and the runtime client against a scripted stats socket. The real HAProxy
(Debian's) is in tests/integration/test_haproxy.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bakery import runner
from bakery.config.models import Health
from bakery.errors import Interrupted, ProviderError
from bakery.groups.local import haproxy
from bakery.groups.local.haproxy import Runtime, Server, ServerStat
from bakery.providers.local.boot import free_port

HEALTH = Health(path="/healthz", port=80, interval_seconds=2, healthy_threshold=3)


def test_config() -> None:
    text = haproxy.render_config(
        group="web-local",
        front_port=8080,
        stats_port=40999,
        health=HEALTH,
        servers=[Server("web-local-1", 40001), Server("web-local-2", 40002)],
    )
    assert text == (
        "# Written by bakery for the local group web-local; rewritten on every change.\n"
        "global\n"
        "    maxconn 1024\n"
        "    noreuseport\n"
        "    stats socket ipv4@127.0.0.1:40999 level admin\n"
        "\n"
        "defaults\n"
        "    mode http\n"
        "    timeout connect 3s\n"
        "    timeout client 30s\n"
        "    timeout server 30s\n"
        "    timeout queue 10s\n"
        "    timeout check 3s\n"
        "    retries 3\n"
        "    option redispatch 1\n"
        "    option http-server-close\n"
        "\n"
        "frontend front\n"
        "    bind 127.0.0.1:8080\n"
        "    default_backend members\n"
        "\n"
        "backend members\n"
        "    balance roundrobin\n"
        "    option httpchk GET /healthz\n"
        "    http-check expect status 200\n"
        "    server web-local-1 127.0.0.1:40001 check inter 2s fall 3 rise 3\n"
        "    server web-local-2 127.0.0.1:40002 check inter 2s fall 3 rise 3\n"
    )


def test_config_escapes_what_haproxy_would_read_as_syntax() -> None:
    odd = Health(path="/health#z?a='b'&c=\"d\"\\")
    text = haproxy.render_config(group="g", front_port=9000, stats_port=9001, health=odd, servers=[])
    assert "    option httpchk GET /health\\#z?a=\\'b\\'&c=\\\"d\\\"\\\\\n" in text


def test_commands() -> None:
    assert haproxy.add_server(Server("web-local-3", 40003), HEALTH) == (
        "add server members/web-local-3 127.0.0.1:40003 check inter 2s fall 3 rise 3"
    )
    assert haproxy.enable_health("web-local-3") == "enable health members/web-local-3"
    assert haproxy.enable_server("web-local-3") == "enable server members/web-local-3"
    assert haproxy.set_state("web-local-3", "drain") == "set server members/web-local-3 state drain"
    assert haproxy.del_server("web-local-3") == "del server members/web-local-3"
    assert haproxy.haproxy_argv(Path("/g/haproxy.cfg")) == ["haproxy", "-f", "/g/haproxy.cfg", "-db"]
    assert haproxy.check_argv(Path("/g/haproxy.cfg")) == ["haproxy", "-c", "-q", "-f", "/g/haproxy.cfg"]


STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n"
    "front,FRONTEND,,,3,5,1024,9,0,0,0,0,0,,,,,OPEN,\n"
    "members,web-local-1,0,0,2,4,,7,0,0,,0,,0,0,0,0,UP,1\n"
    "members,web-local-2,0,0,0,1,,2,0,0,,0,,0,0,0,0,DRAIN,1\n"
    "members,BACKEND,0,0,2,4,103,9,0,0,0,0,,0,0,0,0,UP,1\n"
)


def test_parse_stat() -> None:
    assert haproxy.parse_stat(STAT) == {
        "web-local-1": ServerStat("web-local-1", "UP", 2),
        "web-local-2": ServerStat("web-local-2", "DRAIN", 0),
    }


class ScriptedSocket:
    """A stats socket that records each command and answers from a script."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.commands: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                command = conn.recv(4096).decode().strip()
                self.commands.append(command)
                verb = " ".join(command.split()[:2])
                queue = self.answers.get(verb, [""])
                conn.sendall((queue.pop(0) if len(queue) > 1 else queue[0]).encode())

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[type[ScriptedSocket]]:
    made: list[ScriptedSocket] = []

    def make(answers: dict[str, list[str]]) -> ScriptedSocket:
        made.append(ScriptedSocket(answers))
        return made[-1]

    yield make  # type: ignore[misc]
    for s in made:
        s.close()


def stat_with(*rows: str) -> str:
    return "# pxname,svname,scur,status\n" + "".join(f"members,{r}\n" for r in rows)


def test_add_a_new_server(scripted: type[ScriptedSocket]) -> None:
    sock = scripted({"show stat": [stat_with()], "add server": ["New server registered.\n"]})
    Runtime(sock.port, "g").add(Server("g-3", 40003), HEALTH)
    assert sock.commands == [
        "show stat",
        "add server members/g-3 127.0.0.1:40003 check inter 2s fall 3 rise 3",
        "enable health members/g-3",
        "enable server members/g-3",
    ]


def test_add_a_server_haproxy_has_puts_it_back_in_rotation(scripted: type[ScriptedSocket]) -> None:
    sock = scripted({"show stat": [stat_with("g-3,0,DRAIN")]})
    Runtime(sock.port, "g").add(Server("g-3", 40003), HEALTH)
    assert sock.commands == [
        "show stat",
        "set server members/g-3 state ready",
        "enable health members/g-3",  # a process killed after `add server` left its checks off
        "enable server members/g-3",
    ]


def test_remove_drains_until_no_session_is_left(scripted: type[ScriptedSocket]) -> None:
    sock = scripted(
        {
            "show stat": [stat_with("g-1,2,UP"), stat_with("g-1,1,DRAIN"), stat_with("g-1,0,DRAIN")],
            "del server": ["Server deleted.\n"],
        }
    )
    Runtime(sock.port, "g").remove("g-1")
    assert sock.commands == [
        "show stat",
        "set server members/g-1 state drain",
        "show stat",
        "show stat",
        "set server members/g-1 state maint",
        "del server members/g-1",
    ]


def test_remove_in_a_cleanup_drains_through_an_interrupt(
    scripted: type[ScriptedSocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(what: str) -> None:
        raise Interrupted(f"{what}: interrupted by signal SIGINT")

    monkeypatch.setattr(runner, "check_interrupted", interrupted)
    answers = {"show stat": [stat_with("g-1,1,UP"), stat_with("g-1,1,DRAIN"), stat_with("g-1,0,DRAIN")]}
    with pytest.raises(Interrupted):
        Runtime(scripted(answers).port, "g").remove("g-1")
    sock = scripted({**answers, "del server": ["Server deleted.\n"]})
    Runtime(sock.port, "g").remove("g-1", interruptible=False)
    assert sock.commands[-2:] == ["set server members/g-1 state maint", "del server members/g-1"]


def test_remove_a_server_haproxy_does_not_have(scripted: type[ScriptedSocket]) -> None:
    sock = scripted({"show stat": [stat_with("g-2,0,UP")]})
    Runtime(sock.port, "g").remove("g-1")
    assert sock.commands == ["show stat"]


def test_a_refusal_is_reported_with_the_command(scripted: type[ScriptedSocket]) -> None:
    sock = scripted({"show stat": [stat_with()], "add server": ["Already exists a server with the same name.\n"]})
    with pytest.raises(ProviderError) as refused:
        Runtime(sock.port, "web-local").add(Server("g-3", 40003), HEALTH)
    assert refused.value.message == (
        "HAProxy of group web-local refused `add server members/g-3 127.0.0.1:40003 check inter 2s fall 3 rise 3`: "
        "Already exists a server with the same name."
    )


def test_an_unreachable_runtime_api() -> None:
    port = free_port()
    with pytest.raises(ProviderError) as failed:
        Runtime(port, "web-local").send("show info")
    assert f"the HAProxy of group web-local does not answer on 127.0.0.1:{port}" in failed.value.message
    assert failed.value.hint == "`bakery rollout web-local` starts it again"
