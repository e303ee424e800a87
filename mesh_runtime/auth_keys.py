"""Signing keys of the mesh: ES256 key pairs, the public key set (JWKS) every
verifier reads, and minting access tokens with the current private key.

Layout of a key folder (``./mesh up`` keeps one in .state/auth):

    private/<kid>.pem   every private key ever made (0600)
    signing-key.pem     copy of the current private key: the analytics
                        service signs with it (AUTH_SIGNING_KEY_FILE)
    jwks.json           public keys of all of them: services and Envoy verify
                        with it (AUTH_JWKS_FILE)

Rotating adds a key and makes it current while the old public keys stay in
jwks.json, so tokens signed before the rotation stay valid until they expire.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mesh_runtime.auth import ALGORITHM, ROLE_NAMES, Principal


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def public_jwk(private_key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The public half as a JWK, with its RFC 7638 thumbprint as the key id."""
    numbers = private_key.public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    thumbprint = _b64(hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest())
    return {**jwk, "kid": thumbprint, "alg": ALGORITHM, "use": "sig"}


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Read a PEM private key; ValueError with a one-line reason if unusable."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ValueError(f"no private key at {path}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path} must hold a P-256 (ES256) key")
    return key


class KeyFolder:
    """The key folder described in the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.private_dir = path / "private"
        self.signing_key = path / "signing-key.pem"
        self.jwks = path / "jwks.json"

    def _private_keys(self) -> list[ec.EllipticCurvePrivateKey]:
        files = sorted(self.private_dir.glob("*.pem"), key=lambda p: p.stat().st_mtime_ns)
        return [load_private_key(p) for p in files]

    def _write_jwks(self) -> None:
        keys = [public_jwk(k) for k in self._private_keys()]
        tmp = self.jwks.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
        os.replace(tmp, self.jwks)

    def rotate(self) -> str:
        """Make a new key the signing key (old ones keep verifying); return its kid."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        kid = public_jwk(key)["kid"]
        _write_private(self.private_dir / f"{kid}.pem", pem)
        self._write_jwks()
        _write_private(self.signing_key, pem)
        return kid

    def ensure(self) -> None:
        """Create the first key unless the folder has one."""
        if not self.signing_key.exists() or not self.jwks.exists():
            self.rotate()


@dataclass(frozen=True)
class MintedToken:
    """An access token and when it expires."""

    token: str
    expires: dt.datetime


class TokenSigner:
    """Mints access tokens with one private key."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, issuer: str, audience: str) -> None:
        self.key = private_key
        self.kid = public_jwk(private_key)["kid"]
        self.issuer = issuer
        self.audience = audience

    @classmethod
    def from_file(cls, path: Path, issuer: str, audience: str) -> TokenSigner:
        """A signer for the key in ``path``."""
        return cls(load_private_key(path), issuer, audience)

    def mint(self, principal: Principal, ttl: dt.timedelta, now: dt.datetime | None = None) -> MintedToken:
        """A signed access token for ``principal`` valid for ``ttl``."""
        issued = now or dt.datetime.now(dt.UTC)
        expires = issued + ttl
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.id,
            "name": principal.name,
            "role": ROLE_NAMES[principal.role],
            "svc": principal.service_account,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        # What revocation is checked against (see mesh_runtime.auth.Revocations).
        if principal.generation:
            claims["gen"] = principal.generation
        if principal.session_id:
            claims["sid"] = principal.session_id
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return MintedToken(token, expires)
