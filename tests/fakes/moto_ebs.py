"""moto's server, with AMIs EBS-backed as on AWS.

moto registers every AMI it creates (create_image, copy_image) with root device type 'standard';
Packer's amazon-ebs refuses such an AMI as a source. On AWS an AMI made from an EBS volume is
'ebs', so this runs moto's own server with that one default changed, and seeds the Debian-like
source AMIs the tests filter for (MOTO_AMIS_PATH must be set before moto is imported).

    python -m tests.fakes.moto_ebs PORT AMIS_JSON
"""

from __future__ import annotations

import os
import sys


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
