"""Who is acting: user@host at a terminal, or the CI job's identity taken from its environment,
only where that CI's own markers say so (GITHUB_ACTIONS=true with its run id, and the like): a
GITHUB_ACTOR set by hand on a workstation does not make its user someone else."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Mapping

from bakery.core.text import shown


def _github(e: Mapping[str, str]) -> str:
    return f"github:{e.get('GITHUB_ACTOR', '?')}@{e.get('GITHUB_REPOSITORY', '?')}#{e.get('GITHUB_RUN_ID', '?')}"


def _gitlab(e: Mapping[str, str]) -> str:
    return f"gitlab:{e.get('GITLAB_USER_LOGIN', '?')}@{e.get('CI_PROJECT_PATH', '?')}#{e.get('CI_JOB_ID', '?')}"


def _jenkins(e: Mapping[str, str]) -> str:
    return f"jenkins:{e.get('JOB_NAME', '?')}#{e.get('BUILD_NUMBER', '?')}"


def _buildkite(e: Mapping[str, str]) -> str:
    return f"buildkite:{e.get('BUILDKITE_PIPELINE_SLUG', '?')}#{e.get('BUILDKITE_BUILD_NUMBER', '?')}"


# (what that CI sets to say "this is a job of mine", the job's id it always sets, how to name the actor)
_CI: tuple[tuple[tuple[str, str], str, Callable[[Mapping[str, str]], str]], ...] = (
    (("GITHUB_ACTIONS", "true"), "GITHUB_RUN_ID", _github),
    (("GITLAB_CI", "true"), "CI_JOB_ID", _gitlab),
    (("JENKINS_URL", ""), "BUILD_NUMBER", _jenkins),
    (("BUILDKITE", "true"), "BUILDKITE_BUILD_ID", _buildkite),
)


def person(identity: str) -> str:
    """Who `identity` (a `who()`) names, whatever the job: a CI identity without its run or build
    number ('github:alice@org/repo#123' -> 'github:alice@org/repo'), a 'user@host' as it is. Two
    jobs of one CI actor are one person; a person at a workstation and in CI are two identities."""
    if identity.startswith(_CI_NAMES) and "#" in identity:
        return identity.rsplit("#", 1)[0]
    return identity


_CI_NAMES = ("github:", "gitlab:", "jenkins:", "buildkite:")  # how each of _CI's identities starts


def who(environ: Mapping[str, str] | None = None) -> str:
    """'github:alice@org/repo#123' in a CI job, else 'user@host'."""
    env = os.environ if environ is None else environ
    for (flag, value), job, name in _CI:
        if env.get(flag) and (not value or env[flag] == value) and env.get(job):
            return shown(name(env))
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return shown(f"{user}@{socket.gethostname()}")
