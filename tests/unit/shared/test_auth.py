"""Bearer tokens: what is accepted, what is refused and why, and the roles and county
scope a token grants. Keys are real (ES256, Ed25519, RSA); JWKS comes from a file and
from a real local HTTP server."""

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from devtools.devstack import free_port
from devtools.devtokens import mint
from intake.config import IntakeSettings
from shared.auth import (
    Authenticator,
    KeySource,
    Principal,
    Role,
    TokenRefusedError,
    TokenVerifier,
)

ISSUER = "https://idp.test"
AUDIENCE = "missing-from-care"


def private_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def keys_file(tmp_path, ec_key) -> Path:
    path = tmp_path / "keys.pem"
    path.write_bytes(public_pem(ec_key))
    return path


def verifier_for(
    path: Path | None = None, url: str | None = None, **options: Any
) -> TokenVerifier:
    return TokenVerifier(
        KeySource(jwks_url=url, keys_file=path),
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256", "EdDSA", "RS256"],
        leeway=5,
        **options,
    )


def signed(key, *, algorithm: str = "ES256", **overrides) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-1",
        "exp": int(time.time()) + 600,
        "roles": ["caseworker"],
        "counties": ["nc-063"],
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = claims.pop("headers", None)
    return jwt.encode(claims, private_pem(key), algorithm=algorithm, headers=headers)


async def test_a_valid_token_gives_its_roles_and_counties(keys_file, ec_key):
    found = await verifier_for(keys_file).verify(
        signed(ec_key, roles=["caseworker", "oncall", "no-such-role"])
    )
    assert found == Principal(
        subject="u-1",
        roles=frozenset({Role.CASEWORKER, Role.ONCALL}),
        counties=frozenset({"NC-063"}),
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -60}, "token expired"),
        ({"nbf": 600}, "token not yet valid"),
        ({"aud": "another-api"}, "token is for another audience"),
        ({"iss": "https://evil.test"}, "token from an unknown issuer"),
        ({"exp": None}, "token lacks a required claim"),
        ({"sub": None}, "token lacks a required claim"),
        ({"aud": None}, "token lacks a required claim"),
    ],
)
async def test_tokens_failing_a_check_are_refused_with_the_check(
    keys_file, ec_key, overrides, reason
):
    # exp and nbf: seconds from now (parameters are made long before the test runs).
    for claim in ("exp", "nbf"):
        if isinstance(overrides.get(claim), int):
            overrides = {**overrides, claim: int(time.time()) + overrides[claim]}
    with pytest.raises(TokenRefusedError, match=f"^{reason}$"):
        await verifier_for(keys_file).verify(signed(ec_key, **overrides))


async def test_expiry_allows_the_configured_clock_drift_and_no_more(keys_file, ec_key):
    verifier = verifier_for(keys_file)  # leeway 5 s
    await verifier.verify(signed(ec_key, exp=int(time.time()) - 2))
    with pytest.raises(TokenRefusedError, match="expired"):
        await verifier.verify(signed(ec_key, exp=int(time.time()) - 30))


async def test_a_forged_token_is_refused(keys_file):
    forger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TokenRefusedError, match="signature does not verify"):
        await verifier_for(keys_file).verify(signed(forger))


async def test_a_token_with_its_claims_edited_is_refused(keys_file, ec_key):
    header, payload, signature = signed(ec_key).split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["roles"], claims["counties"] = ["admin"], ["*"]
    edited = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    with pytest.raises(TokenRefusedError, match="signature does not verify"):
        await verifier_for(keys_file).verify(f"{header}.{edited}.{signature}")


async def test_unsigned_and_symmetric_tokens_are_refused(keys_file, ec_key):
    verifier = verifier_for(keys_file)
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": time.time() + 60},
        None,
        algorithm="none",
    )
    with pytest.raises(TokenRefusedError, match="algorithm not allowed"):
        await verifier.verify(unsigned)

    # The classic confusion: HMAC keyed with the (public) verification key.
    def b64(raw: bytes) -> str:
        return jwt.utils.base64url_encode(raw).decode()

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": time.time() + 60}
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}."
        f"{b64(json.dumps(claims).encode())}"
    )
    mac = hmac.new(keys_file.read_bytes(), signing_input.encode(), hashlib.sha256)
    token = f"{signing_input}.{b64(mac.digest())}"
    with pytest.raises(TokenRefusedError, match="algorithm not allowed"):
        await verifier.verify(token)
    for garbage in ("", "abc", "a.b.c"):
        with pytest.raises(TokenRefusedError, match="malformed token"):
            await verifier.verify(garbage)


def test_settings_refuse_symmetric_algorithms_and_need_one_key_source(monkeypatch):
    for key, value in {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "DATABASE_URL": "postgresql://x@/y",
        "INTAKE_COUNTIES": "NC-063",
        "AUTH_ISSUER": ISSUER,
        "AUTH_JWKS_URL": "http://127.0.0.1:1/jwks",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AUTH_PUBLIC_KEYS_FILE", raising=False)
    assert IntakeSettings().auth_algorithms == frozenset({"RS256", "ES256", "EdDSA"})
    monkeypatch.setenv("AUTH_ALGORITHMS", "ES256, HS256,none")
    with pytest.raises(ValidationError, match="HS256, none"):
        IntakeSettings()
    monkeypatch.setenv("AUTH_ALGORITHMS", "ES256")
    monkeypatch.setenv("AUTH_PUBLIC_KEYS_FILE", "/some/keys.pem")
    with pytest.raises(ValidationError, match="exactly one of"):
        IntakeSettings()
    monkeypatch.delenv("AUTH_ISSUER")
    monkeypatch.delenv("AUTH_PUBLIC_KEYS_FILE")
    with pytest.raises(ValidationError, match="AUTH_ISSUER"):
        IntakeSettings()


async def test_a_pem_file_with_two_keys_accepts_both_during_a_rotation(tmp_path):
    old, new = (
        ec.generate_private_key(ec.SECP256R1()),
        ed25519.Ed25519PrivateKey.generate(),
    )
    path = tmp_path / "keys.pem"
    path.write_bytes(public_pem(old) + public_pem(new))
    verifier = verifier_for(path)
    assert (await verifier.verify(signed(old))).subject == "u-1"
    assert (await verifier.verify(signed(new, algorithm="EdDSA"))).subject == "u-1"


async def test_a_pem_key_verifies_tokens_whatever_kid_they_name(tmp_path):
    """An identity provider names its key (kid) in every token; a PEM file names
    none, so its keys are tried for any kid, and a forged token still fails."""
    key, stranger = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    path = tmp_path / "key.pem"
    path.write_bytes(public_pem(key))
    verifier = verifier_for(path)
    named = signed(key, headers={"kid": "idp-key-1"})
    assert (await verifier.verify(named)).subject == "u-1"
    with pytest.raises(TokenRefusedError, match="signature does not verify"):
        await verifier.verify(signed(stranger, headers={"kid": "idp-key-1"}))


def jwks(*pairs) -> dict:
    keys = []
    for kid, key in pairs:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
    return {"keys": keys}


@pytest.fixture(scope="module")
def rsa_keys():
    return [
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in "ab"
    ]


async def test_a_jwks_file_picks_the_key_the_token_names(tmp_path, rsa_keys):
    first, second = rsa_keys
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(("k1", first), ("k2", second))))
    verifier = verifier_for(path)
    token = signed(second, algorithm="RS256", headers={"kid": "k2"})
    assert (await verifier.verify(token)).subject == "u-1"
    wrong_kid = signed(second, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(TokenRefusedError, match="signature does not verify"):
        await verifier.verify(wrong_kid)
    unknown = signed(second, algorithm="RS256", headers={"kid": "k9"})
    with pytest.raises(TokenRefusedError, match="unknown signing key"):
        await verifier.verify(unknown)


@pytest.fixture
def jwks_server(rsa_keys) -> Iterator[tuple[str, list[int]]]:
    """A real identity provider's key endpoint on 127.0.0.1, counting its calls."""
    calls: list[int] = []
    document = json.dumps(jwks(("k1", rsa_keys[0]))).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls.append(1)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/jwks", calls
    finally:
        server.shutdown()


async def test_a_jwks_url_is_fetched_once_and_cached(jwks_server, rsa_keys):
    url, calls = jwks_server
    verifier = verifier_for(url=url)
    for _ in range(3):
        token = signed(rsa_keys[0], algorithm="RS256", headers={"kid": "k1"})
        assert (await verifier.verify(token)).subject == "u-1"
    assert len(calls) == 1
    stranger = signed(rsa_keys[1], algorithm="RS256", headers={"kid": "k2"})
    with pytest.raises(TokenRefusedError, match="unknown signing key"):
        await verifier.verify(stranger)


def test_county_scope():
    scoped = Principal("u", frozenset({Role.AUDITOR}), frozenset({"NC-063", "MO-510"}))
    everywhere = Principal("u", frozenset({Role.AUDITOR}), None)
    assert scoped.sees("nc-063")
    assert not scoped.sees("NC-183")
    assert not scoped.sees(None), "county-less data is for state-wide callers only"
    assert everywhere.sees(None)
    assert everywhere.sees("CA-037")
    assert scoped.county_filter() == ["MO-510", "NC-063"]
    assert scoped.county_filter("mo-510") == ["MO-510"]
    assert scoped.county_filter("CA-037") == []
    assert everywhere.county_filter() is None
    assert everywhere.county_filter("ca-037") == ["CA-037"]
    admin = Principal("a", frozenset({Role.ADMIN}), None)
    assert admin.has_any([Role.CASEWORKER])
    assert not scoped.has_any([Role.CASEWORKER])


async def test_the_dependency_answers_401_and_403_with_the_bearer_challenge(
    keys_file, ec_key
):
    registry = CollectorRegistry()
    auth = Authenticator(verifier_for(keys_file), registry)
    app = FastAPI()

    @app.get("/only-oncall")
    async def only_oncall(
        principal: Annotated[Principal, Depends(auth.require(Role.ONCALL))],
    ) -> dict[str, str]:
        return {"subject": principal.subject}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        missing = await client.get("/only-oncall")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        expired = await client.get(
            "/only-oncall",
            headers={"Authorization": f"Bearer {signed(ec_key, exp=1)}"},
        )
        assert expired.status_code == 401
        assert expired.json() == {"detail": "token expired"}
        caseworker = await client.get(
            "/only-oncall", headers={"Authorization": f"Bearer {signed(ec_key)}"}
        )
        assert caseworker.status_code == 403
        assert "insufficient_scope" in caseworker.headers["WWW-Authenticate"]
        oncall = await client.get(
            "/only-oncall",
            headers={"Authorization": f"Bearer {signed(ec_key, roles=['oncall'])}"},
        )
        assert oncall.status_code == 200
        assert oncall.json() == {"subject": "u-1"}
    refused = {
        (s.labels["status"], s.labels["reason"]): s.value
        for m in registry.collect()
        if m.name == "mfc_auth_refused"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert refused == {
        ("401", "no bearer token"): 1,
        ("401", "token expired"): 1,
        ("403", "role"): 1,
    }


def test_dev_tokens_carry_what_was_asked(ec_key):
    token = mint(
        private_pem(ec_key),
        subject="dev",
        roles=["auditor"],
        counties=["*"],
        ttl=timedelta(minutes=5),
    )
    claims = jwt.decode(
        token, public_pem(ec_key), algorithms=["ES256"], audience=AUDIENCE
    )
    assert claims["roles"] == ["auditor"]
    assert claims["counties"] == ["*"]
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.parametrize("protected", [False, True])
async def test_metrics_need_a_token_only_where_configured(
    monkeypatch, keys_file, ec_key, protected
):
    from notifier.bootstrap import create_app
    from notifier.config import NotifierSettings

    for key, value in {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "DATABASE_URL": "postgresql://unused@127.0.0.1:9/unused",
        "AUTH_ISSUER": ISSUER,
        "AUTH_AUDIENCE": AUDIENCE,
        "AUTH_PUBLIC_KEYS_FILE": str(keys_file),
        "NOTIFIER_METRICS_REQUIRE_TOKEN": str(protected).lower(),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AUTH_JWKS_URL", raising=False)
    app = create_app(NotifierSettings())  # built, not started: nothing connects
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        anonymous = await client.get("/metrics")
        scraper = await client.get(
            "/metrics",
            headers={"Authorization": f"Bearer {signed(ec_key, roles=['metrics'])}"},
        )
        caseworker = await client.get(
            "/metrics", headers={"Authorization": f"Bearer {signed(ec_key)}"}
        )
        healthz = await client.get("/healthz")
    assert anonymous.status_code == (401 if protected else 200)
    assert caseworker.status_code == (403 if protected else 200)
    assert scraper.status_code == 200
    assert "mfc_auth_refused" in scraper.text
    assert healthz.status_code == 200


async def test_a_kept_token_is_refused_once_it_expires(keys_file, ec_key):
    verifier = verifier_for(keys_file)  # leeway 5 s
    token = signed(ec_key, exp=int(time.time()) - 3)  # within the leeway, for 2 s
    assert (await verifier.verify(token)).subject == "u-1"
    assert (await verifier.verify(token)).subject == "u-1"  # kept
    await asyncio.sleep(2.5)
    with pytest.raises(TokenRefusedError, match=r"^token expired$"):
        await verifier.verify(token)


async def test_a_token_changed_from_a_kept_one_is_verified_and_refused(
    keys_file, ec_key
):
    verifier = verifier_for(keys_file)
    token = signed(ec_key)
    await verifier.verify(token)
    header, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["roles"], claims["counties"] = ["admin"], ["*"]
    edited = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    forged = signed(ec.generate_private_key(ec.SECP256R1()))
    for tampered in (
        f"{header}.{edited}.{signature}",
        f"{header}.{payload}.{signature[:-4]}AAAA",
        f"{header}.{payload}.{forged.split('.')[2]}",
    ):
        with pytest.raises(TokenRefusedError):
            await verifier.verify(tampered)
    assert (await verifier.verify(token)).roles == {Role.CASEWORKER}


async def test_a_kept_token_is_verified_again_after_a_while(tmp_path, ec_key):
    """Tokens are kept for a short while only: signed by a key no longer trusted,
    one is refused once that while is over."""
    path = tmp_path / "keys.pem"
    path.write_bytes(public_pem(ec_key))
    verifier = verifier_for(path, cache_for=0.5)
    token = signed(ec_key)
    await verifier.verify(token)
    path.write_bytes(public_pem(ec.generate_private_key(ec.SECP256R1())))
    verifier.keys = KeySource(jwks_url=None, keys_file=path)  # the key withdrawn
    await verifier.verify(token)  # still within the while
    await asyncio.sleep(0.6)
    with pytest.raises(TokenRefusedError, match="signature does not verify"):
        await verifier.verify(token)


async def test_only_so_many_tokens_are_kept(keys_file, ec_key):
    verifier = verifier_for(keys_file, cache_size=3)
    tokens = [signed(ec_key, sub=f"u-{n}") for n in range(10)]
    for token in tokens:
        assert (await verifier.verify(token)).subject == f"u-{tokens.index(token)}"
    assert list(verifier._verified) == tokens[-3:]
    for token in tokens:  # the dropped are verified again, and kept anew
        await verifier.verify(token)
    assert len(verifier._verified) == 3
