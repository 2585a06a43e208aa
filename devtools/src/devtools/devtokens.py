"""Bearer tokens for development and tests only: ``mfc dev`` makes a signing key pair
next to its data and configures the services with the public half; ``mfc token``
signs tokens with the private half. A real deployment points the services at its
identity provider (``AUTH_ISSUER`` and ``AUTH_JWKS_URL``) and has no private key.

The key pair's :func:`key_id` is the RFC 7638 thumbprint of its public half, the
``kid`` under which the development identity provider (:mod:`devtools.devidp`) publishes
it in its JWKS.
"""

import base64
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEV_ISSUER = "http://127.0.0.1:8010"
"""The development identity provider's issuer (`mfc dev` runs it on this port)."""
DEV_AUDIENCE = "missing-from-care"


def dev_issuer(env: Mapping[str, str]) -> str:
    """The development provider's issuer: its URL, on ``MFC_IDP_PORT`` (8010)."""
    return f"http://127.0.0.1:{env.get('MFC_IDP_PORT') or 8010}"


ALGORITHM = "ES256"

_JWK_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def dev_key_paths(directory: Path) -> tuple[Path, Path]:
    """(private key, public key) of the development token issuer in ``directory``."""
    return directory / "token-signing-key.pem", directory / "token-signing-key.pub.pem"


def ensure_dev_key(directory: Path) -> Path:
    """The public key file, after making the key pair if there is none yet."""
    private_path, public_path = dev_key_paths(directory)
    if not private_path.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        private_path.touch(mode=0o600)
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )
    return public_path


def key_id(private_key_pem: bytes) -> str:
    """The ``kid`` of an elliptic-curve key pair: the RFC 7638 thumbprint (SHA-256,
    base64url without padding) of its public half as a JWK, so it is the same
    wherever the key is loaded."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or (
        key.curve.name not in _JWK_CURVES
    ):
        raise ValueError("a development signing key is a P-256, P-384 or P-521 key")
    public = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    members = {  # the required members only, in lexicographic order (RFC 7638 §3)
        "crv": _JWK_CURVES[key.curve.name],
        "kty": "EC",
        "x": _base64url(public.x.to_bytes(size, "big")),
        "y": _base64url(public.y.to_bytes(size, "big")),
    }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return _base64url(hashlib.sha256(canonical.encode()).digest())


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(
    private_key_pem: bytes,
    *,
    subject: str,
    roles: Iterable[str],
    counties: Iterable[str],
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
    ttl: timedelta = timedelta(hours=8),
    now: float | None = None,
    headers: dict[str, str] | None = None,
    include_kid: bool = True,
) -> str:
    """A signed token for ``subject`` with its ``roles`` and ``counties``.

    The header names the key (``kid``, its :func:`key_id`) as an identity provider's
    tokens do, so the token verifies against a JWKS (the development identity
    provider's) as well as against the PEM public key file; a ``kid`` in
    ``headers`` wins, and ``include_kid=False`` leaves it out.
    """
    if include_kid:
        headers = {"kid": key_id(private_key_pem), **(headers or {})}
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
        "jti": uuid4().hex,
        "roles": list(roles),
        "counties": list(counties),
    }
    return jwt.encode(claims, private_key_pem, algorithm=ALGORITHM, headers=headers)
