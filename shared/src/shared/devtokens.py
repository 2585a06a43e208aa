"""Bearer tokens for development and tests only: ``mfc dev`` makes a signing key pair
next to its data and configures the services with the public half; ``mfc token``
signs tokens with the private half. A real deployment points the services at its
identity provider (``AUTH_ISSUER`` and ``AUTH_JWKS_URL``) and has no private key.
"""

import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEV_ISSUER = "mfc-dev"
DEV_AUDIENCE = "missing-from-care"
ALGORITHM = "ES256"


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
) -> str:
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
