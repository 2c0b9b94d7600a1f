"""Signing keys: `generate`, the trusted keys of images.yaml, and which signer this machine uses."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.signer import CryptoSigner

from bakery.config.models import Trust
from bakery.errors import ConfigError, UsageError
from bakery.trust.keys import WORKSPACE_KEY, generate, load_signer, load_trusted, public_pem
from bakery.trust.signing import PAYLOAD_TYPE, sign, signer_public_key, verify
from bakery.workspace import Workspace


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def trust(**fields: Any) -> Trust:
    return Trust.model_validate(fields)


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / ".bakery")


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return tmp_path / "project"


def signer_for(t: Trust, root: Path, workspace: Workspace, **kwargs: Any) -> Any:
    return load_signer(t, root=root, workspace=workspace, environ=kwargs.pop("environ", {}), **kwargs)


def private_pem(signer: CryptoSigner) -> str:
    return signer.private_bytes.decode()


# ------------------------------------------------------------------------------------- generate


def test_generate_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ops-2026.key"

    key = generate(path)

    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert (tmp_path / "keys" / "ops-2026.key.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert key.name == "ops-2026"
    assert key.key.keytype == "ed25519"
    assert {p.name for p in path.parent.iterdir()} == {"ops-2026.key", "ops-2026.key.pub"}  # no temporary file


def test_generate_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    path = tmp_path / "ops.key"
    first = generate(path)
    before = path.read_bytes()

    with pytest.raises(UsageError, match=f"^{path} exists: bakery does not overwrite a key$"):
        generate(path)

    assert path.read_bytes() == before
    assert generate(path, overwrite=True).keyid != first.keyid


def test_generate_refuses_when_only_the_public_half_exists(tmp_path: Path) -> None:
    (tmp_path / "ops.key.pub").write_text("someone's key\n")

    with pytest.raises(UsageError, match=r"ops\.key\.pub exists"):
        generate(tmp_path / "ops.key")

    assert not (tmp_path / "ops.key").exists()


# ------------------------------------------------------------------------------------- load_trusted


def test_trusted_keys_come_from_a_file_relative_to_the_project_or_the_pem_itself(
    tmp_path: Path, root: Path, workspace: Workspace
) -> None:
    ops = generate(root / "keys" / "ops.key")
    ci = CryptoSigner.generate_ecdsa()
    config = trust(
        keys=[{"name": "ops", "public_key": "keys/ops.key.pub"}, {"name": "ci", "public_key": public_pem(ci)}]
    )

    keys = load_trusted(config, root=root, workspace=workspace)

    assert [(k.name, k.keyid) for k in keys] == [("ops", ops.keyid), ("ci", ci.public_key.keyid)]


def test_a_trusted_key_path_may_start_with_a_tilde(
    tmp_path: Path, root: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ops = generate(tmp_path / "home" / "ops.key")

    keys = load_trusted(trust(keys=[{"name": "ops", "public_key": "~/ops.key.pub"}]), root=root, workspace=workspace)

    assert keys[0].keyid == ops.keyid


def test_a_missing_trusted_key_file_names_the_entry_the_path_and_the_fix(root: Path, workspace: Workspace) -> None:
    config = trust(keys=[{"name": "ops-2026", "public_key": "keys/ops.pub"}])

    with pytest.raises(ConfigError) as caught:
        load_trusted(config, root=root, workspace=workspace)

    assert (
        caught.value.message
        == f"trust.keys[0] (ops-2026): cannot read {root / 'keys/ops.pub'}: No such file or directory"
    )
    assert caught.value.hint is not None
    assert "bakery keys generate --out" in caught.value.hint and "bakery keys export" in caught.value.hint


def test_a_private_key_listed_as_trusted_is_refused_without_showing_it(root: Path, workspace: Workspace) -> None:
    secret = private_pem(CryptoSigner.generate_ed25519())
    config = trust(keys=[{"name": "ops", "public_key": secret}])

    with pytest.raises(ConfigError) as caught:
        load_trusted(config, root=root, workspace=workspace)

    assert caught.value.message == "trust.keys[0] (ops): its PEM is a private key"
    assert secret.splitlines()[1] not in f"{caught.value.message} {caught.value.hint}"


def test_a_file_that_is_not_a_public_key_is_refused(root: Path, workspace: Workspace) -> None:
    (root / "ops.pub").write_text("ssh-ed25519 AAAAC3Nza me@host\n")

    with pytest.raises(ConfigError, match=r"^trust.keys\[0\] \(ops\): .*ops.pub is not a PEM public key"):
        load_trusted(trust(keys=[{"name": "ops", "public_key": "ops.pub"}]), root=root, workspace=workspace)


def test_a_key_of_a_kind_bakery_does_not_trust_is_refused(root: Path, workspace: Workspace) -> None:
    odd = ec.generate_private_key(ec.SECP256K1()).public_key()
    pem = odd.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    with pytest.raises(ConfigError, match=r"its PEM is an EC secp256k1 key; bakery trusts ed25519, ECDSA P-256/P-384"):
        load_trusted(trust(keys=[{"name": "odd", "public_key": pem}]), root=root, workspace=workspace)


def test_the_same_key_listed_twice_is_refused(root: Path, workspace: Workspace) -> None:
    generate(root / "ops.key")
    config = trust(
        keys=[{"name": "ops", "public_key": "ops.key.pub"}, {"name": "ops-again", "public_key": "ops.key.pub"}],
        threshold=2,
    )

    with pytest.raises(ConfigError, match=r"^trust.keys\[1\] \(ops-again\) is the same key as ops "):
        load_trusted(config, root=root, workspace=workspace)


def test_without_trust_keys_the_workspace_key_is_trusted_once_it_exists(root: Path, workspace: Workspace) -> None:
    assert load_trusted(trust(), root=root, workspace=workspace) == []

    made = generate(workspace.root / WORKSPACE_KEY)

    keys = load_trusted(trust(), root=root, workspace=workspace)
    assert [(k.name, k.keyid) for k in keys] == [("workspace key", made.keyid)]


# ------------------------------------------------------------------------------------- load_signer


def test_the_environment_key_beats_the_configured_one(tmp_path: Path, root: Path, workspace: Workspace) -> None:
    env_signer = CryptoSigner.generate_ed25519()
    configured = generate(root / "ci.key")
    config = trust(signing={"key_file": "ci.key"})

    from_env = signer_for(config, root, workspace, environ={"BAKERY_SIGNING_KEY": private_pem(env_signer)})
    from_file = signer_for(config, root, workspace)

    assert from_env.public_key.keyid == env_signer.public_key.keyid
    assert signer_public_key(from_env).name == "$BAKERY_SIGNING_KEY"
    assert from_file.public_key.keyid == configured.keyid
    assert signer_public_key(from_file).name == "ci.key"
    assert not (workspace.root / WORKSPACE_KEY).exists()


def test_the_environment_may_name_a_key_file_or_hold_a_one_line_pem(
    tmp_path: Path, root: Path, workspace: Workspace
) -> None:
    made = generate(tmp_path / "env.key")
    one_line = (tmp_path / "env.key").read_text().replace("\n", "\\n")

    by_path = signer_for(trust(), root, workspace, environ={"BAKERY_SIGNING_KEY": str(tmp_path / "env.key")})
    by_text = signer_for(trust(), root, workspace, environ={"BAKERY_SIGNING_KEY": one_line})

    assert by_path.public_key.keyid == by_text.public_key.keyid == made.keyid


def test_an_environment_key_that_is_neither_pem_nor_a_path_is_not_echoed(root: Path, workspace: Workspace) -> None:
    garbage = "MC4CAQAwBQYDK2VwBCIEIPRIVATEMATERIAL\nMORE"

    with pytest.raises(UsageError) as caught:
        signer_for(trust(), root, workspace, environ={"BAKERY_SIGNING_KEY": garbage})

    assert caught.value.message.startswith("$BAKERY_SIGNING_KEY is neither a PEM private key")
    assert "PRIVATEMATERIAL" not in f"{caught.value.message} {caught.value.hint}"


def test_a_missing_configured_key_file_is_a_config_error(root: Path, workspace: Workspace) -> None:
    with pytest.raises(ConfigError, match=r"^trust.signing.key_file: cannot read .*/project/nope.key: No such file"):
        signer_for(trust(signing={"key_file": "nope.key"}), root, workspace)


def test_a_passphrase_protected_key_says_so(tmp_path: Path, root: Path, workspace: Workspace) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (root / "locked.key").write_bytes(pem)
    (root / "locked.key").chmod(0o600)

    with pytest.raises(ConfigError, match=r"locked.key\) is encrypted with a passphrase"):
        signer_for(trust(signing={"key_file": "locked.key"}), root, workspace)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o602])
def test_a_key_file_others_can_read_is_refused_with_the_chmod_that_fixes_it(
    root: Path, workspace: Workspace, mode: int
) -> None:
    generate(root / "ops.key")
    (root / "ops.key").chmod(mode)

    with pytest.raises(ConfigError) as refused:
        signer_for(trust(signing={"key_file": "ops.key"}), root, workspace)

    assert f"the signing key {root / 'ops.key'} can be read or written by other users" in refused.value.message
    assert refused.value.hint == f"chmod 600 {root / 'ops.key'}"
    (root / "ops.key").chmod(0o600)
    assert signer_for(trust(signing={"key_file": "ops.key"}), root, workspace) is not None


def test_checking_commands_never_make_a_workspace_key(root: Path, workspace: Workspace) -> None:
    with pytest.raises(UsageError, match="no signing key"):
        signer_for(trust(), root, workspace, create=False)
    assert not (workspace.root / "keys").exists()


def test_the_workspace_key_is_made_once_and_then_reused(root: Path, workspace: Workspace) -> None:
    notes: list[str] = []

    first = signer_for(trust(), root, workspace, note=notes.append)
    second = signer_for(trust(), root, workspace, note=notes.append)

    path = workspace.root / WORKSPACE_KEY
    assert first.public_key.keyid == second.public_key.keyid
    assert signer_public_key(first).name == "workspace key"
    assert mode(path) == 0o600
    assert notes == [
        f"made a signing key for this workspace: {path} (keyid {first.public_key.keyid[:8]}…); "
        "list its .pub under trust.keys to trust it elsewhere"
    ]
    envelope = sign(b"{}", PAYLOAD_TYPE, [first])
    assert verify(envelope, load_trusted(trust(), root=root, workspace=workspace), 1, payload_type=PAYLOAD_TYPE)


def test_without_create_a_missing_workspace_key_is_a_usage_error(root: Path, workspace: Workspace) -> None:
    with pytest.raises(UsageError, match=r"^no signing key: none is configured and this workspace has none yet$"):
        signer_for(trust(), root, workspace, create=False)

    assert not workspace.root.exists()


@pytest.mark.parametrize("make", [CryptoSigner.generate_ed25519, CryptoSigner.generate_ecdsa])
def test_the_exported_public_pem_is_what_trust_keys_accepts(
    make: Any, tmp_path: Path, root: Path, workspace: Workspace
) -> None:
    signer = make()
    (tmp_path / "signer.key").write_bytes(signer.private_bytes)
    (tmp_path / "signer.key").chmod(0o600)
    loaded = signer_for(trust(), root, workspace, environ={"BAKERY_SIGNING_KEY": str(tmp_path / "signer.key")})

    keys = load_trusted(trust(keys=[{"name": "it", "public_key": public_pem(loaded)}]), root=root, workspace=workspace)

    assert keys[0].keyid == signer.public_key.keyid
    assert verify(sign(b"{}", PAYLOAD_TYPE, [loaded]), keys, 1, payload_type=PAYLOAD_TYPE).signed_by == ("it",)
