"""Who is calling, and what they may do: OAuth2 bearer JWTs on every HTTP API.

A token is checked against the configured keys (a JWKS URL, or a file of public keys
as PEM or JWKS) with its signature, issuer, audience and expiry; its ``roles`` and
``counties`` claims say what the caller may do and where. Every route names the roles
it admits (``admin`` is admitted everywhere); data of a county outside the caller's
scope is answered as if it did not exist (404, never 403), so ids cannot be probed.

Symmetric algorithms (HS*) and ``none`` are refused by configuration: the services
hold public keys only, so nobody who can read their settings can mint a token.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWK, PyJWKClient, PyJWKSet
from prometheus_client import CollectorRegistry, Counter

from shared.config import TokenSettings

logger = logging.getLogger(__name__)

ALL_COUNTIES = "*"
"""The ``counties`` claim value for a caller whose scope is every county."""


class Role(StrEnum):
    COUNTY_SYSTEM = "county_system"
    """Sends events for its counties; reads their episodes."""
    CASEWORKER = "caseworker"
    """Reads episodes, obligations, alerts and prompts; completes prompts; acks alerts."""
    ONCALL = "oncall"
    """Acks alerts; reads what an alert links to (episode, obligations, prompts)."""
    AUDITOR = "auditor"
    """Audit queries and compliance, personal fields redacted."""
    AUDITOR_PII = "auditor_pii"
    """An auditor who may see personal fields."""
    ADMIN = "admin"
    """Every endpoint (within its counties); signs audit checkpoints on demand."""
    METRICS = "metrics"
    """Scrapes ``/metrics`` where the service requires a token for it."""


class TokenRefusedError(Exception):
    """A token that is missing, malformed, forged, expired or meant for someone else.
    The message is safe to answer: it names the check, never the token's contents."""


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    counties: frozenset[str] | None
    """The counties in scope; None: every county."""

    def has_any(self, roles: Iterable[Role]) -> bool:
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    def sees(self, county_code: str | None) -> bool:
        """Whether data of ``county_code`` is in scope (county-less data: only for
        a caller whose scope is every county)."""
        if self.counties is None:
            return True
        return county_code is not None and county_code.upper() in self.counties

    def county_filter(self, asked: str | None = None) -> list[str] | None:
        """The counties a query may return: ``asked`` within scope, or the whole
        scope; None means no restriction. An ``asked`` county outside the scope gives
        an empty list, so the answer is empty rather than a refusal."""
        if asked is not None:
            asked = asked.upper()
            return [asked] if self.sees(asked) else []
        return None if self.counties is None else sorted(self.counties)


class KeySource:
    """Where token signing keys come from: a JWKS URL, or a file (PEM or JWKS)."""

    def __init__(self, *, jwks_url: str | None, keys_file: Path | None) -> None:
        if (jwks_url is None) == (keys_file is None):
            raise ValueError("give exactly one of a JWKS URL and a public keys file")
        self._client = PyJWKClient(jwks_url, timeout=5) if jwks_url else None
        self._static: list[tuple[str | None, Any]] = (
            load_public_keys(keys_file) if keys_file else []
        )

    async def candidates(self, token: str) -> list[Any]:
        """The keys that may have signed ``token``: the one its ``kid`` names, or
        every configured key when it names none or a key has no id (a static set
        is small)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise TokenRefusedError("malformed token") from None
        if self._client is not None:
            try:
                found = await asyncio.to_thread(
                    self._client.get_signing_key_from_jwt, token
                )
            except jwt.PyJWKClientConnectionError:
                logger.exception("the JWKS endpoint did not answer")
                raise
            except jwt.PyJWKClientError:
                raise TokenRefusedError("unknown signing key") from None
            return [found.key]
        # A PEM key has no id of its own: it may have signed a token of any kid.
        keys = [
            key
            for key_id, key in self._static
            if kid is None or key_id is None or key_id == kid
        ]
        if not keys:
            raise TokenRefusedError("unknown signing key")
        return keys


def load_public_keys(path: Path) -> list[tuple[str | None, Any]]:
    """``(kid, key)`` pairs from a JWKS document or one or more PEM public keys."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = path.read_text()
    if text.lstrip().startswith("{"):
        keys: list[PyJWK] = PyJWKSet.from_dict(json.loads(text)).keys
        return [(k.key_id, k.key) for k in keys]
    marker = "-----BEGIN PUBLIC KEY-----"
    blocks = [marker + block for block in text.split(marker)[1:]]
    if not blocks:
        raise ValueError(f"{path}: neither a JWKS document nor PEM public keys")
    return [(None, load_pem_public_key(block.encode())) for block in blocks]


@dataclass(frozen=True)
class _Verified:
    """A token whose signature and claims verified: what it grants, the times its
    validity depends on, and until when it may be answered without verifying again."""

    principal: Principal
    expires: int
    not_before: int | None
    until: float

    def check(self, now: float, leeway: float) -> Principal:
        """The principal, if the token is still in its validity (as PyJWT checks
        ``exp``, ``nbf`` and ``iat``)."""
        if self.expires <= now - leeway:
            raise TokenRefusedError("token expired")
        if self.not_before is not None and self.not_before > now + leeway:
            raise TokenRefusedError("token not yet valid")
        return self.principal


class TokenVerifier:
    """Verifies bearer tokens.

    A county system sends one token with many requests, and verifying its signature
    (ECDSA) each time was a few percent of intake's CPU: a token that verified is kept,
    keyed by the whole token (its signature too: a token changed in any way is
    another key, verified in full), for ``cache_for`` seconds at most, less than
    a JWKS key set is kept (``PyJWKClient``: 300 s), so a key withdrawn stops
    counting as soon as it would have. Its expiry and not-before times are checked
    again on every use. At most ``cache_size`` tokens are kept, the oldest dropped.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Collection[str],
        leeway: float,
        roles_claim: str = "roles",
        counties_claim: str = "counties",
        cache_size: int = 1024,
        cache_for: float = 60.0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self.roles_claim = roles_claim
        self.counties_claim = counties_claim
        self._cache_size = cache_size
        self._cache_for = cache_for
        self._verified: dict[str, _Verified] = {}

    async def verify(self, token: str) -> Principal:
        now = time.time()
        known = self._verified.get(token)
        if known is not None and now < known.until:
            return known.check(now, self.leeway)
        claims = await self._claims(token)
        principal = self._principal(claims)
        if self._cache_size > 0:
            self._verified.pop(token, None)
            if len(self._verified) >= self._cache_size:
                del self._verified[next(iter(self._verified))]
            times = [int(claims[c]) for c in ("nbf", "iat") if c in claims]
            self._verified[token] = _Verified(
                principal,
                expires=int(claims["exp"]),
                not_before=max(times, default=None),
                until=now + self._cache_for,
            )
        return principal

    async def _claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature and claims verify."""
        last: jwt.PyJWTError | None = None
        for key in await self.keys.candidates(token):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=self.algorithms,
                    audience=self.audience,
                    issuer=self.issuer,
                    leeway=self.leeway,
                    options={"require": ["exp", "iss", "aud", "sub"]},
                )
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError) as exc:
                last = exc  # another configured key may have signed it
                continue
            except jwt.PyJWTError as exc:
                raise TokenRefusedError(_reason(exc)) from None
            return claims
        raise TokenRefusedError(_reason(last) if last else "unknown signing key")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        roles = claims.get(self.roles_claim, [])
        counties = claims.get(self.counties_claim, [])
        if isinstance(roles, str):
            roles = roles.split()
        if isinstance(counties, str):
            counties = [counties]
        if not isinstance(roles, list) or not isinstance(counties, list):
            raise TokenRefusedError(
                f"claims {self.roles_claim!r} and {self.counties_claim!r} must be lists"
            )
        known = {r.value for r in Role}
        scope = {str(c).upper() for c in counties}
        return Principal(
            subject=str(claims["sub"]),
            roles=frozenset(Role(r) for r in roles if r in known),
            counties=None if ALL_COUNTIES in scope else frozenset(scope),
        )


def token_verifier(settings: TokenSettings) -> TokenVerifier:
    return TokenVerifier(
        KeySource(
            jwks_url=settings.auth_jwks_url,
            keys_file=settings.auth_public_keys_file,
        ),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        algorithms=sorted(settings.auth_algorithms),
        leeway=settings.auth_leeway.total_seconds(),
        roles_claim=settings.auth_roles_claim,
        counties_claim=settings.auth_counties_claim,
    )


def _reason(exc: jwt.PyJWTError) -> str:
    reasons: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.ExpiredSignatureError, "token expired"),
        (jwt.ImmatureSignatureError, "token not yet valid"),
        (jwt.InvalidAudienceError, "token is for another audience"),
        (jwt.InvalidIssuerError, "token from an unknown issuer"),
        (jwt.MissingRequiredClaimError, "token lacks a required claim"),
        (jwt.InvalidAlgorithmError, "token signed with an algorithm not allowed"),
        (jwt.InvalidSignatureError, "token signature does not verify"),
        (jwt.InvalidKeyError, "token signature does not verify"),
    ]
    for kind, text in reasons:
        if isinstance(exc, kind):
            return text
    return "malformed token"


class Authenticator:
    """The FastAPI side: ``require(*roles)`` gives a dependency that answers 401
    without a valid token and 403 without one of the roles, and returns the
    :class:`Principal`."""

    def __init__(self, verifier: TokenVerifier, registry: CollectorRegistry) -> None:
        self.verifier = verifier
        self.refused = Counter(
            "mfc_auth_refused",
            "Requests refused for their credentials, by answer and reason",
            ["status", "reason"],
            registry=registry,
        )
        self._bearer = HTTPBearer(auto_error=False)

    def require(self, *roles: Role) -> Callable[..., Any]:
        bearer = self._bearer

        async def principal(
            request: Request,
            credentials: Annotated[
                HTTPAuthorizationCredentials | None, Depends(bearer)
            ],
        ) -> Principal:
            if credentials is None:
                raise self._unauthorized("no bearer token")
            try:
                found = await self.verifier.verify(credentials.credentials)
            except TokenRefusedError as exc:
                raise self._unauthorized(str(exc)) from None
            if not found.has_any(roles):
                self.refused.labels("403", "role").inc()
                raise HTTPException(
                    status_code=403,
                    detail=f"this needs one of the roles: {', '.join(roles) or 'admin'}",
                    headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
                )
            request.state.principal = found
            return found

        return principal

    def _unauthorized(self, reason: str) -> HTTPException:
        self.refused.labels("401", reason).inc()
        return HTTPException(
            status_code=401,
            detail=reason,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'
            },
        )
