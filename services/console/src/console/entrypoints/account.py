"""Signing in and out, the start page, and "who am I"."""

import logging
from urllib.parse import urlencode

from authlib.integrations.base_client.errors import OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter

from console.signin import SignInRequiredError, safe_next
from console.web import Console, form_of, see_other
from shared.auth import TokenRefusedError

logger = logging.getLogger(__name__)

NEXT_KEY = "next_after_signin"


def create_router(console: Console, registry: CollectorRegistry) -> APIRouter:
    router = APIRouter()
    signins = Counter(
        "mfc_console_signins",
        "Sign-ins by outcome (ok, refused by the provider, token refused)",
        ["outcome"],
        registry=registry,
    )

    @router.get("/")
    async def start(request: Request) -> Response:
        try:
            user = await console.user(request)
        except SignInRequiredError:
            return console.page(request, "welcome.html", user=None)
        if user.is_staff or not user.is_auditor:
            return see_other("/inbox")
        return see_other("/audit")

    @router.get("/signin")
    async def signin(request: Request, next: str = "/") -> Response:
        """Off to the identity provider; back at /signin/callback."""
        request.session[NEXT_KEY] = safe_next(next)
        redirect_uri = console.settings.public_url.rstrip("/") + "/signin/callback"
        try:
            response: Response = await console.idp.authorize_redirect(
                request, redirect_uri
            )
        except Exception:  # the provider's metadata could not be read
            logger.exception("the identity provider did not answer")
            return console.problem(
                request,
                status_code=503,
                title="Sign-in is not available right now",
                what="The sign-in service of your agency did not answer.",
                next_step="Try again in a minute. If it keeps happening, call your "
                "help desk: nobody can sign in to the console until it answers.",
            )
        return response

    @router.get("/signin/callback")
    async def callback(request: Request) -> Response:
        target = safe_next(request.session.pop(NEXT_KEY, "/"))
        try:
            token = await console.idp.authorize_access_token(request)
            await console.sessions.start(request, token)
        except OAuthError as exc:
            signins.labels("provider_refused").inc()
            logger.warning("sign-in refused by the provider: %s", exc.error)
            return console.problem(
                request,
                status_code=400,
                title="Sign-in did not finish",
                what="The sign-in was cancelled, took too long, or was started in "
                "another browser tab.",
                next_step="Go to the start page and sign in again.",
            )
        except TokenRefusedError as exc:
            signins.labels("token_refused").inc()
            logger.warning("access token refused at sign-in: %s", exc)
            return console.problem(
                request,
                status_code=403,
                title="Your sign-in does not give access to this system",
                what=f"Your agency's sign-in service answered, but the access it "
                f"gave was refused ({exc}).",
                next_step="Ask your administrator to give your account access to "
                "missing-from-care.",
            )
        signins.labels("ok").inc()
        return see_other(target)

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        if request.session.get("token"):  # nothing to protect once it has ended
            await form_of(request, console.sessions)
        console.sessions.end(request)
        return see_other("/signed-out")

    @router.get("/signed-out")
    async def signed_out(request: Request) -> Response:
        """Signed out of the console; on a shared computer, also of the agency's
        sign-in (a link: the provider's end-session page, where it has one)."""
        return console.page(
            request, "signed_out.html", user=None, provider_signout=await _end_session()
        )

    async def _end_session() -> str | None:
        try:
            metadata = await console.idp.load_server_metadata()
        except Exception:
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not endpoint:
            return None
        back = console.settings.public_url.rstrip("/") + "/signed-out"
        query = urlencode(
            {
                "client_id": console.settings.oidc_client_id,
                "post_logout_redirect_uri": back,
            }
        )
        return f"{endpoint}?{query}"

    @router.get("/me")
    async def me(request: Request) -> Response:
        user = await console.user(request)
        return console.page(request, "me.html", user=user)

    return router
