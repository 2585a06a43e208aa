"""The session: it ends with the token or after its maximum age, whichever is first,
and every form must carry the session's CSRF token."""

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from console.config import ConsoleSettings
from console.signin import CsrfRefusedError, Sessions, SignInRequiredError
from shared.auth import token_verifier
from tests import api

pytestmark = pytest.mark.unit


def settings(**overrides: Any) -> ConsoleSettings:
    return ConsoleSettings(
        oidc_issuer_url="http://127.0.0.1:1",
        session_secret="s" * 40,
        auth_issuer=api.ISSUER,
        auth_public_keys_file=api.PUBLIC_KEY_FILE,
        **overrides,
    )


def request(session: dict[str, Any], path: str = "/alerts/a1", query: str = ""):
    return SimpleNamespace(session=session, url=SimpleNamespace(path=path, query=query))


@pytest.fixture
def sessions() -> Sessions:
    chosen = settings(session_max_age=timedelta(hours=8))
    return Sessions(chosen, token_verifier(chosen))


async def test_a_session_starts_from_a_token_the_services_would_accept(sessions):
    token = api.token("oncall", counties=["NC-063"], subject="oncall.nc063")
    req = request({"_state_idp_x": "leftover of the sign-in"})
    user = await sessions.start(req, {"access_token": token, "userinfo": {"name": "R"}})
    assert user.subject == "oncall.nc063"
    assert user.counties == ["NC-063"]
    assert user.is_staff
    assert not user.is_auditor
    assert "_state_idp_x" not in req.session
    assert req.session["csrf_token"]
    assert (await sessions.user(req)).name == "R"


async def test_a_token_for_another_audience_starts_no_session(sessions):
    from shared.auth import TokenRefusedError

    token = api.token("oncall", audience="someone-else")
    with pytest.raises(TokenRefusedError, match="another audience"):
        await sessions.start(request({}), {"access_token": token})


async def test_no_session_means_sign_in_and_come_back_here(sessions):
    with pytest.raises(SignInRequiredError) as refused:
        await sessions.user(request({}, "/alerts/a1", "x=1"))
    assert refused.value.next_url == "/alerts/a1?x=1"


async def test_the_session_ends_when_the_token_expires(sessions):
    token = api.token("oncall", ttl=timedelta(seconds=-120))  # past the leeway
    req = request({"token": token, "signed_in_at": time.time()})
    with pytest.raises(SignInRequiredError):
        await sessions.user(req)
    assert req.session == {}


async def test_the_session_ends_after_its_maximum_age_whatever_the_token(sessions):
    token = api.token("oncall", ttl=timedelta(days=2))
    req = request({"token": token, "signed_in_at": time.time() - 8 * 3600 - 1})
    with pytest.raises(SignInRequiredError):
        await sessions.user(req)
    fresh = request({"token": token, "signed_in_at": time.time() - 60})
    user = await sessions.user(fresh)
    assert user.expires_at == pytest.approx(time.time() - 60 + 8 * 3600, abs=5)


def test_a_form_must_carry_the_sessions_csrf_token():
    req = request({"csrf_token": "right"})
    Sessions.check_csrf(req, "right")
    for sent in (None, "", "wrong"):
        with pytest.raises(CsrfRefusedError):
            Sessions.check_csrf(req, sent)
    with pytest.raises(CsrfRefusedError):
        Sessions.check_csrf(request({}), "anything")


def test_settings_refuse_an_unknown_time_zone_and_secure_the_cookie_off_loopback():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown time zone"):
        settings(time_zone="Mars/Olympus_Mons")
    assert not settings(public_url="http://127.0.0.1:8000").secure_cookie
    assert settings(public_url="https://console.agency.example").secure_cookie
    assert (
        settings(
            public_url="https://console.agency.example", session_https_only=False
        ).secure_cookie
        is False
    )
