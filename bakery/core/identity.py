"""Who is acting: user@host at a terminal, or the CI job's identity taken from its environment."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Mapping


def _github(e: Mapping[str, str]) -> str:
    return f"github:{e.get('GITHUB_ACTOR', '?')}@{e.get('GITHUB_REPOSITORY', '?')}#{e.get('GITHUB_RUN_ID', '?')}"


def _gitlab(e: Mapping[str, str]) -> str:
    return f"gitlab:{e.get('GITLAB_USER_LOGIN', '?')}@{e.get('CI_PROJECT_PATH', '?')}#{e.get('CI_JOB_ID', '?')}"


def _jenkins(e: Mapping[str, str]) -> str:
    return f"jenkins:{e.get('JOB_NAME', '?')}#{e.get('BUILD_NUMBER', '?')}"


def _buildkite(e: Mapping[str, str]) -> str:
    return f"buildkite:{e.get('BUILDKITE_PIPELINE_SLUG', '?')}#{e.get('BUILDKITE_BUILD_NUMBER', '?')}"


# (the variable that says "this is that CI", how to name the actor from its environment)
_CI: tuple[tuple[str, Callable[[Mapping[str, str]], str]], ...] = (
    ("GITHUB_ACTIONS", _github),
    ("GITLAB_CI", _gitlab),
    ("JENKINS_URL", _jenkins),
    ("BUILDKITE", _buildkite),
)


def who(environ: Mapping[str, str] | None = None) -> str:
    """'github:alice@org/repo#123' in a CI job, else 'user@host'."""
    env = os.environ if environ is None else environ
    for flag, name in _CI:
        if env.get(flag):
            return name(env)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"
