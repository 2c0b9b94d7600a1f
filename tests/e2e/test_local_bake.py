"""The real thing on this machine: QEMU bakes with Ansible, booted and checked afterwards.

The tests share one project and one BAKERY_HOME (see conftest.py), and each sets up what it
needs through fixtures: `base_disk` (made once), `web_image` and `web_rebake` (web baked once,
then once again), and the bakes that run beside the tests in homes of their own (`plain_build`,
`leaky_bake`: see `lane`). None counts on another having run first: any one runs
alone, in any order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bakery.providers.local.machine import Machine
from tests.e2e.conftest import (
    BIN,
    HOSTILE,
    Baked,
    Lane,
    PlainBuild,
    Rebaked,
    SecretBake,
    catalog,
    qemu_processes,
    run_bakery,
    tree_digest,
)

bakery = run_bakery


def debugfs(disk: Path, tmp: Path, command: str) -> str:
    """Read the image's filesystem without booting it (qcow2 -> raw -> debugfs)."""
    raw = tmp / "disk.raw"
    if not raw.exists():
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    return subprocess.run(["debugfs", "-R", command, str(raw)], capture_output=True, text=True, check=True).stdout


def disks(project: Path) -> set[Path]:
    return set((project / ".bakery" / "images").rglob("disk.qcow2"))


def test_interrupted_bake_leaves_nothing(e2e_project: Path, bakery_env: dict[str, str]) -> None:
    """Whatever the session baked before, the interrupted bake adds nothing to it."""
    before = catalog(e2e_project, bakery_env, "web")
    disks_before = disks(e2e_project)
    child = subprocess.Popen(
        # --force: web may be baked from these very inputs already (web_image), and would be skipped.
        [str(BIN / "bakery"), "build", "web", "--target", "local", "--force"],
        cwd=e2e_project,
        env=bakery_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _interrupt_mid_bake(child, e2e_project)
    finally:
        if child.poll() is None:
            child.kill()
    assert qemu_processes(str(e2e_project)) == []
    assert catalog(e2e_project, bakery_env, "web") == before
    builds = e2e_project / ".bakery" / "builds"
    assert [p.name for p in builds.iterdir() if p.is_dir()] == []  # work dir (and its key) removed
    assert disks(e2e_project) == disks_before


def _interrupt_mid_bake(child: subprocess.Popen[str], project: Path) -> None:
    seen: list[str] = []
    deadline = time.monotonic() + 1200
    assert child.stderr is not None
    for line in child.stderr:
        seen.append(line)
        # Packer has booted the VM and Ansible is at work: the middle of the bake.
        if "Executing Ansible" in line or "PLAY [" in line:
            break
        assert time.monotonic() < deadline, "".join(seen[-30:])
    else:
        pytest.fail("bake ended before Ansible started:\n" + "".join(seen[-30:]))
    assert qemu_processes(str(project)), "a qemu should be running mid-bake"
    child.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
    rest = child.stderr.read()
    child.wait(timeout=300)
    assert child.returncode == 130, rest  # 128 + SIGINT, as a shell reports a job Ctrl-C stopped
    assert "interrupted" in rest
    assert "full log:" in rest


def test_failed_playbook_reports_its_log_and_records_nothing(
    e2e_project: Path, bakery_env: dict[str, str], base_disk: None
) -> None:
    result = bakery(e2e_project, bakery_env, "build", "broken", "--target", "local")
    assert result.returncode == 1
    assert "error: packer build failed" in result.stderr
    assert "Fail on purpose" in result.stderr  # the tail of the log names the failing task
    log = result.stderr.split("full log: ")[1].split()[0]
    assert "Fail on purpose" in Path(log).read_text()
    assert "reused cached base disk" in result.stderr  # made once for the session
    assert catalog(e2e_project, bakery_env, "broken") == []
    assert qemu_processes(str(e2e_project)) == []


def test_bake_boot_and_inspect(e2e_project: Path, bakery_env: dict[str, str], tmp_path: Path, web_image: Baked) -> None:
    result, built, record = web_image.process, web_image.built, web_image.record
    assert record["version"] == "1.0.0"  # the first recorded bake of web in this home
    assert "==> build" in result.stderr and "PLAY [Web server]" in result.stderr  # live progress

    directory = Path(record["locations"][0])
    assert sorted(p.name for p in directory.iterdir()) == ["disk.qcow2", "initrd.img", "provenance.json", "vmlinuz"]
    statement = json.loads((directory / "provenance.json").read_text())
    disk_sha = hashlib.sha256((directory / "disk.qcow2").read_bytes()).hexdigest()
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["digest"]["sha256"] == disk_sha
    build_def = statement["predicate"]["buildDefinition"]
    assert build_def["externalParameters"] == {"image": "web", "target": "local", "version": "1.0.0"}
    assert build_def["internalParameters"]["inputsDigest"] == built["inputs_digest"]
    names = {d["name"]: d for d in build_def["resolvedDependencies"]}
    head = subprocess.run(
        ["git", "-C", str(e2e_project), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert names["git"]["digest"] == {"gitCommit": head}
    assert names["git"]["annotations"] == {"dirty": False}
    assert "playbooks/web.yml" in names and "playbooks/roles/nginx_page/templates/index.html.j2" in names
    assert any(n.startswith("base-disk:debian-bookworm") for n in names)
    entry = names["images.yaml#images.web"]["annotations"]["entry"]
    assert entry["entry"]["description"] == HOSTILE  # arrives literally in the provenance
    versions = statement["predicate"]["runDetails"]["builder"]["version"]
    assert set(versions) == {"bakery", "packer", "ansible"}

    # The secret was injected at build time and is nowhere on record.
    token = bakery_env["BAKERY_E2E_TOKEN"]
    assert token not in (directory / "provenance.json").read_text()
    assert token not in Path(built["log_path"]).read_text()
    assert token not in result.stderr
    assert "api_token" in entry["entry"]["secrets"]  # the name is on record, never the value

    # `bakery show` reads the same document back.
    shown = bakery(e2e_project, bakery_env, "show", "web@1.0.0", "--json")
    assert json.loads(shown.stdout)["provenance"] == statement

    # The image as saved: the playbook's effect, and nothing that makes instances alike.
    token_hash = debugfs(directory / "disk.qcow2", tmp_path, "cat /etc/bakery/token.sha256").strip()
    assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    identity = json.loads(debugfs(directory / "disk.qcow2", tmp_path, "cat /etc/bakery/image.json"))
    assert identity == {"image": "web", "version": "1.0.0", "target": "local", "description": HOSTILE}
    assert "ssh_host_" not in debugfs(directory / "disk.qcow2", tmp_path, "ls -l /etc/ssh")
    assert debugfs(directory / "disk.qcow2", tmp_path, "stat /etc/machine-id").find("Size: 0") != -1
    assert "authorized_keys" not in debugfs(directory / "disk.qcow2", tmp_path, "ls -l /root/.ssh")
    lists = debugfs(directory / "disk.qcow2", tmp_path, "ls -l /var/lib/apt/lists")
    assert "_Packages" not in lists and "InRelease" not in lists
    assert (
        "File not found"
        in subprocess.run(
            ["debugfs", "-R", "stat /root/.bash_history", str(tmp_path / "disk.raw")], capture_output=True, text=True
        ).stderr
    )

    # Booted, it serves the page the playbook wrote, with its own name and version.
    booted = bakery(e2e_project, bakery_env, "boot", "web@1.0.0", "--get", "/", "--get", "/healthz", "--json")
    assert booted.returncode == 0, booted.stderr[-2000:]
    pages = {p["path"]: p for p in json.loads(booted.stdout)["pages"]}
    assert pages[""]["status"] == 200
    assert '<b id="image">web</b>' in pages[""]["body"] and '<b id="version">1.0.0</b>' in pages[""]["body"]
    assert pages["healthz"]["body"].strip() == "ok web 1.0.0"
    assert qemu_processes(str(e2e_project)) == []


def test_second_bake_reuses_the_base_and_adds_a_version(
    e2e_project: Path, bakery_env: dict[str, str], web_image: Baked, web_rebake: Rebaked
) -> None:
    """web baked again from the same inputs (`--force`), in-process this time (typer's CliRunner,
    the same command a user types): the session bakes it once (web_rebake), for this test and
    as the version the rollouts move to."""
    assert web_rebake.listed_before == [web_image.version]
    result = web_rebake
    assert result.exit_code == 0, result.output[-3000:]
    assert "reused cached base disk" in result.output
    assert "baked web@1.0.1 on local" in result.output

    listed = catalog(e2e_project, bakery_env, "web")
    assert [r["version"] for r in listed] == ["1.0.0", "1.0.1"]
    provenances = [
        json.loads((Path(str(r["locations"][0])) / "provenance.json").read_text())  # type: ignore[index]
        for r in listed
    ]
    ids = {p["predicate"]["runDetails"]["metadata"]["invocationId"] for p in provenances}
    assert len(ids) == 2
    assert [p["predicate"]["buildDefinition"]["externalParameters"]["version"] for p in provenances] == [
        "1.0.0",
        "1.0.1",
    ]
    # The first version's directory never changed.
    assert tree_digest(web_image.directory) == web_rebake.first_before
    # Baked again from the same inputs: the same packages (each bake's SBOM), and no input changed.
    versions = (f"web@{web_image.version}", f"web@{web_rebake.version}")
    diffed = bakery(e2e_project, bakery_env, "diff", *versions, "--target", "local", "--json")
    assert diffed.returncode == 0, diffed.stderr[-2000:]
    assert json.loads(diffed.stdout)["packages"] == {"added": [], "removed": [], "changed": []}
    assert json.loads(diffed.stdout)["inputs"] == []


def test_each_instance_makes_its_own_host_keys_and_machine_id(
    e2e_project: Path, bakery_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, web_image: Baked, tmp_path: Path
) -> None:
    """Two machines booted from one image: different SSH host keys (made at first boot). Logged
    into the first, `dpkg-query -W` lists exactly the packages of the image's signed SBOM."""
    from bakery.progress import Silent
    from bakery.providers.local.boot import free_port
    from bakery.providers.local.provider import LocalProvider
    from bakery.workspace import Workspace

    monkeypatch.setenv("PATH", bakery_env["PATH"])
    ws = Workspace(e2e_project / ".bakery")
    (record,) = [r for r in LocalProvider(ws, Silent()).images("local", "web") if r.version == web_image.version]
    ports: list[int] = []
    while len(ports) < 2:
        if (port := free_port()) not in ports:
            ports.append(port)
    login = tmp_path / "login"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(login)], check=True)
    public = (tmp_path / "login.pub").read_text()
    # Both boot at once: the waits for their SSH servers overlap.
    with contextlib.ExitStack() as running:
        machines = [
            running.enter_context(
                Machine(ws, record, forwards={port: 22}, accelerator="tcg", cpus=2, ssh_public_key=public)
            )
            for port in ports
        ]
        keys = [_host_key(machine, port) for machine, port in zip(machines, ports, strict=True)]
        listed = _ssh(ports[0], login, "dpkg-query -W -f '${Package} ${Version}\\n'")
    assert keys[0] != keys[1]
    sbom = bakery(e2e_project, bakery_env, "sbom", f"web@{web_image.version}", "--target", "local", "--json")
    assert sbom.returncode == 0, sbom.stderr[-2000:]
    assert sorted(listed.splitlines()) == sorted(
        f"{p['name']} {p['version']}" for p in json.loads(sbom.stdout)["packages"]
    )
    assert qemu_processes(str(e2e_project)) == []


def _ssh(port: int, key: Path, command: str) -> str:
    """`command`'s output, run as root over SSH on 127.0.0.1:`port` with `key` (its key reaches
    the VM on the kernel command line; a first refusal while it boots is tried again)."""
    argv = ["ssh", "-i", str(key), "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
    argv += ["-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "root@127.0.0.1", command]
    for _ in range(30):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout
        time.sleep(2)
    raise AssertionError(f"ssh {command!r} failed: {done.stderr[-1000:]}")


def _host_key(machine: Machine, port: int) -> str:
    """The ed25519 host key a booted machine's SSH server offers on 127.0.0.1:`port`."""
    deadline = time.monotonic() + 300
    scanned = ""
    while time.monotonic() < deadline and "ssh-ed25519" not in scanned:
        assert machine.alive(), machine.serial_log.read_text(errors="replace")[-2000:]
        scanned = subprocess.run(
            ["ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", str(port), "127.0.0.1"],
            capture_output=True,
            text=True,
        ).stdout
        time.sleep(2)
    assert "ssh-ed25519" in scanned
    return scanned.split()[-1]


def test_plain_packer_builds_the_local_render(plain_build: PlainBuild) -> None:
    """`bakery render` writes a directory that Packer builds on its own, without bakery (in a copy
    of the session's project, beside the other tests: see the `lane` fixture)."""
    rendered, built, out = plain_build.rendered, plain_build.built, plain_build.out
    assert rendered.returncode == 0, rendered.stderr
    assert f"packer build {out}" in rendered.stdout
    assert built is not None
    assert built.returncode == 0, built.stdout[-3000:]
    assert (out / "output" / "disk.qcow2").is_file()
    assert (out / "output-vmlinuz").is_file() and (out / "output-initrd.img").is_file()
    assert qemu_processes(str(plain_build.project)) == [] and qemu_processes(str(out)) == []


# --- secrets -------------------------------------------------------------------------------------


def holds(path: Path, needle: bytes) -> bool:
    """Whether the file holds `needle`, read in overlapping 16 MiB chunks (disks are large)."""
    carried = b""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(16 << 20):
                if needle in carried + chunk:
                    return True
                carried = chunk[-(len(needle) - 1) :]
    except OSError:  # gone meanwhile (another job's temporary file)
        return False
    return False


def files_under(root: Path, *, since: float = 0.0, prune: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Regular files under `root` changed at or after `since`, outside the `prune` trees."""
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if Path(directory, d) not in prune]
        for name in names:
            path = Path(directory, name)
            try:
                info = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and max(info.st_mtime, info.st_ctime) >= since:
                yield path


def test_secret_reaches_ansible_only_through_its_environment(
    web_image: Baked,
    e2e_project: Path,
    e2e_env: dict[str, str],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """web's play uses secret `api_token` (a value of this session alone); a sampler read every
    command line on this machine while the session's bake of web ran."""
    bake, result = web_image, web_image.process
    token = e2e_env["BAKERY_E2E_TOKEN"].encode()
    assert "searched the image for 1 secret(s): none found" in result.stderr

    # No process showed the value on its command line, while the sampler did see the bake at work.
    assert bake.rounds > 100
    assert not [line for line in bake.seen if token in line]
    assert any(b"packer\0build\0" in line and b"/web-local-" in line for line in bake.seen)
    assert any(b"ansible-playbook" in line and b"bakery-secrets.yml" in line for line in bake.seen)

    # Nor is it on disk: the project and its BAKERY_HOME (the log, the provenance, every image),
    # what the bake left in the temporary directory or in Ansible's home.
    directory, log = bake.directory, Path(bake.built["log_path"])
    statement = directory / "provenance.json"
    pytest_temp = tmp_path_factory.getbasetemp().parent
    scanned = [
        *files_under(e2e_project),
        *files_under(Path(tempfile.gettempdir()), since=bake.started, prune=(pytest_temp,)),
        *files_under(Path.home() / ".ansible", since=bake.started),
    ]
    assert {log, statement, directory / "disk.qcow2"} <= set(scanned)
    assert [str(path) for path in scanned if holds(path, token)] == []
    assert token.decode() not in result.stderr + result.stdout

    # The play did receive it: the image holds its hash.
    saved = debugfs(directory / "disk.qcow2", tmp_path, "cat /etc/bakery/token.sha256").strip()
    assert saved == hashlib.sha256(token).hexdigest()


def test_secret_written_into_the_image_fails_the_bake_and_records_nothing(leaky_bake: SecretBake) -> None:
    """leaky's play writes the secret into the image; baked beside the other tests (see `lane`)."""
    project, env, home, result, token = (
        leaky_bake.project,
        leaky_bake.env,
        leaky_bake.home,
        leaky_bake.result,
        leaky_bake.token,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert (
        "error: secret 'api_token' (from $BAKERY_E2E_TOKEN) was found in the built disk; refusing to record it"
        in result.stderr
    )
    assert token not in result.stderr + result.stdout
    log = result.stderr.split("full log: ")[1].split()[0]
    assert token not in Path(log).read_text()
    assert catalog(project, env, "leaky") == []
    assert not (home / "images" / "local" / "leaky").exists()
    assert [p.name for p in (home / "builds").iterdir() if p.is_dir() and p.name.startswith("leaky-")] == []
    assert qemu_processes(str(home)) == []


def test_a_baked_image_verifies_and_fails_after_one_byte_of_its_disk_changed(
    e2e_project: Path, bakery_env: dict[str, str], web_image: Baked, lane: Lane
) -> None:
    """Changed in place: the jobs beside the tests (see `lane`) copy no image meanwhile."""
    with lane.image_files:
        _verify_then_change_one_byte(e2e_project, bakery_env, web_image)


def _verify_then_change_one_byte(e2e_project: Path, bakery_env: dict[str, str], web_image: Baked) -> None:
    ref = f"web@{web_image.record['version']}"
    ok = bakery(e2e_project, bakery_env, "verify", ref, "--target", "local")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{ref} on local: verified" in ok.stdout
    disk = Path(web_image.record["locations"][0]) / "disk.qcow2"
    mode = disk.stat().st_mode
    offset = disk.stat().st_size // 2
    disk.chmod(mode | stat.S_IWUSR)
    with disk.open("r+b") as handle:
        handle.seek(offset)
        original = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([original[0] ^ 0x01]))
    try:
        changed = bakery(e2e_project, bakery_env, "verify", ref, "--target", "local")
        assert changed.returncode == 1
        assert f"{ref} on local: NOT VERIFIED" in changed.stdout
        assert "FAIL subject: the disk changed since it was signed" in changed.stdout
    finally:
        with disk.open("r+b") as handle:
            handle.seek(offset)
            handle.write(original)
        disk.chmod(mode)
    assert bakery(e2e_project, bakery_env, "verify", ref, "--target", "local").returncode == 0
    # The initrd a local VM boots with is signed with the disk.
    initrd = disk.with_name("initrd.img")
    kept = initrd.read_bytes()
    initrd.chmod(initrd.stat().st_mode | stat.S_IWUSR)
    initrd.write_bytes(kept + b"\0")
    try:
        changed = bakery(e2e_project, bakery_env, "verify", ref, "--target", "local")
        assert changed.returncode == 1
        assert "FAIL files: initrd.img changed since it was signed" in changed.stdout
    finally:
        initrd.write_bytes(kept)
        initrd.chmod(mode)
