"""The development OpenID Connect provider over real HTTP on 127.0.0.1: discovery,
the sign-in page, the authorization code flow with PKCE, and access tokens that the
services' own verifier accepts through the provider's JWKS. Also the development
key's ``kid`` (devtokens), which ties tokens from ``mfc token`` to that JWKS."""

import base64
import hashlib
import secrets
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from joserfc.jwk import ECKey

from devtools.devidp import DEV_USERS, DevIdentityProvider, DevUser, is_loopback_uri
from devtools.devstack import free_port
from devtools.devtokens import DEV_ISSUER, dev_key_paths, ensure_dev_key, key_id, mint
from shared.auth import KeySource, Principal, Role, TokenRefusedError, TokenVerifier

pytestmark = pytest.mark.unit

AUDIENCE = "missing-from-care"
CLIENT = "mfc-console"
REDIRECT = "http://127.0.0.1:8000/auth/callback"  # never served: tests read Location
ONCALL = DEV_USERS[0]


@pytest.fixture
def key(tmp_path) -> bytes:
    ensure_dev_key(tmp_path)
    return dev_key_paths(tmp_path)[0].read_bytes()


@pytest.fixture
def provider(key) -> Iterator[DevIdentityProvider]:
    port = free_port()
    idp = DevIdentityProvider(
        issuer=f"http://127.0.0.1:{port}", private_key_pem=key, port=port
    )
    idp.start()
    try:
        yield idp
    finally:
        idp.stop()


@pytest.fixture
def http(provider) -> Iterator[httpx.Client]:
    # trust_env=False: no proxy from the environment, the traffic stays on 127.0.0.1
    with httpx.Client(base_url=provider.url, trust_env=False, timeout=5) as client:
        yield client


def pkce() -> tuple[str, str]:
    """(code_verifier, its S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization(challenge: str | None, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email",
        "state": "state-123",
        "nonce": "nonce-456",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


def sign_in(
    http: httpx.Client, user: DevUser = ONCALL, **overrides: str | None
) -> tuple[str, str]:
    """Sign ``user`` in on the page; (the code the redirect carries, its verifier)."""
    verifier, challenge = pkce()
    params = authorization(challenge, **overrides)
    page = http.get("/authorize", params=params)
    assert page.status_code == 200, page.text
    back = http.post("/authorize", params=params, data={"sub": user.sub})
    assert back.status_code == 302, back.text
    location = urlsplit(back.headers["Location"])
    query = parse_qs(location.query)
    assert query["state"] == ["state-123"]
    return query["code"][0], verifier


def redeem(
    http: httpx.Client,
    code: str,
    verifier: str | None,
    redirect_uri: str = REDIRECT,
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": CLIENT,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return http.post("/token", data=form)


def verifier_for(provider: DevIdentityProvider) -> TokenVerifier:
    """The services' verifier, pointed at the provider as production points it at
    the agency's identity provider."""
    return TokenVerifier(
        KeySource(jwks_url=f"{provider.url}/jwks", keys_file=None),
        issuer=provider.issuer,
        audience=AUDIENCE,
        algorithms=["ES256"],
        leeway=0,
    )


def test_discovery_names_every_endpoint_under_the_issuer(provider, http):
    found = http.get("/.well-known/openid-configuration").json()
    base = provider.issuer
    assert found["issuer"] == base
    assert found["authorization_endpoint"] == f"{base}/authorize"
    assert found["token_endpoint"] == f"{base}/token"
    assert found["userinfo_endpoint"] == f"{base}/userinfo"
    assert found["jwks_uri"] == f"{base}/jwks"
    assert found["end_session_endpoint"] == f"{base}/logout"
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert found["response_types_supported"] == ["code"]
    assert "authorization_code" in found["grant_types_supported"]
    assert found["id_token_signing_alg_values_supported"] == ["ES256"]
    assert found["token_endpoint_auth_methods_supported"] == [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ]
    assert "openid" in found["scopes_supported"]


def test_the_jwks_holds_the_public_key_under_its_thumbprint(provider, http, key):
    (published,) = http.get("/jwks").json()["keys"]
    assert published["kid"] == key_id(key) == ECKey.import_key(key).thumbprint()
    assert (published["kty"], published["crv"]) == ("EC", "P-256")
    assert (published["alg"], published["use"]) == ("ES256", "sig")
    assert "d" not in published  # never the private part


def test_the_sign_in_page_lists_every_user_and_asks_no_password(http):
    _, challenge = pkce()
    page = http.get("/authorize", params=authorization(challenge))
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    text = page.text
    assert '<html lang="en">' in text
    assert '<meta name="viewport"' in text
    assert "<title>" in text
    assert "<main>" in text
    assert "<h1>Development sign-in</h1>" in text
    assert "development sign-in" in text.lower()
    assert "no password" in text
    assert 'type="password"' not in text
    assert "<script" not in text
    assert "style=" not in text  # no inline style attributes
    assert 'href="http' not in text
    assert 'src="' not in text  # nothing loaded from elsewhere
    assert '<form method="post"' in text
    for user in DEV_USERS:
        assert f'value="{user.sub}"' in text
    assert "Sign in as Robin Oncall (oncall, NC-063)</button>" in text
    assert "Sign in as Avery Auditor (auditor, every county)</button>" in text
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert http.get("/style.css").headers["Content-Type"].startswith("text/css")


def test_the_ready_users_cover_every_role_with_invented_people():
    assert {u.sub for u in DEV_USERS} == {
        "oncall.nc063",
        "caseworker.nc063",
        "auditor",
        "auditor.pii",
        "county.nc063",
        "admin",
    }
    assert {r for u in DEV_USERS for r in u.roles} <= {r.value for r in Role}
    assert all(u.email.endswith("@example.org") for u in DEV_USERS)


async def test_the_code_flow_gives_tokens_the_services_accept(provider, http):
    discovery = http.get("/.well-known/openid-configuration").json()
    code, verifier = sign_in(http)
    answer = redeem(http, code, verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    tokens = answer.json()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["expires_in"] == 30 * 60

    access = tokens["access_token"]
    assert await verifier_for(provider).verify(access) == Principal(
        subject="oncall.nc063",
        roles=frozenset({Role.ONCALL}),
        counties=frozenset({"NC-063"}),
    )
    header = jwt.get_unverified_header(access)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"] == http.get("/jwks").json()["keys"][0]["kid"]
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["iss"] == provider.issuer
    assert claims["aud"] == AUDIENCE
    assert claims["client_id"] == CLIENT
    assert claims["scope"] == "openid profile email"
    assert claims["roles"] == ["oncall"]
    assert claims["counties"] == ["NC-063"]
    assert claims["name"] == "Robin Oncall"
    assert claims["exp"] - claims["iat"] == 30 * 60
    assert claims["jti"]

    signing = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(
        tokens["id_token"]
    )
    identity = jwt.decode(
        tokens["id_token"],
        signing.key,
        algorithms=["ES256"],
        audience=CLIENT,
        issuer=provider.issuer,
    )
    assert identity["sub"] == "oncall.nc063"
    assert identity["nonce"] == "nonce-456"
    assert identity["name"] == "Robin Oncall"
    assert identity["email"] == "robin.oncall@example.org"
    assert identity["roles"] == ["oncall"]
    assert identity["counties"] == ["NC-063"]

    info = http.get("/userinfo", headers={"Authorization": f"Bearer {access}"}).json()
    assert info["sub"] == "oncall.nc063"
    assert info["roles"] == ["oncall"]
    assert info["counties"] == ["NC-063"]


@pytest.mark.parametrize("user", DEV_USERS, ids=lambda u: u.sub)
async def test_every_ready_user_gets_its_roles_and_county_scope(provider, http, user):
    code, verifier = sign_in(http, user)
    access = redeem(http, code, verifier).json()["access_token"]
    found = await verifier_for(provider).verify(access)
    assert found.subject == user.sub
    assert found.roles == frozenset(Role(r) for r in user.roles)
    everywhere = "*" in user.counties
    assert found.counties == (None if everywhere else frozenset(user.counties))


def test_a_token_request_without_the_right_verifier_is_refused(http):
    code, _ = sign_in(http)
    missing = redeem(http, code, None)
    assert missing.status_code == 400
    assert missing.json()["error"] in {"invalid_request", "invalid_grant"}

    code, _ = sign_in(http)
    wrong = redeem(http, code, pkce()[0])
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"


def test_a_code_is_redeemed_once(http):
    code, verifier = sign_in(http)
    assert redeem(http, code, verifier).status_code == 200
    again = redeem(http, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_code_is_redeemed_only_with_the_redirect_uri_it_was_issued_for(http):
    code, verifier = sign_in(http)
    other = redeem(http, code, verifier, redirect_uri="http://127.0.0.1:8000/other")
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "pkce_params",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
    ],
    ids=["no-challenge", "no-method", "plain"],
)
def test_authorization_needs_an_s256_challenge(http, pkce_params):
    _, challenge = pkce()
    answer = http.get("/authorize", params=authorization(challenge, **pkce_params))
    # The redirect_uri is valid, so the client hears of the error (RFC 6749 4.1.2.1).
    assert answer.status_code == 302
    back = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert back["error"] == ["invalid_request"]
    assert back["state"] == ["state-123"]
    assert "code" not in back


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://console.example.org/auth/callback",
        "http://console.example.org/auth/callback",
        "http://127.0.0.1.example.org/auth/callback",
        "http://localhost.example.org:8000/auth/callback",
        "http://user@127.0.0.1:8000/auth/callback",
        "https://127.0.0.1:8000/auth/callback",
        "javascript:alert(1)",
        "http://127.0.0.1:99999/auth/callback",
    ],
)
def test_sign_in_sends_people_back_only_to_this_computer(http, redirect_uri):
    _, challenge = pkce()
    params = authorization(challenge, redirect_uri=redirect_uri)
    for answer in (
        http.get("/authorize", params=params),
        http.post("/authorize", params=params, data={"sub": ONCALL.sub}),
    ):
        assert answer.status_code == 400
        assert "Location" not in answer.headers
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "Sign-in request refused" in answer.text
        assert "http://127.0.0.1:&lt;port&gt;" in answer.text


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://localhost:5173/cb", "http://127.0.0.1:1/cb", "http://localhost/cb"],
)
def test_any_loopback_port_is_a_valid_redirect(http, redirect_uri):
    code, verifier = sign_in(http, redirect_uri=redirect_uri)
    assert redeem(http, code, verifier, redirect_uri=redirect_uri).status_code == 200


def test_an_unknown_client_or_user_is_refused(http):
    _, challenge = pkce()
    params = authorization(challenge, client_id="someone-else")
    assert http.get("/authorize", params=params).status_code == 400
    params = authorization(challenge)
    stranger = http.post("/authorize", params=params, data={"sub": "nobody"})
    assert stranger.status_code == 400
    assert "Location" not in stranger.headers


def test_userinfo_needs_a_valid_access_token(http):
    assert http.get("/userinfo").status_code == 401
    forged = http.get("/userinfo", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401
    assert forged.headers["WWW-Authenticate"].startswith("Bearer")


def test_sign_out_links_back_only_to_this_computer(http):
    back = "http://127.0.0.1:8000/signed-out"
    page = http.get(
        "/logout", params={"post_logout_redirect_uri": back, "state": "s-1"}
    )
    assert page.status_code == 200
    assert "<h1>You are signed out</h1>" in page.text
    assert f'href="{back}?state=s-1"' in page.text

    elsewhere = http.get(
        "/logout", params={"post_logout_redirect_uri": "https://evil.example.org/"}
    )
    assert "You are signed out" in elsewhere.text
    assert "evil.example.org" not in elsewhere.text


async def test_tokens_from_devtokens_verify_through_the_jwks(provider, key):
    token = mint(
        key,
        subject="cli-user",
        roles=["caseworker"],
        counties=["NC-063"],
        issuer=provider.issuer,
    )
    found = await verifier_for(provider).verify(token)
    assert found.subject == "cli-user"
    assert found.roles == frozenset({Role.CASEWORKER})


async def test_tokens_signed_by_another_key_are_refused(provider, tmp_path):
    ensure_dev_key(tmp_path / "other")
    other = dev_key_paths(tmp_path / "other")[0].read_bytes()
    token = mint(
        other,
        subject="x",
        roles=["admin"],
        counties=["*"],
        issuer=provider.issuer,
    )
    with pytest.raises(TokenRefusedError):
        await verifier_for(provider).verify(token)


def test_audience_client_and_lifetime_are_configurable(key):
    idp = DevIdentityProvider(
        issuer="http://localhost:1",
        private_key_pem=key,
        port=1,
        audience="another-api",
        client_id="another-client",
        access_token_ttl=timedelta(minutes=5),
        users=[ONCALL],
    )
    client = idp.flask_app().test_client()  # no server: Flask's test client
    verifier, challenge = pkce()
    params = authorization(challenge, client_id="another-client")
    page = client.get("/authorize", query_string=params)
    assert page.get_data(as_text=True).count('name="sub"') == 1
    back = client.post("/authorize", query_string=params, data={"sub": ONCALL.sub})
    code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
    answer = client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "another-client",
            "code_verifier": verifier,
        },
    )
    claims = jwt.decode(
        answer.get_json()["access_token"],
        options={"verify_signature": False},
    )
    assert claims["aud"] == "another-api"
    assert claims["client_id"] == "another-client"
    assert claims["exp"] - claims["iat"] == 300


def test_loopback_addresses():
    assert is_loopback_uri("http://127.0.0.1:8000/x?y=1")
    assert is_loopback_uri("http://localhost:3000")
    assert not is_loopback_uri("http://127.0.0.1:8000/x#fragment")
    assert not is_loopback_uri("http://[::1]:8000/")
    assert not is_loopback_uri("http://127.0.0.1:notaport/")


def test_key_id_is_the_rfc7638_thumbprint_and_stable(key, tmp_path):
    assert key_id(key) == key_id(key) == ECKey.import_key(key).thumbprint()
    ensure_dev_key(tmp_path / "other")
    other = dev_key_paths(tmp_path / "other")[0].read_bytes()
    assert key_id(other) != key_id(key)
    assert "=" not in key_id(key)
    assert len(key_id(key)) == 43  # a SHA-256 digest in base64url


def test_mint_names_the_key_and_keeps_other_headers(key):
    def header(**kwargs) -> dict[str, str]:
        token = mint(key, subject="s", roles=["admin"], counties=["*"], **kwargs)
        return jwt.get_unverified_header(token)

    assert header()["kid"] == key_id(key)
    assert "kid" not in header(include_kid=False)
    named = header(headers={"x-test": "1"})
    assert named["kid"] == key_id(key)
    assert named["x-test"] == "1"
    assert header(headers={"kid": "own"})["kid"] == "own"


async def test_minted_tokens_still_verify_against_the_pem_public_key(key, tmp_path):
    """The tests configure the services with the PEM file (no JWKS)."""
    verifier = TokenVerifier(
        KeySource(jwks_url=None, keys_file=ensure_dev_key(tmp_path)),
        issuer=DEV_ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256"],
        leeway=0,
    )
    token = mint(key, subject="cli-user", roles=["admin"], counties=["*"])
    assert (await verifier.verify(token)).subject == "cli-user"
