"""Secrets of an image: read from the environment when a bake starts, handed to Ansible through
process environments only, masked in logs, and searched for in what was built.

A value travels one way: bakery's environment -> Packer's (one BAKERY_SECRET_<name> variable per
secret, set by bakery for that child alone) -> ansible-playbook's, which Packer's ansible
provisioner starts with its own environment. The rendered directory holds `ansible/bakery-secrets.yml`,
extra vars that look each value up in that environment when a play uses it: no command line, file
or log carries a value, and a render stays buildable by hand (`BAKERY_SECRET_x=... packer build DIR`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bakery.errors import BuildError, ConfigError, UsageError
from bakery.runner import secret_forms as forms

if TYPE_CHECKING:
    from bakery.config.load import EffectiveImage

# A fixed, documented prefix: a render must be buildable by hand. Nothing else can collide with it,
# since runner.child_env passes no variable of bakery's own environment under that name.
ENV_PREFIX = "BAKERY_SECRET_"
VARS_FILE = "bakery-secrets.yml"  # in the rendered ansible/ directory
# Fewer bytes than this match somewhere in any disk by chance: such a value is not searched for.
SCAN_MIN_BYTES = 8
CHUNK_BYTES = 8 << 20
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def secret_values(eff: EffectiveImage) -> dict[str, str]:
    """Secrets named in images.yaml, read from the environment now; UsageError if one is unset."""
    missing = [env for env in eff.image.secrets.values() if env not in os.environ]
    if missing:
        raise UsageError(
            f"image '{eff.name}' needs the environment variable(s) {', '.join(sorted(missing))}",
            hint="secrets are injected at build time and never written to images.yaml or the image",
        )
    return {var: os.environ[env] for var, env in eff.image.secrets.items()}


def env_name(name: str) -> str:
    """The variable of ansible-playbook's environment that carries secret `name`."""
    return ENV_PREFIX + name


def ansible_env(values: Mapping[str, str]) -> dict[str, str]:
    """What to add to Packer's environment so that ansible-playbook receives `values` (name -> value)."""
    return {env_name(name): value for name, value in values.items()}


def vars_file(names: Iterable[str]) -> str:
    """The text of ansible/bakery-secrets.yml, passed to ansible-playbook as `--extra-vars @FILE`.

    Each secret is an extra var, as when values travelled on the command line, so it still wins
    over every other variable and `{{ db_password }}` reads as before. Its value is looked up in
    ansible-playbook's environment when a play uses it; a lookup's result is never templated
    again (a `{{` in a password stays literal), and an unset variable fails the task naming it.
    Raises ConfigError for a name Ansible could not use as a variable.
    """
    entries: dict[str, str] = {}
    for name in sorted(names):
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"secret name {name!r} is not an Ansible variable name",
                hint="use letters, digits and underscores, not starting with a digit",
            )
        hint = f"secret {name}: {env_name(name)} is not set in the environment of ansible-playbook"
        entries[name] = f"{{{{ lookup('ansible.builtin.env', '{env_name(name)}', default=undef(hint='{hint}')) }}}}"
    header = (
        "# Written by bakery: each secret is read from ansible-playbook's environment when a play\n"
        f"# uses it ({ENV_PREFIX}<name>, which `bakery build` sets); no value is ever written here.\n"
    )
    return header + yaml.safe_dump(entries, sort_keys=True, width=1000)


def needles(values: Mapping[str, str]) -> tuple[dict[str, tuple[bytes, ...]], tuple[str, ...]]:
    """The UTF-8 byte strings to search a built image for, per secret name, and the names of the
    secrets too short (under SCAN_MIN_BYTES) to be searched for without matching by chance."""
    wanted: dict[str, tuple[bytes, ...]] = {}
    short: list[str] = []
    for name, value in sorted(values.items()):
        strings = tuple(sorted(b for b in (f.encode() for f in forms(value)) if len(b) >= SCAN_MIN_BYTES))
        if strings:
            wanted[name] = strings
        else:
            short.append(name)
    return wanted, tuple(short)


def search(path: Path, wanted: Mapping[str, Iterable[bytes]], *, chunk_bytes: int = CHUNK_BYTES) -> str | None:
    """The name of a secret one of whose byte strings occurs in the file at `path`, or None.

    The file is streamed in chunks that overlap by the longest byte string less one byte, so a
    value split across two reads is found too.
    """
    pairs = [(name, needle) for name, strings in wanted.items() for needle in strings if needle]
    if not pairs:
        return None
    overlap = max(len(needle) for _, needle in pairs) - 1
    carried = b""
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            window = carried + chunk
            for name, needle in pairs:
                if needle in window:
                    return name
            carried = window[-overlap:] if overlap else b""
    return None


def leaked(eff: EffectiveImage, name: str, where: str, *, log_path: str | None = None) -> BuildError:
    """The error for secret `name` found in the built `where` (named with its variable, never its value)."""
    return BuildError(
        f"secret '{name}' (from ${eff.image.secrets[name]}) was found in the built {where}; refusing to record it",
        log_path=log_path,
        hint="a playbook wrote the value into the image (maybe into a file it removed later, whose blocks "
        "still hold it): keep only what derives from it (a hash), or provide it to instances at boot",
    )
