"""moto's server, with AMIs EBS-backed as on AWS, and AWS's slowness and faults on demand.

moto registers every AMI it creates (create_image, copy_image) with root device type 'standard';
Packer's amazon-ebs refuses such an AMI as a source. On AWS an AMI made from an EBS volume is
'ebs', so this runs moto's own server with that one default changed, and seeds the Debian-like
source AMIs the tests filter for (MOTO_AMIS_PATH must be set before moto is imported).

moto makes every AMI available at once; on AWS an AMI, and a regional copy even more, stays
`pending` for minutes, which is where a Ctrl-C lands most often. `set_faults(endpoint, ...)`
makes new AMIs pending for a while (`pending_seconds={"create": 30, "copy": 30}`) and delays
chosen API actions (`delays=[{"action": "CreateTags", "agent": "Boto3", "seconds": 30}]`, the
agent matched against the User-Agent: Packer's are aws-sdk-go, bakery's Boto3). A delay with
`"barrier": N` holds each matching request until N of them wait together (or `seconds` pass), then
lets them all through: two bakes' CreateImage calls then land together however loaded the machine.

Auto Scaling instance refresh, which moto lacks, comes from tests/fakes/instance_refresh.py; its
durations and faults are set here too (`refresh={"batch_seconds": 0.2, "fail_at_checkpoint": ...}`),
as is throttling (`throttle=[{"action": "DescribeInstanceRefreshes", "every": 2}]`: every 2nd call
of that action answers Throttling, which botocore's retries absorb).

AMI deprecation (EnableImageDeprecation, DisableImageDeprecation), which moto also lacks, is
answered InvalidAction, as by an EC2 endpoint that does not have it. DescribeInstances gets the
client-token filter that moto lacks.

    python -m tests.fakes.moto_ebs PORT AMIS_JSON
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# What moto needs of a seeded AMI beyond id, name, owner and creation date.
AMI_DEFAULTS = {
    "description": "",
    "public": False,
    "virtualization_type": "hvm",
    "architecture": "x86_64",
    "state": "available",
    "platform": None,
    "image_type": "machine",
    "hypervisor": "xen",
    "root_device_type": "ebs",
    "root_device_name": "/dev/xvda",
    "sriov": "simple",
}


def ami_records(amis: list[Mapping[str, Any]], owner: str) -> str:
    """The MOTO_AMIS_PATH JSON for AMIs given by ami_id, name and creation_date."""
    return json.dumps([{**AMI_DEFAULTS, "owner_id": owner, "description": a["name"], **a} for a in amis])


@contextlib.contextmanager
def running(amis_json: Path, timeout: float = 30) -> Iterator[str]:
    """Run this server on a free loopback port until the block ends; yields its endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.moto_ebs", str(port), str(amis_json)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


FAULTS_PATH = "/_bakery/faults"


def set_faults(
    endpoint: str,
    *,
    pending_seconds: Mapping[str, float] | None = None,
    delays: list[dict[str, Any]] | None = None,
    refresh: Mapping[str, Any] | None = None,
    throttle: list[dict[str, Any]] | None = None,
) -> None:
    """Make new AMIs pending for a while, delay or throttle API actions, and set the instance
    refresh's fake durations (see the module's docstring); called with no arguments, back to
    moto's own behaviour and the refresh's default durations."""
    body = json.dumps(
        {
            "pending_seconds": dict(pending_seconds or {}),
            "delays": list(delays or []),
            "refresh": dict(refresh or {}),
            "throttle": list(throttle or []),
        }
    ).encode()
    request = urllib.request.Request(f"{endpoint}{FAULTS_PATH}", data=body, method="POST")
    urllib.request.urlopen(request, timeout=5).read()


class _Faults:
    def __init__(self) -> None:
        self.pending_seconds: dict[str, float] = {}
        self.delays: list[dict[str, Any]] = []
        self.throttle: list[dict[str, Any]] = []
        self.calls: dict[str, int] = {}

    def throttled(self, action: str) -> bool:
        """Every `every`-th call of a throttled action answers Throttling."""
        every = max((int(t.get("every", 0)) for t in self.throttle if t.get("action") == action), default=0)
        if not every:
            return False
        self.calls[action] = self.calls.get(action, 0) + 1
        return self.calls[action] % every == 0

    def hold(self, action: str, agent: str) -> None:
        """Wait at the barrier of a matching delay that has one (see the module's docstring)."""
        for delay in self.delays:
            parties = int(delay.get("barrier", 0))
            if not parties or delay.get("action") != action or delay.get("agent", "") not in agent:
                continue
            barrier = delay.setdefault("_barrier", threading.Barrier(parties, timeout=float(delay["seconds"])))
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            return

    def delay_for(self, action: str, agent: str) -> float:
        return sum(
            float(d["seconds"])
            for d in self.delays
            if d.get("action") == action and d.get("agent", "") in agent and not d.get("barrier")
        )


THROTTLED = (
    b'<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type>'
    b"<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>throttled</RequestId></ErrorResponse>"
)

# EC2 actions moto 5 lacks (its server answers them with a 500 page, which botocore retries): answered
# as AWS answers an action an endpoint does not have, so what bakery does then is what is tested.
MISSING_ACTIONS = ("EnableImageDeprecation", "DisableImageDeprecation")


def _invalid_action(action: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidAction</Code>'
        f"<Message>The action {action} is not valid for this web service.</Message></Error></Errors>"
        f"<RequestID>missing-action</RequestID></Response>"
    ).encode()


def _middleware(app: Any, faults: _Faults) -> Any:
    import io
    from urllib.parse import parse_qs

    from tests.fakes import instance_refresh

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == FAULTS_PATH:
            size = int(environ.get("CONTENT_LENGTH") or 0)
            wanted = json.loads(environ["wsgi.input"].read(size) or b"{}")
            faults.pending_seconds = dict(wanted.get("pending_seconds", {}))
            faults.delays = list(wanted.get("delays", []))
            faults.throttle = list(wanted.get("throttle", []))
            faults.calls = {}
            instance_refresh.configure(dict(wanted.get("refresh", {})))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b"{}"]
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        fields = parse_qs(body.decode("utf-8", "replace")) or parse_qs(environ.get("QUERY_STRING", ""))
        action = (fields.get("Action") or [""])[0]
        faults.hold(action, environ.get("HTTP_USER_AGENT", ""))
        pause = faults.delay_for(action, environ.get("HTTP_USER_AGENT", ""))
        if pause:
            time.sleep(pause)
        if faults.throttled(action):
            start_response("400 Bad Request", [("Content-Type", "text/xml")])
            return [THROTTLED]
        if action in MISSING_ACTIONS:
            start_response("400 Bad Request", [("Content-Type", "text/xml")])
            return [_invalid_action(action)]
        instance_refresh.tick()
        return app(environ, start_response)

    return wsgi


def main() -> None:
    port, amis = sys.argv[1], sys.argv[2]
    os.environ["MOTO_AMIS_PATH"] = amis
    from moto.ec2.models import amis as moto_amis

    faults = _Faults()
    original = moto_amis.Ami.__init__

    def ebs_backed(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("root_device_type", "ebs")
        kwargs.setdefault("root_device_name", "/dev/xvda")
        original(self, *args, **kwargs)
        made = "copy" if kwargs.get("source_ami") is not None else "create" if kwargs.get("instance") else ""
        self._available_at = time.time() + faults.pending_seconds.get(made, 0.0)

    def get_state(self: Any) -> str:
        if self._state == "available" and time.time() < getattr(self, "_available_at", 0.0):
            return "pending"
        return str(self._state)

    def set_state(self: Any, value: str) -> None:
        self._state = value

    moto_amis.Ami.__init__ = ebs_backed  # type: ignore[method-assign]
    moto_amis.Ami.state = property(get_state, set_state)  # type: ignore[attr-defined]
    # DescribeInstances' client-token filter (moto keeps each instance's token but lacks the filter).
    from moto.ec2 import utils as ec2_utils

    ec2_utils.filter_dict_attribute_mapping["client-token"] = "client_token"

    from tests.fakes import instance_refresh_api, moto_kms

    instance_refresh_api.install()
    moto_kms.install()

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", port)
    app = DomainDispatcherApplication(create_backend_app)
    # moto checks S3's If-None-Match / If-Match and then writes, without a lock: serve conditional
    # writes one at a time, so they are atomic as on S3 (the registry's races depend on it).
    conditional = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") in ("PUT", "POST") and (
            "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        ):
            with conditional:
                return list(app(environ, start_response))
        return app(environ, start_response)

    run_simple(
        "127.0.0.1", int(port), _middleware(serialized, faults), threaded=True, request_handler=MotoRequestHandler
    )


if __name__ == "__main__":
    main()
