"""A fake Cloud KMS v1 REST endpoint on 127.0.0.1: asymmetric signing keys made with cryptography,
and the two calls a signer makes, answered as Cloud KMS does.

    GET  /v1/{name=projects/*/locations/*/keyRings/*/cryptoKeys/*/cryptoKeyVersions/*}/publicKey
    POST /v1/{name=...cryptoKeyVersions/*}:asymmetricSign   {"name": ..., "digest": {"sha256": b64}}

(the paths of google-cloud-kms's REST transport, kms_v1/.../transports/rest_base.py). Bytes are
base64 in JSON, field names lowerCamelCase; errors are Google's JSON error body.

    with FakeKms() as kms:
        name = kms.add_key("projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1")
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

_VERSION = r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[^/:]+"
_PUBLIC_KEY = re.compile(rf"^/v1/(?P<name>{_VERSION})/publicKey$")
_SIGN = re.compile(rf"^/v1/(?P<name>{_VERSION}):asymmetricSign$")
_HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}
# algorithm -> (a new private key, the digest it signs)
_ALGORITHMS: dict[str, tuple[Any, str]] = {
    "EC_SIGN_P256_SHA256": (lambda: ec.generate_private_key(ec.SECP256R1()), "sha256"),
    "EC_SIGN_P384_SHA384": (lambda: ec.generate_private_key(ec.SECP384R1()), "sha384"),
    "RSA_SIGN_PKCS1_2048_SHA256": (lambda: rsa.generate_private_key(65537, 2048), "sha256"),
}


class _Error(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


class FakeKms:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, Any]] = {}  # version name -> (algorithm, private key)
        self._server: ThreadingHTTPServer | None = None
        #: every request, as (METHOD, path, JSON body or None), in arrival order
        self.requests: list[tuple[str, str, Any]] = []
        #: the next asymmetricSign answers with this signature instead (a KMS or proxy gone wrong)
        self.bad_signature: bytes | None = None

    def add_key(self, name: str, algorithm: str = "EC_SIGN_P256_SHA256") -> str:
        """A new key version `name` (projects/.../cryptoKeyVersions/N) with `algorithm`."""
        make, _digest = _ALGORITHMS[algorithm]
        with self._lock:
            self._keys[name] = (algorithm, make())
        return name

    def public_pem(self, name: str) -> str:
        return str(self._public_key(name)["pem"])

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "FakeKms is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKms:
        fake = self

        class Handler(_Handler):
            kms = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------------------------ the API

    def handle(self, method: str, path: str, body: Any) -> dict[str, Any]:
        path = path.split("?", 1)[0]
        with self._lock:
            self.requests.append((method, path, body))
        if method == "GET" and (match := _PUBLIC_KEY.match(path)):
            return self._public_key(match["name"])
        if method == "POST" and (match := _SIGN.match(path)):
            return self._sign(match["name"], body or {})
        raise _Error(404, "NOT_FOUND", f"{method} {path} is not a Cloud KMS method this fake knows")

    def _key(self, name: str) -> tuple[str, Any]:
        with self._lock:
            if name not in self._keys:
                raise _Error(404, "NOT_FOUND", f"CryptoKeyVersion {name} not found.")
            return self._keys[name]

    def _public_key(self, name: str) -> dict[str, Any]:
        algorithm, private = self._key(name)
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"pem": pem.decode(), "algorithm": algorithm, "name": name, "protectionLevel": "SOFTWARE"}

    def _sign(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        algorithm, private = self._key(name)
        wanted = _ALGORITHMS[algorithm][1]
        given = body.get("digest") or {}
        if list(given) != [wanted]:
            raise _Error(400, "INVALID_ARGUMENT", f"Digest type must match the algorithm: expected {wanted}")
        digest = base64.b64decode(given[wanted])
        prehashed = utils.Prehashed(_HASHES[wanted])
        if isinstance(private, ec.EllipticCurvePrivateKey):
            signature = private.sign(digest, ec.ECDSA(prehashed))  # DER, as Cloud KMS answers
        else:
            signature = private.sign(digest, padding.PKCS1v15(), prehashed)
        if self.bad_signature is not None:
            signature, self.bad_signature = self.bad_signature, None
        return {"signature": base64.b64encode(signature).decode(), "name": name, "protectionLevel": "SOFTWARE"}


class _Handler(BaseHTTPRequestHandler):
    kms: FakeKms
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read requests instead
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, answer = 200, self.kms.handle(self.command, self.path, json.loads(raw) if raw else None)
        except _Error as exc:
            status = exc.code
            answer = {"error": {"code": exc.code, "message": exc.message, "status": exc.status}}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer
