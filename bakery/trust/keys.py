"""Signing keys: making one, the trusted public keys of images.yaml, and this machine's signer.

Private keys are PEM files (PKCS#8, ed25519 by default) that only their owner can read; their
text is never put in a message or a log. A KMS key never leaves its KMS (bakery/kms.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakery.errors import ConfigError, UsageError
from bakery.trust.signing import PublicKey, short
from bakery.workspace import Workspace

if TYPE_CHECKING:
    from securesystemslib.signer import Signer, SSlibKey

    from bakery.config.trust_models import Trust  # imported through bakery.models, which it builds on
    from bakery.trust.keyfile import FileSigner

WORKSPACE_KEY = "keys/signing.key"  # under Workspace.root
WORKSPACE_KEY_NAME = "workspace key"
ENV_KEY = "BAKERY_SIGNING_KEY"
_PEM = "-----BEGIN"
_HOW_TO_TRUST = (
    "give a public key PEM file (relative to images.yaml) or the PEM itself: "
    "`bakery keys generate --out FILE` writes FILE.pub; for a KMS key, `bakery keys export` prints it"
)


def generate(path: Path, *, overwrite: bool = False) -> PublicKey:
    """A new ed25519 key: the private PEM at `path` (mode 0600, its directory 0700 if made now),
    the public PEM at `path`.pub. Returns the public key (its keyid is what others trust).
    Raises UsageError if either file exists and not `overwrite`."""
    try:
        return _generate(path, overwrite=overwrite)
    except FileExistsError as exc:
        raise UsageError(
            f"{exc.filename2 or exc.filename} exists: bakery does not overwrite a key",  # os.link's target is filename2
            hint="choose another file, or remove this one first if you mean to replace the key "
            "(what it signed will then verify only where its old .pub is still trusted)",
        ) from None


def load_trusted(trust: Trust, *, root: Path, workspace: Workspace) -> list[PublicKey]:
    """The public keys whose signatures count: images.yaml's trust.keys (a PEM file relative to
    `root`, ~ expanded, or the PEM itself; ed25519, ECDSA P-256/P-384 or RSA), else the workspace
    key's public half if there is one. Raises ConfigError naming the entry, the file and the fix."""
    keys: list[PublicKey] = []
    for i, entry in enumerate(trust.trusted):
        where = f"trust.keys[{i}] ({entry.name})"
        text = entry.public_key.strip()
        if text.startswith(_PEM):
            key = _public_key(text.encode(), where=where, source="its PEM")
        else:
            path = _path(text, root)
            key = _public_key(_read(path, where=where), where=where, source=str(path))
        same = next((k for k in keys if k.keyid == key.keyid), None)
        if same is not None:
            raise ConfigError(
                f"{where} is the same key as {same.name} ({short(key.keyid)})",
                hint="list each key once: a key counts once towards trust.threshold",
            )
        keys.append(PublicKey(entry.name, key.keyid, key))
    if keys or trust.trusted:
        return keys
    pub = _pub_path(workspace.root / WORKSPACE_KEY)
    if not pub.exists():
        return []
    key = _public_key(_read(pub, where=WORKSPACE_KEY_NAME), where=WORKSPACE_KEY_NAME, source=str(pub))
    return [PublicKey(WORKSPACE_KEY_NAME, key.keyid, key)]


def load_signer(
    trust: Trust,
    *,
    root: Path,
    workspace: Workspace,
    clients: Callable[..., Any] | None = None,
    environ: Mapping[str, str] = os.environ,
    create: bool = True,
    note: Callable[[str], None] = lambda _t: None,
) -> Signer:
    """This machine's signer, the first of: $BAKERY_SIGNING_KEY (a PEM or its path),
    trust.signing.key_file, trust.signing.aws_kms, trust.signing.gcp_kms, the workspace key
    (made on first use when `create`, and `note`d). `clients` makes KMS clients (tests point it
    at moto or a fake). Raises UsageError or ConfigError saying what is wrong and how to fix it,
    ProviderError when a KMS refuses."""
    signing = trust.signing
    if environ.get(ENV_KEY, "").strip():
        return _from_environment(environ[ENV_KEY])
    if signing.key_file is not None:
        path = _path(signing.key_file, root)
        return _file_signer(path, name=signing.key_file, where="trust.signing.key_file", error=ConfigError)
    if signing.aws_kms is not None:
        from bakery.trust.kms import AwsKmsSigner

        return AwsKmsSigner(signing.aws_kms, clients=clients, environ=environ)
    if signing.gcp_kms is not None:
        from bakery.trust.kms import GcpKmsSigner

        return GcpKmsSigner(signing.gcp_kms, clients=clients)
    return _workspace_signer(workspace, create=create, note=note)


def public_pem(signer: Signer) -> str:
    """The signer's public key as a PEM (SubjectPublicKeyInfo): what trust.keys lists."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from securesystemslib.signer import SSlibKey

    key = signer.public_key
    if not isinstance(key, SSlibKey):
        raise TypeError(f"bakery signs with SSlibKey keys, not {type(key).__name__}")
    if key.keytype != "ed25519":
        return str(key.keyval["public"]).strip() + "\n"  # securesystemslib keeps these as PEM already
    raw = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.keyval["public"]))
    return raw.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


# ------------------------------------------------------------------------------------- internals


def _path(text: str, root: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else root / path


def _pub_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _read(path: Path, *, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}", hint=_HOW_TO_TRUST) from None


def _public_key(data: bytes, *, where: str, source: str) -> SSlibKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    if b"PRIVATE KEY" in data:  # never echo it: say where it is and what to list instead
        raise ConfigError(
            f"{where}: {source} is a private key",
            hint="list the public half (the .pub beside it, or `bakery keys export`) and keep the private key secret",
        )
    try:
        key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{where}: {source} is not a PEM public key ({exc})", hint=_HOW_TO_TRUST) from None
    curve = key.curve if isinstance(key, ec.EllipticCurvePublicKey) else None
    if not (
        isinstance(key, ed25519.Ed25519PublicKey | rsa.RSAPublicKey) or isinstance(curve, ec.SECP256R1 | ec.SECP384R1)
    ):
        kind = f"an EC {curve.name} key" if curve is not None else f"a {type(key).__name__}"
        raise ConfigError(
            f"{where}: {source} is {kind}; bakery trusts ed25519, ECDSA P-256/P-384 and RSA keys",
            hint=_HOW_TO_TRUST,
        )
    return SSlibKey.from_crypto(key)


def _generate(path: Path, *, overwrite: bool) -> PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bakery.trust.keyfile import FileSigner

    signer = FileSigner(Ed25519PrivateKey.generate(), name=path.stem)
    pub = _pub_path(path)
    existing = [] if overwrite else [p for p in (path, pub) if p.exists()]
    if existing:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(existing[0]))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(path, signer.private_bytes, mode=0o600, overwrite=overwrite)  # FileExistsError: another got there first
    _write(pub, public_pem(signer).encode(), mode=0o644, overwrite=True)
    return PublicKey(signer.name, signer.public_key.keyid, signer.public_key)


def _write(path: Path, data: bytes, *, mode: int, overwrite: bool) -> None:
    """Write `data` to `path` whole or not at all, with `mode` from the first byte on. Without
    `overwrite`, raises FileExistsError if the file exists (checked atomically: a hard link)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _file_signer(path: Path, *, name: str, where: str, error: type[UsageError | ConfigError]) -> FileSigner:
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise error(
            f"{where}: cannot read {path}: {exc.strerror or exc}",
            hint="give an ed25519 private key PEM; `bakery keys generate --out FILE` makes one",
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise error(
            f"{where}: the signing key {path} can be read or written by other users (mode {stat.filemode(mode)})",
            hint=f"chmod 600 {path}",
        )
    from bakery.trust import keyfile

    return keyfile.load(data, name=name, where=f"{where} ({path})", error=error)


def _from_environment(value: str) -> FileSigner:
    text = value.strip()
    if "\\n" in text and "\n" not in text:  # a PEM pasted into a one-line CI secret
        text = text.replace("\\n", "\n")
    if text.startswith(_PEM):
        from bakery.trust import keyfile

        return keyfile.load(text.encode(), name=f"${ENV_KEY}", where=f"${ENV_KEY}", error=UsageError)
    if "\n" in text or "PRIVATE" in text or len(text) > 1024:  # key material: never echo it
        raise UsageError(
            f"${ENV_KEY} is neither a PEM private key (-----BEGIN PRIVATE KEY-----) nor the path of one",
            hint="set it to the key file's path, or to the whole PEM text",
        )
    path = Path(text).expanduser()
    return _file_signer(path, name=str(path), where=f"${ENV_KEY}", error=UsageError)


def _workspace_signer(workspace: Workspace, *, create: bool, note: Callable[[str], None]) -> FileSigner:
    path = workspace.root / WORKSPACE_KEY
    if not path.exists():
        if not create:
            raise UsageError(
                "no signing key: none is configured and this workspace has none yet",
                hint=f"set ${ENV_KEY}, or trust.signing in images.yaml, or run `bakery keys generate --out FILE`",
            )
        try:
            made = _generate(path, overwrite=False)
        except FileExistsError:  # another bakery made it a moment ago: use that one
            pass
        else:
            note(
                f"made a signing key for this workspace: {path} (keyid {short(made.keyid)}); "
                f"list its .pub under trust.keys to trust it elsewhere"
            )
    return _file_signer(path, name=WORKSPACE_KEY_NAME, where=WORKSPACE_KEY_NAME, error=UsageError)
