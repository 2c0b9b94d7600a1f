"""Image tests on the real thing: `bakery test` boots the session's web image with a key made for
the test, its playbook and HTTP checks pass, and the result is signed; a web whose page answers
500 fails its bake naming the check, stays recorded, and verifies as tested and failed. No test VM
is left running. Two test boots in all (the broken bake's, and `bakery test`'s)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Baked, RolloutImages, qemu_processes, run_bakery


def test_bakery_test_passes_and_a_broken_page_fails_its_bake(
    e2e_project: Path, e2e_env: dict[str, str], web_image: Baked, rollout_images: RolloutImages
) -> None:
    ref = f"web@{web_image.version}"
    tested = run_bakery(e2e_project, e2e_env, "test", ref, "--target", "local", "--json")
    assert tested.returncode == 0, tested.stderr[-3000:]
    run = json.loads(tested.stdout)
    assert run["result"] == "passed" and run["failed"] == []
    assert [name.split(" [")[0] for name in run["passed"][:3]] == [
        "playbooks/tests/web.yml: nginx runs",
        "playbooks/tests/web.yml: The machine knows which image it was built from",
        "playbooks/tests/web.yml: The page names this image and version",
    ]
    assert "GET /healthz on port 80 answers 200 matching ^ok web " in run["passed"]
    assert run["stored"].startswith(f"tests/local/web/{web_image.version}.json in ")
    verified = run_bakery(e2e_project, e2e_env, "verify", ref, "--target", "local")
    assert verified.returncode == 0, verified.stdout
    assert "ok   tests: passed (5 tests, signed by workspace key)" in verified.stdout

    broken = rollout_images.bad_build  # web with playbooks/unhealthy.yml: its /healthz answers 500
    assert broken.returncode == 1, broken.stderr[-3000:]
    built = json.loads(broken.stdout)
    version = built["record"]["version"]
    assert built["tests"]["result"] == "failed"
    assert (
        "GET /healthz on port 80 answers 200 matching ^ok web : answered 500 (expected 200): "
        f"'broken web {version}'" in broken.stderr
    )
    assert f"the image stays recorded, tested and failed (tests/local/web/{version}.json" in broken.stderr
    project, env = rollout_images.project, rollout_images.env
    listed = run_bakery(project, env, "images", "web", "--target", "local", "--json")
    assert version in [r["version"] for r in json.loads(listed.stdout)["images"]]
    refused = run_bakery(project, env, "verify", f"web@{version}", "--target", "local")
    assert refused.returncode == 1
    assert "FAIL tests: failed: GET /healthz on port 80 answers 200 matching ^ok web : answered 500" in refused.stdout
    for each in (e2e_project, project):
        assert qemu_processes(str(each / ".bakery" / "tests")) == []
        assert list((each / ".bakery" / "tests").iterdir()) == []  # each run's directory (its key) is gone
