"""`bakery plan` over 200 images x 3 targets (local, AWS on a moto server, GCP on the fake server).

Reports the wall time of one plan of an up-to-date catalog and the API calls it made, per cloud.
Goals: < 1 s, and at most one list call per region or project per page. Asserts nothing.

    python bench/plan_bench.py [--images 200]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_GCE_CHECK": "True",
        }
    )

    from bakery.bake import tools
    from bakery.bake.plan import Planner
    from bakery.config import load as config
    from bakery.core import provenance
    from bakery.core.catalog import ImageRecord
    from bakery.progress import Silent
    from bakery.providers.aws.provider import default_clients
    from bakery.providers.local.store import LocalStore
    from bakery.workspace import Workspace
    from tests.fakes import moto_ebs
    from tests.fakes.gce import FakeGce, global_operations_client, images_client

    tmp = Path(tempfile.mkdtemp(prefix="bakery-plan-bench-"))
    (tmp / "amis.json").write_text(
        moto_ebs.ami_records(
            [
                {
                    "ami_id": "ami-0d1e0000000000001",
                    "name": "debian-12-amd64-20260101",
                    "creation_date": "2026-01-01T00:00:00.000Z",
                }
            ],
            "123456789012",
        )
    )
    stack = contextlib.ExitStack()
    moto = stack.enter_context(moto_ebs.running(tmp / "amis.json"))
    gce = stack.enter_context(FakeGce())
    gce.add_image("debian-cloud", "debian-12-v20260101", family="debian-12")
    try:
        shutil.copytree(REPO / "templates", tmp / "templates")
        shutil.copytree(REPO / "playbooks", tmp / "playbooks")
        images = {
            f"img-{i:03d}": {
                "version": "1.0",
                "playbooks": ["playbooks/base.yml"],
                "source": {
                    "local": {},
                    "aws": {"filter": {"owners": ["123456789012"], "name": "debian-12-amd64-*"}},
                    "gcp": {"family": "debian-12", "project": "debian-cloud"},
                },
            }
            for i in range(args.images)
        }
        (tmp / "images.yaml").write_text(
            json.dumps(
                {
                    "targets": {
                        "local": {"kind": "local"},
                        "aws": {"kind": "aws", "region": "eu-west-1", "endpoint": moto},
                        "gcp": {
                            "kind": "gcp",
                            "project": "bench-project",
                            "zone": "europe-west1-b",
                            "endpoint": gce.endpoint,
                        },
                    },
                    "images": images,
                }
            )
        )
        project = config.load(tmp / "images.yaml")
        ws = Workspace(tmp / ".bakery").ensure()
        calls: Counter[str] = Counter()

        def clients(service: str, where: str, endpoint: str | None) -> Any:
            if service == "images":
                return images_client(endpoint or gce.endpoint)
            if service == "globalOperations":
                return global_operations_client(endpoint or gce.endpoint)
            client = default_clients(service, where, endpoint)
            client.meta.events.register(
                "before-send.ec2", lambda event_name, **_: calls.update([f"aws {event_name.rsplit('.', 1)[-1]}"])
            )
            return client

        # Seed every target with an up-to-date version of every image (the digests plan computes).
        first = Planner(project, ws, Silent(), clients).plan()
        ec2 = default_clients("ec2", "eu-west-1", moto)
        store = LocalStore(ws.catalog_db, ws.images)
        for item in first.items:
            stamp = {
                "image": item.image,
                "version": "1.0.0",
                "target": item.target,
                "state": "complete",
                "inputs-digest": item.inputs_digest or "",
                "base": "",
                "created": "2026-01-01T00:00:00Z",
            }
            if item.target == "aws":
                ami = ec2.register_image(Name=f"{item.image}-1.0.0", RootDeviceName="/dev/xvda")["ImageId"]
                ec2.create_tags(
                    Resources=[ami],
                    Tags=[{"Key": k, "Value": v} for k, v in provenance.aws_tags(stamp, {}, None).items()],
                )
            elif item.target == "gcp":
                gce.add_image("bench-project", f"{item.image}-1-0-0", labels=provenance.gcp_stamp_labels(stamp))
            else:
                staged = tmp / "staged"
                staged.mkdir()
                (staged / "disk.qcow2").write_bytes(b"")
                store.record(
                    ImageRecord(
                        item.image,
                        "1.0.0",
                        "local",
                        "local",
                        item.inputs_digest or "",
                        stamp["created"],
                        "",
                        subject_sha256="0" * 64,
                    ),
                    staged,
                )

        calls.clear()
        gce.reset_requests()
        tools.packer_version.cache_clear()
        start = time.perf_counter()
        plan = Planner(project, ws, Silent(), clients).plan()
        seconds = time.perf_counter() - start
        gce_calls = Counter(f"gcp {method} {path.split('?')[0].rsplit('/', 2)[-1]}" for method, path in gce.requests)
        statuses = Counter(i.status for i in plan.items)
        print(
            json.dumps(
                {
                    "images": args.images,
                    "targets": 3,
                    "plan_items": len(plan.items),
                    "statuses": dict(statuses),
                    "plan_seconds": round(seconds, 3),
                    "api_calls": {**dict(calls), **dict(gce_calls)},
                    "goals": {"plan_seconds": 1.0, "list_calls_per_region_or_project_per_page": 1},
                },
                indent=2,
            )
        )
    finally:
        stack.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
