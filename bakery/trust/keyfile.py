"""A signer whose private key is a PEM: a key file, or the text of $BAKERY_SIGNING_KEY.

Imported only when something signs: securesystemslib.signer loads boto3 and google-cloud-kms.
The key's text is never put in a message.
"""

from __future__ import annotations

from typing import Any

from securesystemslib.signer import CryptoSigner

from bakery.errors import ConfigError, UsageError


class FileSigner(CryptoSigner):
    """A CryptoSigner that knows how messages name it (its file, or where its PEM came from)."""

    def __init__(self, private_key: Any, *, name: str) -> None:
        super().__init__(private_key)
        self.name = name


def load(data: bytes, *, name: str, where: str, error: type[UsageError | ConfigError]) -> FileSigner:
    """The signer for the PEM private key `data`, called `name`; `where` says in errors where the
    PEM came from. Raises `error` for an encrypted key, a PEM that is no private key, or a key
    type bakery cannot sign with."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        private_key = load_pem_private_key(data, password=None)
    except TypeError:  # a passphrase-protected key
        raise error(
            f"{where} is encrypted with a passphrase; bakery reads unencrypted keys (keep the file at mode 0600)",
            hint="decrypt it (`openssl pkey -in KEY -out PLAIN.key`), or sign through AWS or GCP KMS",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise error(
            f"{where} is not a PEM private key",
            hint="make one with `bakery keys generate --out FILE` (ed25519, PKCS#8 PEM)",
        ) from None
    try:
        return FileSigner(private_key, name=name)
    except ValueError:  # a key type securesystemslib cannot sign with (DSA, ed448, an odd curve)
        raise error(
            f"{where} is a key bakery cannot sign with; it signs with ed25519, ECDSA or RSA keys",
            hint="make one with `bakery keys generate --out FILE`",
        ) from None
