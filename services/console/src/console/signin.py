"""Who is signed in: OpenID Connect sign-in, the session cookie and CSRF tokens.

Sign-in is the authorization code flow with PKCE (authlib's client) against the
agency's identity provider. The access token it returns is checked exactly as the
services check it (``shared.auth.TokenVerifier``: signature, issuer, audience,
expiry), kept in the session and sent with every API call: the console acts as the
person, never as itself.

The session is Starlette's signed cookie (HttpOnly, SameSite=Lax, Secure where
configured). It ends at the token's expiry or ``session_max_age`` after sign-in,
whichever comes first; then the next page sends the person through sign-in again
and back to where they were. Every form carries a CSRF token bound to the session.
"""

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from authlib.integrations.starlette_client import OAuth
from fastapi import Request

from console.config import ConsoleSettings
from shared.auth import Principal, TokenRefusedError, TokenVerifier

CSRF_FIELD = "csrf_token"


class SignInRequiredError(Exception):
    """No session, or it ended: sign in, then go back to ``next_url``."""

    def __init__(self, next_url: str) -> None:
        super().__init__("sign-in required")
        self.next_url = next_url


class CsrfRefusedError(Exception):
    """A form came without the session's CSRF token (or with another one)."""


@dataclass(frozen=True)
class User:
    """The signed-in person, as their access token says."""

    principal: Principal
    name: str
    token: str
    expires_at: float
    """When the session ends (epoch seconds)."""

    @property
    def expires_text(self) -> str:
        moment = datetime.fromtimestamp(self.expires_at, UTC)
        return f"{moment:%Y-%m-%d %H:%M} UTC"

    @property
    def subject(self) -> str:
        return self.principal.subject

    @property
    def roles(self) -> list[str]:
        return sorted(self.principal.roles)

    @property
    def counties(self) -> list[str] | None:
        """None: every county."""
        scope = self.principal.counties
        return None if scope is None else sorted(scope)

    def has(self, *roles: str) -> bool:
        return self.principal.has_any(roles)  # type: ignore[arg-type]

    @property
    def is_staff(self) -> bool:
        return self.has("oncall", "caseworker")

    @property
    def may_record_notices(self) -> bool:
        """Notices are recorded in the name of the person who gave them: on-call
        staff and caseworkers (an administrator's token is no one's call)."""
        return bool({"oncall", "caseworker"} & set(self.principal.roles))

    @property
    def is_auditor(self) -> bool:
        return self.has("auditor", "auditor_pii")


def oidc_client(settings: ConsoleSettings) -> Any:
    oauth = OAuth()
    secret = settings.oidc_client_secret
    oauth.register(
        "idp",
        client_id=settings.oidc_client_id,
        client_secret=secret.get_secret_value() if secret else None,
        server_metadata_url=settings.metadata_url,
        client_kwargs={
            "scope": settings.oidc_scope,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic" if secret else "none",
            "timeout": 10,
        },
    )
    return oauth.idp


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


def here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def signin_url(next_url: str) -> str:
    return f"/signin?next={quote(next_url, safe='')}"


class Sessions:
    """Reads and writes the person's session."""

    def __init__(self, settings: ConsoleSettings, verifier: TokenVerifier) -> None:
        self.settings = settings
        self.verifier = verifier

    async def start(self, request: Request, token: dict[str, Any]) -> User:
        """Begin a session from the provider's token answer; the access token must
        pass the same checks the services make (raises TokenRefusedError)."""
        access_token = str(token.get("access_token", ""))
        principal = await self.verifier.verify(access_token)
        userinfo = token.get("userinfo") or {}
        name = str(userinfo.get("name") or principal.subject)
        request.session.clear()
        request.session.update(
            {
                "token": access_token,
                "name": name,
                "signed_in_at": time.time(),
                CSRF_FIELD: secrets.token_urlsafe(32),
            }
        )
        return await self.user(request)

    async def user(self, request: Request) -> User:
        """The signed-in person, or SignInRequiredError (with where to come back)."""
        session = request.session
        token = session.get("token")
        signed_in_at = float(session.get("signed_in_at", 0))
        max_end = signed_in_at + self.settings.session_max_age.total_seconds()
        if not token or time.time() >= max_end:
            self.end(request)
            raise SignInRequiredError(here(request))
        try:
            principal = await self.verifier.verify(token)
        except TokenRefusedError:
            self.end(request)
            raise SignInRequiredError(here(request)) from None
        exp = _claim_exp(token)
        return User(
            principal=principal,
            name=str(session.get("name") or principal.subject),
            token=token,
            expires_at=min(max_end, exp) if exp else max_end,
        )

    def end(self, request: Request) -> None:
        request.session.clear()

    @staticmethod
    def csrf_token(request: Request) -> str:
        token = request.session.get(CSRF_FIELD)
        if not token:
            token = secrets.token_urlsafe(32)
            request.session[CSRF_FIELD] = token
        return str(token)

    @staticmethod
    def check_csrf(request: Request, sent: str | None) -> None:
        expected = request.session.get(CSRF_FIELD)
        if not expected or not sent or not hmac.compare_digest(str(expected), sent):
            raise CsrfRefusedError()


def _claim_exp(token: str) -> float | None:
    import jwt

    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) else None
