"""Bearer tokens for the tests, and HTTP calls that carry one.

One signing key pair per test session: importing this module (tests/conftest.py does)
points ``AUTH_ISSUER`` and ``AUTH_PUBLIC_KEYS_FILE`` at it, so every service the tests
start trusts its tokens. ``get`` and ``post`` send an admin token for every county
unless the caller passes its own ``Authorization`` header (or ``anonymous=True``); the
access-control tests mint exactly the token they mean.
"""

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from devtools.devtokens import dev_key_paths, ensure_dev_key, mint

ISSUER = "mfc-tests"
AUDIENCE = "missing-from-care"

KEY_DIR = Path(tempfile.mkdtemp(prefix="mfc-test-auth-"))
atexit.register(shutil.rmtree, KEY_DIR, ignore_errors=True)
PUBLIC_KEY_FILE = ensure_dev_key(KEY_DIR)
PRIVATE_KEY = dev_key_paths(KEY_DIR)[0].read_bytes()

os.environ["AUTH_ISSUER"] = ISSUER
os.environ["AUTH_AUDIENCE"] = AUDIENCE
os.environ["AUTH_PUBLIC_KEYS_FILE"] = str(PUBLIC_KEY_FILE)
os.environ.pop("AUTH_JWKS_URL", None)


def token(
    *roles: str,
    counties: Iterable[str] = ("*",),
    subject: str = "test-user",
    ttl: timedelta = timedelta(hours=1),
    **claims: Any,
) -> str:
    return mint(
        PRIVATE_KEY,
        subject=subject,
        roles=roles,
        counties=counties,
        issuer=claims.pop("issuer", ISSUER),
        audience=claims.pop("audience", AUDIENCE),
        ttl=ttl,
        **claims,
    )


def bearer(
    *roles: str, counties: Iterable[str] = ("*",), **claims: Any
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(*roles, counties=counties, **claims)}"}


ADMIN = bearer("admin", ttl=timedelta(days=1))
"""Every role's endpoints, every county (not personal audit fields: auditor_pii)."""


def _with_token(kwargs: dict[str, Any], anonymous: bool) -> dict[str, Any]:
    headers = dict(kwargs.pop("headers", None) or {})
    if not anonymous:
        headers = {**ADMIN, **headers}  # a caller's own Authorization wins
    return {**kwargs, "headers": headers}


def get(url: str, *, anonymous: bool = False, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, **_with_token(kwargs, anonymous))


def post(url: str, *, anonymous: bool = False, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, **_with_token(kwargs, anonymous))


def delete(url: str, *, anonymous: bool = False, **kwargs: Any) -> httpx.Response:
    return httpx.delete(url, **_with_token(kwargs, anonymous))
