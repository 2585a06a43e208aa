"""An OpenID Connect provider for development and tests only.

Production signs people in at the agency's identity provider (Entra ID, Okta,
Login.gov); the console forwards their access token to the services, which check it
with :mod:`shared.auth`. Development and the tests have no such provider, so this one
stands in and behaves the same way: discovery, JWKS, the authorization code flow for
one public client with PKCE (S256, required), access tokens that are RFC 9068 JWTs
(``typ`` ``at+jwt``, ES256, ``kid`` the key's RFC 7638 thumbprint) carrying the
``roles``, ``counties`` and ``name`` claims the services read, ID tokens, userinfo and
an end-session page. It signs with the development key pair of
:mod:`devtools.devtokens`, so tokens that ``mfc token`` mints (with their ``kid``)
verify against its JWKS too.

Its sign-in page asks for no password: whoever reaches it may sign in as any of its
ready-made users. So it serves on 127.0.0.1 by default and sends people back only to
loopback addresses (``http://127.0.0.1:<port>``, ``http://localhost:<port>``). Codes
and tokens live in memory and are gone when it stops. authlib refuses plain HTTP to
any other host, so serve it on a loopback address.
"""

import html
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, Response, jsonify, request
from joserfc.jwk import ECKey, KeySet
from werkzeug.serving import BaseWSGIServer, make_server

from devtools.devtokens import ALGORITHM, DEV_AUDIENCE, key_id


@dataclass(frozen=True)
class DevUser:
    """Someone to sign in as: the claims the services read, and a name to show."""

    sub: str
    name: str
    roles: tuple[str, ...]
    counties: tuple[str, ...]
    """County codes in scope; ``("*",)``: every county."""
    email: str

    def get_user_id(self) -> str:
        """The subject, by the name authlib asks for it."""
        return self.sub


DEV_USERS: tuple[DevUser, ...] = (
    DevUser(
        sub="oncall.nc063",
        name="Robin Oncall",
        roles=("oncall",),
        counties=("NC-063",),
        email="robin.oncall@example.org",
    ),
    DevUser(
        sub="caseworker.nc063",
        name="Casey Fieldworker",
        roles=("caseworker",),
        counties=("NC-063",),
        email="casey.fieldworker@example.org",
    ),
    DevUser(
        sub="auditor",
        name="Avery Auditor",
        roles=("auditor",),
        counties=("*",),
        email="avery.auditor@example.org",
    ),
    DevUser(
        sub="auditor.pii",
        name="Parker Reviewer",
        roles=("auditor", "auditor_pii"),
        counties=("*",),
        email="parker.reviewer@example.org",
    ),
    DevUser(
        sub="county.nc063",
        name="County System NC-063",
        roles=("county_system",),
        counties=("NC-063",),
        email="county.nc063@example.org",
    ),
    DevUser(
        sub="admin",
        name="Alex Administrator",
        roles=("admin",),
        counties=("*",),
        email="alex.administrator@example.org",
    ),
)
"""One ready-made user per role (invented people, example.org addresses)."""

SCOPES = ("openid", "profile", "email")
"""The scopes granted; other requested scopes are dropped, not refused."""

_CODE_TTL = 120.0
"""Seconds an authorization code stays redeemable (once)."""

_STYLE = """\
body { font-family: system-ui, sans-serif; line-height: 1.5; margin: 0;
  padding: 1rem; color: #1b1b1b; background: #fff; }
main { max-width: 40rem; margin: 0 auto; }
.notice { border-left: 0.25rem solid #8a5a00; background: #fff5dc;
  padding: 0.5rem 1rem; }
ul { list-style: none; padding: 0; }
li { margin: 0.5rem 0; }
button { font: inherit; width: 100%; min-height: 2.75rem; padding: 0.5rem 1rem;
  text-align: left; color: #1b1b1b; background: #f0f0f0;
  border: 1px solid #1b1b1b; border-radius: 0.25rem; cursor: pointer; }
button:hover { background: #dfe1e2; }
:focus-visible { outline: 3px solid #005ea2; outline-offset: 2px; }
"""

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_CORS_PATHS = frozenset(
    {"/.well-known/openid-configuration", "/jwks", "/token", "/userinfo"}
)


def is_loopback_uri(uri: str) -> bool:
    """Whether ``uri`` is a plain-HTTP address on this computer (127.0.0.1 or
    localhost, any port): the only places this provider sends anyone back to."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and parts.hostname in ("127.0.0.1", "localhost")
        and "@" not in parts.netloc
        and not parts.fragment
    )


@dataclass(frozen=True)
class _Client:
    """The one public client (no secret; PKCE instead)."""

    client_id: str
    id_token_signed_response_alg: str = ALGORITHM

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # every request names its own

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return is_loopback_uri(redirect_uri)

    def check_client_secret(self, _secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if endpoint == "token" else True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class _Code:
    """An authorization code and what it was issued for."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: DevUser
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class _Store:
    """Codes and access tokens in memory, safe across the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, tuple[DevUser, float]] = {}

    def add_code(self, code: _Code) -> None:
        with self._lock:
            now = time.time()
            self._codes = {k: c for k, c in self._codes.items() if c.expires_at > now}
            self._codes[code.code] = code

    def take_code(self, code: str, client_id: str) -> _Code | None:
        """The code's record, removed: a code is redeemed at most once, even when
        the redemption then fails (a wrong verifier burns the code)."""
        with self._lock:
            found = self._codes.pop(code, None)
        if found is None or found.client_id != client_id:
            return None
        return found if found.expires_at > time.time() else None

    def nonce_pending(self, nonce: str) -> bool:
        with self._lock:
            return any(c.nonce == nonce for c in self._codes.values())

    def add_token(self, access_token: str, user: DevUser, expires_at: float) -> None:
        with self._lock:
            now = time.time()
            self._tokens = {k: t for k, t in self._tokens.items() if t[1] > now}
            self._tokens[access_token] = (user, expires_at)

    def token_user(self, access_token: str) -> DevUser | None:
        with self._lock:
            found = self._tokens.get(access_token)
        return found[0] if found is not None and found[1] > time.time() else None


def _claims(user: DevUser) -> dict[str, Any]:
    """What the ID token and userinfo say about ``user`` besides the subject."""
    return {
        "name": user.name,
        "email": user.email,
        "email_verified": True,
        "roles": list(user.roles),
        "counties": list(user.counties),
    }


class _Server(AuthorizationServer):  # type: ignore[misc]
    store: _Store


class _PkceS256(CodeChallenge):  # type: ignore[misc]
    """PKCE required, S256 only (``plain`` protects nothing)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send 'code_challenge' and "
                "'code_challenge_method=S256'."
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'.")
        super().validate_code_challenge(grant, redirect_uri)


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ]

    def save_authorization_code(self, code: str, oauth_request: Any) -> None:
        data = oauth_request.payload.data
        self.server.store.add_code(
            _Code(
                code=code,
                client_id=oauth_request.client.get_client_id(),
                redirect_uri=oauth_request.payload.redirect_uri,
                scope=oauth_request.client.get_allowed_scope(
                    oauth_request.payload.scope
                ),
                user=oauth_request.user,
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                auth_time=int(time.time()),
                expires_at=time.time() + _CODE_TTL,
            )
        )

    def query_authorization_code(self, code: str, client: Any) -> _Code | None:
        found: _Code | None = self.server.store.take_code(code, client.get_client_id())
        return found

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        pass  # taken out of the store as it was looked up

    def authenticate_user(self, authorization_code: _Code) -> DevUser:
        return authorization_code.user


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, *, issuer: str, keys: KeySet, ttl: int, store: _Store):
        super().__init__(require_nonce=False)
        self._issuer = issuer
        self._keys = keys
        self._ttl = ttl
        self._store = store

    def exists_nonce(self, nonce: str, _request: Any) -> bool:
        return self._store.nonce_pending(nonce)

    def resolve_client_private_key(self, _client: Any) -> KeySet:
        return self._keys

    def get_client_algorithm(self, _client: Any) -> str:
        return ALGORITHM

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self._issuer,
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + self._ttl,
        }

    def generate_user_info(self, user: DevUser, _scope: str) -> dict[str, Any]:
        return {"sub": user.sub, **_claims(user)}


class _AccessTokens(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 access tokens for the API audience, with the services' claims."""

    def __init__(self, *, issuer: str, audience: str, keys: KeySet, ttl: int):
        super().__init__(
            issuer=issuer,
            alg=ALGORITHM,
            expires_generator=lambda _client, _grant_type: ttl,
        )
        self._audience = audience
        self._keys = keys

    def get_jwks(self) -> KeySet:
        return self._keys

    def get_audiences(self, _client: Any, _user: Any, _scope: str) -> str:
        return self._audience

    def get_extra_claims(
        self, _client: Any, _grant_type: str, user: DevUser, _scope: str
    ) -> dict[str, Any]:
        return {
            "roles": list(user.roles),
            "counties": list(user.counties),
            "name": user.name,
        }


class DevIdentityProvider:
    """The provider: ``start()`` serves it on ``host:port`` in a background thread,
    ``stop()`` ends it; :meth:`flask_app` is the WSGI app itself, for a test client.

    ``issuer`` is the base URL the browser and the services reach it at (normally
    :attr:`url`); every endpoint in its discovery document lies under it.
    """

    def __init__(
        self,
        *,
        issuer: str,
        private_key_pem: bytes,
        users: Sequence[DevUser] = DEV_USERS,
        audience: str = DEV_AUDIENCE,
        host: str = "127.0.0.1",
        port: int,
        access_token_ttl: timedelta = timedelta(minutes=30),
        client_id: str = "mfc-console",
    ) -> None:
        if not users:
            raise ValueError("a provider needs at least one user to sign in as")
        self.issuer = issuer
        self.audience = audience
        self.host = host
        self.port = port
        self.client_id = client_id
        self.users = tuple(users)
        self._users = {u.sub: u for u in self.users}
        self._base = issuer.rstrip("/")
        ttl = int(access_token_ttl.total_seconds())
        self._key = ECKey.import_key(
            private_key_pem,
            {"kid": key_id(private_key_pem), "alg": ALGORITHM, "use": "sig"},
        )
        keys = KeySet([self._key])
        self._client = _Client(client_id)
        self._store = _Store()
        self._app = Flask(__name__)
        self._server = _Server(
            self._app, query_client=self._query_client, save_token=self._save_token
        )
        self._server.store = self._store
        self._server.register_token_generator(
            "default",
            _AccessTokens(issuer=issuer, audience=audience, keys=keys, ttl=ttl),
        )
        self._server.register_grant(
            _CodeGrant,
            [
                _PkceS256(required=True),
                _OpenIDCode(issuer=issuer, keys=keys, ttl=ttl, store=self._store),
            ],
        )
        self._routes()
        self._http: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://{self.host}:{self.port}"

    @property
    def jwks(self) -> dict[str, Any]:
        """The public signing key as a JWK set (``kid``, ``alg`` ES256, ``use`` sig)."""
        return dict(KeySet([self._key]).as_dict(private=False))

    def flask_app(self) -> Flask:
        return self._app

    def start(self, *, timeout: float = 10) -> None:
        """Serve in a background thread; returns once discovery answers."""
        if self._http is not None:
            raise RuntimeError("the provider is already running")
        self._http = make_server(self.host, self.port, self._app, threaded=True)
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},  # how soon stop() takes effect
            name="dev-idp",
            daemon=True,
        )
        self._thread.start()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with opener.open(
                    f"{self.url}/.well-known/openid-configuration", timeout=1
                ):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"{self.url} did not answer") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _query_client(self, client_id: str) -> _Client | None:
        return self._client if client_id == self.client_id else None

    def _save_token(self, token: dict[str, Any], oauth_request: Any) -> None:
        expires_at = time.time() + float(token.get("expires_in", 0))
        self._store.add_token(token["access_token"], oauth_request.user, expires_at)

    def _discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self._base}/authorize",
            "token_endpoint": f"{self._base}/token",
            "userinfo_endpoint": f"{self._base}/userinfo",
            "jwks_uri": f"{self._base}/jwks",
            "end_session_endpoint": f"{self._base}/logout",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "name",
                "email",
                "email_verified",
                "roles",
                "counties",
            ],
        }

    def _routes(self) -> None:
        app = self._app
        app.add_url_rule(
            "/.well-known/openid-configuration",
            "discovery",
            lambda: jsonify(self._discovery()),
        )
        app.add_url_rule("/jwks", "jwks", lambda: jsonify(self.jwks))
        app.add_url_rule("/style.css", "style", self._style)
        app.add_url_rule(
            "/authorize", "authorize", self._authorize, methods=["GET", "POST"]
        )
        app.add_url_rule(
            "/token", "token", self._server.create_token_response, methods=["POST"]
        )
        app.add_url_rule(
            "/userinfo", "userinfo", self._userinfo, methods=["GET", "POST"]
        )
        app.add_url_rule("/logout", "logout", self._logout, methods=["GET", "POST"])
        app.after_request(self._headers)

    def _authorize(self) -> Response:
        user = None
        if request.method == "POST":
            user = self._users.get(request.form.get("sub", ""))
            if user is None:
                return _page(
                    "Choose someone to sign in as",
                    "<p>The request named no user of this provider. Go back and "
                    "choose one of the listed users.</p>",
                    status=400,
                )
        try:
            grant = self._server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return self._refused(error)
        if user is None:
            return self._sign_in_page(grant.redirect_uri)
        response: Response = self._server.create_authorization_response(
            grant_user=user, grant=grant
        )
        return response

    def _refused(self, error: Any) -> Response:
        if error.redirect_uri:  # checked: the client hears of it
            response: Response = self._server.handle_error_response(None, error)
            return response
        text = f"{error.error}: {error.description or 'the request is not valid'}"
        return _page(
            "Sign-in request refused",
            f"<p>{html.escape(text)}</p><p>This development identity provider signs "
            "in only its own client and sends people back only to addresses on "
            "this computer: <code>http://127.0.0.1:&lt;port&gt;</code> or "
            "<code>http://localhost:&lt;port&gt;</code>.</p>",
            status=400,
        )

    def _sign_in_page(self, redirect_uri: str) -> Response:
        back = urlsplit(redirect_uri)
        # The form posts the same authorization request back, with the user chosen.
        action = "authorize?" + request.query_string.decode()
        buttons = "\n".join(
            f'<li><button type="submit" name="sub" value="{html.escape(u.sub)}">'
            f"Sign in as {html.escape(_describe(u))}</button></li>"
            for u in self.users
        )
        return _page(
            "Development sign-in",
            '<p class="notice"><strong>This is the development sign-in</strong> of '
            "Missing from care, for development and tests only. It asks for no "
            "password: choose whom to sign in as. Never use it with real data.</p>"
            f"<p>You will then go back to "
            f"<strong>{html.escape(f'{back.scheme}://{back.netloc}')}</strong>.</p>"
            f'<form method="post" action="{html.escape(action)}">'
            '<h2 id="users">Ready-made users</h2>\n'
            f'<ul aria-labelledby="users">\n{buttons}\n</ul></form>',
        )

    def _userinfo(self) -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = self._store.token_user(token) if scheme.lower() == "bearer" else None
        if user is None:
            response = jsonify(
                error="invalid_token", error_description="no valid access token"
            )
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        return jsonify({"sub": user.sub, **_claims(user)})

    def _logout(self) -> Response:
        back = request.values.get("post_logout_redirect_uri", "")
        link = ""
        if back and is_loopback_uri(back):
            state = request.values.get("state")
            if state:
                back += ("&" if "?" in back else "?") + urlencode({"state": state})
            link = f'<p><a href="{html.escape(back)}">Back to the application</a></p>'
        return _page(
            "You are signed out",
            "<p>The development identity provider keeps no session: the next "
            f"sign-in asks again whom to sign in as.</p>{link}",
        )

    @staticmethod
    def _style() -> Response:
        return Response(_STYLE, mimetype="text/css")

    @staticmethod
    def _headers(response: Response) -> Response:
        response.headers.update(_SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
        origin = request.headers.get("Origin")
        if origin and request.path in _CORS_PATHS and is_loopback_uri(origin):
            # A browser console on a loopback origin may call these directly.
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type"
            )
            response.headers["Vary"] = "Origin"
        return response


def _describe(user: DevUser) -> str:
    counties = "every county" if "*" in user.counties else ", ".join(user.counties)
    return f"{user.name} ({', '.join(user.roles)}, {counties})"


def _page(title: str, body: str, *, status: int = 200) -> Response:
    """A whole page around ``body`` (HTML, already escaped)."""
    document = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)} - Missing from care (development)</title>\n"
        '<link rel="stylesheet" href="style.css">\n</head>\n<body>\n<main>\n'
        f"<h1>{html.escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )
    return Response(document, status=status, mimetype="text/html")
