"""moto's server, with AMIs EBS-backed as on AWS.

moto registers every AMI it creates (create_image, copy_image) with root device type 'standard';
Packer's amazon-ebs refuses such an AMI as a source. On AWS an AMI made from an EBS volume is
'ebs', so this runs moto's own server with that one default changed, and seeds the Debian-like
source AMIs the tests filter for (MOTO_AMIS_PATH must be set before moto is imported).

    python -m tests.fakes.moto_ebs PORT AMIS_JSON
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
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


def main() -> None:
    port, amis = sys.argv[1], sys.argv[2]
    os.environ["MOTO_AMIS_PATH"] = amis
    from moto.ec2.models import amis as moto_amis

    original = moto_amis.Ami.__init__

    def ebs_backed(self: object, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("root_device_type", "ebs")
        kwargs.setdefault("root_device_name", "/dev/xvda")
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    moto_amis.Ami.__init__ = ebs_backed  # type: ignore[method-assign]
    from moto.server import main as serve

    serve(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main()
