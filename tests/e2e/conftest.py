"""The e2e session: one demo project and one BAKERY_HOME, and what tests share in it as fixtures
(the base disk, two bakes of web) that any test requests for itself, and bakes in homes of their
own that run beside the tests (the `lane` fixture): no test counts on another having run first,
so any one of them runs alone or in any order."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.traffic import Traffic, page_version  # noqa: F401 - the e2e modules take them from here

REPO = Path(__file__).resolve().parents[2]
HOSTILE = 'say "hi" \\ back ${x} %{y}\nline two é ✓'
SECRET = "s3cr3t-token-never-baked-8d1f"
BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The repository's demo project in a git checkout of its own, with a hostile description
    and a deliberately broken image. One BAKERY_HOME for the whole session: the base disk made
    by the first bake is reused by the others, as it would be for a user."""
    root = tmp_path_factory.mktemp("e2e")
    shutil.copy(REPO / "images.yaml", root / "images.yaml")
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "playbooks" / "broken.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Fail on purpose\n      ansible.builtin.command: /bin/false\n"
    )
    # A secret reaches Ansible at build time; the play proves it arrived by writing its hash only.
    (root / "playbooks" / "secret.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: The token arrived\n      ansible.builtin.assert:\n        that: api_token | length > 0\n"
        "    - name: Keep its hash, never the token\n      ansible.builtin.copy:\n"
        "        dest: /etc/bakery/token.sha256\n        content: \"{{ api_token | hash('sha256') }}\"\n"
        "        mode: '0644'\n"
    )
    data = yaml.safe_load((root / "images.yaml").read_text())
    data["images"]["web"]["description"] = HOSTILE
    data["images"]["web"]["playbooks"].append("playbooks/secret.yml")
    data["images"]["web"]["secrets"] = {"api_token": "BAKERY_E2E_TOKEN"}
    data["images"]["broken"] = {
        "version": "0.1",
        "source": {"local": {}},
        "playbooks": ["playbooks/broken.yml"],
        "targets": ["local"],
    }
    # What `packer build` runs by hand from a render (test_plain_packer_builds_the_local_render): a
    # play of one task that writes the hostile description, so the values cross HCL and Ansible.
    (root / "playbooks" / "plain.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Keep the description\n      ansible.builtin.copy:\n"
        '        dest: /etc/bakery/description\n        content: "{{ bakery_description }}"\n'
        "        mode: '0644'\n"
    )
    data["images"]["plain"] = {
        "version": "0.1",
        "description": HOSTILE,
        "source": {"local": data["images"]["web"]["source"]["local"]},
        "playbooks": ["playbooks/base.yml", "playbooks/plain.yml"],
        "targets": ["local"],
    }
    (root / "images.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    git = ["git", "-C", str(root), "-c", "user.email=t@localhost", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / ".gitignore").write_text(".bakery/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "e2e project"], check=True)
    yield root


@pytest.fixture(scope="session")
def e2e_env(e2e_project: Path) -> dict[str, str]:
    """The environment a user's shell gives `bakery` (its home: .bakery beside images.yaml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAKERY_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["BAKERY_E2E_TOKEN"] = f"{SECRET}-{os.urandom(8).hex()}"  # a value of this session alone
    return env


@pytest.fixture()
def bakery_env(e2e_env: dict[str, str]) -> dict[str, str]:
    return dict(e2e_env)


def run_bakery(
    project: Path, env: dict[str, str], *args: str, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """The installed `bakery` script, run in `project` as a user would."""
    return subprocess.run(
        [str(BIN / "bakery"), *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


def catalog(project: Path, env: dict[str, str], image: str) -> list[dict[str, object]]:
    listed = run_bakery(project, env, "images", image, "--target", "local", "--json")
    assert listed.returncode == 0, listed.stderr
    images: list[dict[str, object]] = json.loads(listed.stdout)["images"]
    return images


@pytest.fixture(scope="session")
def base_disk(e2e_project: Path, e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The local base disk in the session's home, made once (by `bakery render`, which prepares a
    bake as a build does, without booting anything): tests that check its reuse request it."""
    out = tmp_path_factory.mktemp("render-for-the-base-disk")
    made = run_bakery(e2e_project, e2e_env, "render", "web", "--target", "local", "--out", str(out))
    assert made.returncode == 0, made.stderr[-3000:]
    shutil.rmtree(out)  # it holds a build key


@dataclass(frozen=True)
class Baked:
    """The outcome of `bakery build web --target local --json` (one real bake per session), and
    every command line seen on this machine while it ran (web's play uses secret `api_token`)."""

    process: subprocess.CompletedProcess[str]
    built: dict[str, Any]
    started: float
    seen: frozenset[bytes]
    rounds: int

    @property
    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = self.built["record"]
        return record

    @property
    def version(self) -> str:
        return str(self.record["version"])

    @property
    def directory(self) -> Path:
        return Path(self.record["locations"][0])


@pytest.fixture(scope="session")
def web_image(e2e_project: Path, e2e_env: dict[str, str], base_disk: None, lane: Lane) -> Baked:
    """The web image, baked once for the session; any test that needs a baked image requests it."""
    with fulfilling(lane, "web_image") as promised:
        started = time.time()
        sampler = CommandLines()
        sampler.start()
        try:
            # --no-test: the session's bake boots no test instance (test_image_tests.py boots one for it).
            result = run_bakery(e2e_project, e2e_env, "build", "web", "--target", "local", "--no-test", "--json")
        finally:
            sampler.stop()
        assert result.returncode == 0, result.stderr[-3000:]
        promised.set_result(Baked(result, json.loads(result.stdout), started, frozenset(sampler.seen), sampler.rounds))
    baked: Baked = promised.result()
    return baked


def tree_digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@dataclass(frozen=True)
class Rebaked:
    """web baked a second time from the same inputs (`--force`), in-process through typer's
    CliRunner as a user types it: what the catalog listed and the first version's files before
    it, what it printed, and the version it recorded."""

    listed_before: list[str]
    first_before: dict[str, str]  # tree_digest of web_image's directory
    exit_code: int
    output: str
    record: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.record["version"])


@pytest.fixture(scope="session")
def web_rebake(e2e_project: Path, e2e_env: dict[str, str], web_image: Baked, lane: Lane) -> Rebaked:
    """The second bake of web, once for the session: the test of a second bake reads it, and the
    rollouts use it as the version they move to (`two`)."""
    from typer.testing import CliRunner

    from bakery.cli.app import app

    with fulfilling(lane, "web_rebake") as promised:
        listed_before = [str(r["version"]) for r in catalog(e2e_project, e2e_env, "web")]
        with lane.image_files:
            first_before = tree_digest(web_image.directory)
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.chdir(e2e_project)
            monkeypatch.delenv("BAKERY_HOME", raising=False)
            monkeypatch.setenv("PATH", e2e_env["PATH"])
            monkeypatch.setenv("BAKERY_E2E_TOKEN", e2e_env["BAKERY_E2E_TOKEN"])
            result = CliRunner().invoke(app, ["build", "web", "--target", "local", "--force", "--no-test"])
        assert result.exit_code == 0, result.output[-3000:]
        (record,) = [r for r in catalog(e2e_project, e2e_env, "web") if r["version"] not in listed_before]
        promised.set_result(Rebaked(listed_before, first_before, result.exit_code, result.output, record))
    rebaked: Rebaked = promised.result()
    return rebaked


def qemu_processes(marker: str) -> list[str]:
    """Command lines of running qemu processes that mention `marker` (a path of ours)."""
    out = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "qemu-system" in line and marker in line]


class CommandLines(threading.Thread):
    """Every process's command line on this machine, sampled every 25 ms until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[bytes] = set()
        self.rounds = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as handle:
                            self.seen.add(handle.read())
                    except OSError:  # the process ended meanwhile
                        pass
            self.rounds += 1
            self._done.wait(0.025)

    def stop(self) -> None:
        self._done.set()
        self.join()


def secret_project(root: Path, home: Path, image: str, tasks: str) -> tuple[Path, dict[str, str]]:
    """A project of its own with one image whose play uses secret `api_token`, baked in `home`."""
    demo = yaml.safe_load((REPO / "images.yaml").read_text())
    (root / "playbooks").mkdir(parents=True)
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "playbooks" / f"{image}.yml").write_text(f"- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}")
    data = {
        "targets": {"local": demo["targets"]["local"]},
        "images": {
            image: {
                "version": "1.0",
                "source": {"local": demo["images"]["web"]["source"]["local"]},
                "playbooks": [f"playbooks/{image}.yml"],
                "secrets": {"api_token": "BAKERY_E2E_TOKEN"},
            }
        },
    }
    (root / "images.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    git = ["git", "-C", str(root), "-c", "user.email=t@localhost", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", image], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAKERY_")}
    # A value of this test alone: no other bake on this machine can show it.
    token = f"{SECRET}-{os.urandom(8).hex()}"
    env.update(PATH=f"{BIN}{os.pathsep}{env['PATH']}", BAKERY_HOME=str(home), BAKERY_E2E_TOKEN=token)
    return root, env


# --- bakes beside the tests ------------------------------------------------------------------------
# A TCG bake keeps the machine busy for minutes, and much of it is waiting (on SSH, apt, the disk):
# bakes that need nothing of the session's home but its base disk run on one thread of their own
# (one VM at a time) while the tests go on, each in a home of its own (its base disk copied in), so
# that no test of the session's home sees them. They start with the session, for the tests
# selected; the fixture of each test awaits its own (and starts it, when it was not started).


class Lane:
    def __init__(self, jobs: dict[str, Callable[[], Any]]) -> None:
        self._jobs = jobs
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="e2e-lane")
        self._started: dict[str, Future[Any]] = {}
        self._promised: dict[str, Future[Any]] = {}
        self._guard = threading.Lock()
        # Held while a test changes a baked image's files in place, and while a job copies them.
        self.image_files = threading.Lock()

    def start(self, name: str) -> Future[Any]:
        with self._guard:
            if name not in self._started:
                self._started[name] = self._pool.submit(self._jobs[name])
            return self._started[name]

    def result(self, name: str) -> Any:
        return self.start(name).result()

    def promise(self, name: str) -> Future[Any]:
        """What a fixture of the tests (web_image, web_rebake) hands to the jobs that wait for it."""
        with self._guard:
            return self._promised.setdefault(name, Future())

    def close(self) -> None:
        with self._guard:
            for promised in self._promised.values():
                if not promised.done():  # the session ended before it: the job waiting stops
                    promised.set_exception(RuntimeError("the session ended first"))
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def fulfilling(lane: Lane, name: str) -> Iterator[Future[Any]]:
    """A fixture's value promised to the jobs: set when the block ends, failed when it raises."""
    promised = lane.promise(name)
    try:
        yield promised
    except BaseException as exc:
        if not promised.done():
            promised.set_exception(exc)
        raise


def own_home(e2e_project: Path, home: Path) -> Path:
    """`home`, new, holding a copy of the session's base disk."""
    shutil.copytree(e2e_project / ".bakery" / "cache" / "base", home / "cache" / "base")
    return home


@dataclass(frozen=True)
class PlainBuild:
    """`bakery render plain` into `out`, then `packer build out` run by hand, in a copy of the project."""

    project: Path
    out: Path
    rendered: subprocess.CompletedProcess[str]
    built: subprocess.CompletedProcess[str] | None


def build_plain_render(e2e_project: Path, e2e_env: dict[str, str], tmp: pytest.TempPathFactory) -> PlainBuild:
    project = tmp.mktemp("plain") / "project"
    shutil.copytree(e2e_project, project, ignore=shutil.ignore_patterns(".bakery"))  # a checkout, clean
    own_home(e2e_project, project / ".bakery")
    # Outside the project: a directory there would make the checkout dirty.
    out = tmp.mktemp("render") / "by-hand"
    rendered = run_bakery(project, e2e_env, "render", "plain", "--target", "local", "--out", str(out))
    if rendered.returncode != 0:
        return PlainBuild(project, out, rendered, None)
    built = subprocess.run(
        ["packer", "build", str(out)], cwd=out, env=e2e_env, capture_output=True, text=True, timeout=1800
    )
    return PlainBuild(project, out, rendered, built)


@dataclass(frozen=True)
class SecretBake:
    """A bake of a project whose play uses secret `api_token` (a value of its own), in a home of its
    own, and every command line seen on this machine while it ran."""

    project: Path
    env: dict[str, str]
    home: Path
    result: subprocess.CompletedProcess[str]
    started: float
    seen: frozenset[bytes]
    rounds: int

    @property
    def token(self) -> str:
        return self.env["BAKERY_E2E_TOKEN"]


def secret_bake(e2e_project: Path, tmp: pytest.TempPathFactory, image: str, tasks: str, *args: str) -> SecretBake:
    root = tmp.mktemp(image)
    home = own_home(e2e_project, root / "home")
    project, env = secret_project(root / image, home, image, tasks)
    started = time.time()
    sampler = CommandLines()
    sampler.start()
    try:
        result = run_bakery(project, env, "build", image, "--target", "local", *args)
    finally:
        sampler.stop()
    return SecretBake(project, env, home, result, started, frozenset(sampler.seen), sampler.rounds)


LEAKY_TASKS = (
    "    - name: Write the token into the image\n      ansible.builtin.copy:\n"
    "        dest: /etc/leaked-token\n        content: \"{{ api_token }}\"\n        mode: '0600'\n"
)


@pytest.fixture(scope="session", autouse=True)
def lane(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    e2e_project: Path,
    e2e_env: dict[str, str],
    base_disk: None,
) -> Iterator[Lane]:
    tmp = tmp_path_factory
    jobs: dict[str, Callable[[], Any]] = {}  # in the order they start
    jobs["plain_build"] = lambda: build_plain_render(e2e_project, e2e_env, tmp)
    jobs["leaky_bake"] = lambda: secret_bake(e2e_project, tmp, "leaky", LEAKY_TASKS)
    jobs["rollout_images"] = lambda: make_rollout_images(
        tmp, e2e_project, e2e_env, lane.promise("web_image"), lane.promise("web_rebake"), lane
    )
    lane = Lane(jobs)
    wanted = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    for name in jobs:
        if name in wanted:
            lane.start(name)
    yield lane
    lane.close()


@pytest.fixture(scope="session")
def plain_build(lane: Lane) -> PlainBuild:
    result: PlainBuild = lane.result("plain_build")
    return result


@pytest.fixture(scope="session")
def leaky_bake(lane: Lane) -> SecretBake:
    result: SecretBake = lane.result("leaky_bake")
    return result


# --- rollouts of local groups (tests/e2e/test_local_rollout.py) --------------------------------

UNHEALTHY_PLAYBOOK = """\
- name: A web server whose health check fails
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Make /healthz answer 500
      ansible.builtin.replace:
        path: /etc/nginx/sites-available/default
        regexp: 'return 200 "ok '
        replace: 'return 500 "broken '
"""


@dataclass(frozen=True)
class RolloutImages:
    """A project of its own (its own home, so that the bake tests' catalog is not touched) with
    two local groups, and three versions of web in its catalog: `one` and `two` serve pages that
    show their version, `bad` answers /healthz with 500. `bad_build` is what `bakery build` of
    `bad` answered: its bake succeeded, its image tests failed it, and it stays recorded as tested
    and failed (so that rolling it out takes --allow-unverified)."""

    project: Path
    env: dict[str, str]
    ports: dict[str, int]  # front port per group
    one: str
    two: str
    bad: str
    bad_build: subprocess.CompletedProcess[str]

    @property
    def home(self) -> Path:
        return self.project / ".bakery"


def _rollout_config(ports: dict[str, int]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "images.yaml").read_text())
    health = {"path": "/healthz", "port": 80, "grace_seconds": 0, "timeout_seconds": 75, "healthy_threshold": 2}
    data["groups"] = {
        "web-local": {
            "image": "web",
            "target": "local",
            "local": {"size": 2, "port": ports["web-local"], "memory": 512, "cpus": 1},
            "strategy": {"type": "canary", "canary_size": 1, "batch_size": 1, "bake_seconds": 5},
            "health": health,
        },
        "web-blue": {
            "image": "web",
            "target": "local",
            "local": {"size": 1, "port": ports["web-blue"], "memory": 512, "cpus": 1},
            "strategy": {"type": "blue-green", "retention_seconds": 3600},
            "health": health,
        },
    }
    return data


def _import_bake(record: dict[str, Any], project: Path, home: Path, staging: Path) -> None:
    """A local bake of `project` recorded in `home`'s catalog as it was made: its files, and its
    attestation in `home`'s registry (signed with the session's key, copied along by the caller)."""
    from bakery.core.catalog import ImageRecord
    from bakery.providers.local.store import LocalStore

    staged = staging / str(record["version"])
    shutil.copytree(Path(record["locations"][0]), staged)
    attestation = Path("registry", "attestations", "local", record["name"], f"{record['version']}.dsse.json")
    (home / attestation).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / ".bakery" / attestation, home / attestation)
    extra = record.get("extra", {})
    LocalStore(home / "catalog.sqlite", home / "images").record(
        ImageRecord(**{**record, "locations": ()}),
        staged,
        attestation=extra.get("attestation"),
        stamp=extra.get("stamp"),
    )


@pytest.fixture(scope="session")
def rollout_images(lane: Lane, web_image: Baked, web_rebake: Rebaked) -> RolloutImages:
    """Made once per session, beside the tests (see make_rollout_images)."""
    images: RolloutImages = lane.result("rollout_images")
    return images


def make_rollout_images(
    tmp_path_factory: pytest.TempPathFactory,
    e2e_project: Path,
    e2e_env: dict[str, str],
    web_image: Future[Any],
    web_rebake: Future[Any],
    lane: Lane,
) -> RolloutImages:
    """`bad` a bake with playbooks/unhealthy.yml added (version 0.9: below the others, so it is
    never the newest), made first, while the session's bakes go on; then `one` and `two`, the
    session's two bakes of web (web_image and web_rebake: each page shows its own version), copied
    into this project's catalog once they exist. The base disk is the session's, copied."""
    from bakery.providers.local.boot import free_port

    root = tmp_path_factory.mktemp("rollouts")
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "playbooks" / "unhealthy.yml").write_text(UNHEALTHY_PLAYBOOK)
    ports = {"web-local": free_port(), "web-blue": free_port()}
    config = _rollout_config(ports)
    config["images"]["web"]["version"] = "0.9"
    config["images"]["web"]["playbooks"].append("playbooks/unhealthy.yml")
    (root / "images.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git = ["git", "-C", str(root), "-c", "user.email=t@localhost", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / ".gitignore").write_text(".bakery/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "rollout project: web whose health check fails"], check=True)

    home = root / ".bakery"
    shutil.copytree(e2e_project / ".bakery" / "cache" / "base", home / "cache" / "base")
    # Signed as they were: the session's signing key (this project lists none: its workspace key
    # is trusted) and each bake's attestation come along into this project's workspace and registry.
    # The session's first bake makes that key within seconds of its start (its public half last).
    session_key = e2e_project / ".bakery" / "keys" / "signing.key"
    while not session_key.with_name("signing.key.pub").exists():
        if web_image.done():
            web_image.result()  # raises what failed the session's bake
            raise AssertionError(f"the session's bake made no signing key at {session_key}")
        time.sleep(1)
    shutil.copytree(session_key.parent, home / "keys")
    # Its image tests fail it (exit 1), and it stays recorded: tests/e2e/test_image_tests.py checks
    # that; the rollouts deploy it on the record (--allow-unverified) to see its health gate fail.
    made = run_bakery(root, e2e_env, "build", "web", "--target", "local", "--json")
    assert made.returncode in (0, 1) and made.stdout, made.stderr[-3000:]
    bad = json.loads(made.stdout)["record"]["version"]

    one, two = web_image.result(), web_rebake.result()
    staging = tmp_path_factory.mktemp("staged")
    with lane.image_files:
        for baked in (one.record, two.record):
            _import_bake(baked, e2e_project, home, staging)
    return RolloutImages(root, dict(e2e_env), ports, f"web@{one.version}", f"web@{two.version}", f"web@{bad}", made)


def group_processes(home: Path, group: str) -> list[str]:
    """Command lines of the live processes (qemu, haproxy) that name the group's directory."""
    marker = f"{home / 'groups' / group}/"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and marker in line and int(entry.name) != os.getpid():
            found.append(line)
    return found
