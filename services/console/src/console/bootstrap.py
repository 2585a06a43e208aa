"""The console's composition root: settings in, ASGI app out."""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from console.adapters.services import (
    ConflictError,
    NotAllowedError,
    NotFoundError,
    ServiceError,
    ServiceUrls,
    SignInExpiredError,
)
from console.config import ConsoleSettings
from console.entrypoints import account, audit, oncall, schedules
from console.signin import (
    CsrfRefusedError,
    Sessions,
    SignInRequiredError,
    here,
    oidc_client,
    signin_url,
)
from console.web import (
    HERE,
    Console,
    RoleRefusedError,
    make_templates,
    service_words,
    to_signin,
)
from shared.auth import token_verifier

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(
    settings: ConsoleSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    registry = CollectorRegistry()
    # httpx logs every request's URL at INFO: a URL is whatever a person typed or
    # followed, so it stays out of the logs (failures are logged by the pages).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    client = httpx.AsyncClient(
        timeout=settings.api_timeout.total_seconds(), transport=transport
    )
    console = Console(
        settings=settings,
        sessions=Sessions(settings, token_verifier(settings)),
        templates=make_templates(settings.zone),
        client=client,
        urls=ServiceUrls(
            intake=settings.intake_url,
            notifier=settings.notifier_url,
            followup=settings.followup_url,
            audit=settings.audit_url,
        ),
        idp=oidc_client(settings),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logger.info("console started")
        try:
            yield
        finally:
            await client.aclose()
            logger.info("console stopped")

    app = FastAPI(
        title="missing-from-care console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(account.create_router(console, registry))
    app.include_router(oncall.create_router(console))
    app.include_router(schedules.create_router(console))
    app.include_router(audit.create_router(console))
    _add_errors(app, console)
    _add_headers_and_metrics(app, console, registry)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret.get_secret_value(),
        session_cookie="mfc_console",
        max_age=int(settings.session_max_age.total_seconds()),
        same_site="lax",
        https_only=settings.secure_cookie,
    )
    _add_ops(app, console, registry)
    return app


def _with_flag(path: str, flag: str) -> str:
    return path + ("&" if "?" in path else "?") + f"{flag}=1"


def _back_to_signin(request: Request) -> Response:
    """Sign in again, then back: to the page of a live part (htmx asks the browser
    to go there itself), or of a form, which was not saved (the page says so)."""
    if request.headers.get("HX-Request") == "true":
        page = request.headers.get("HX-Current-URL", "/").split("//", 1)[-1]
        return Response(
            headers={"HX-Redirect": signin_url("/" + page.partition("/")[2])}
        )
    if request.method != "GET":
        referer = request.headers.get("referer", "/").split("//", 1)[-1]
        return to_signin(_with_flag("/" + referer.partition("/")[2], "unsaved"))
    return to_signin(here(request))


Words = str | Callable[[Any], str]

PROBLEMS: dict[type[Exception], tuple[int, str, Words, str]] = {
    CsrfRefusedError: (
        403,
        "This form could not be sent",
        "The form was older than your sign-in, or did not come from this console. "
        "Nothing was saved.",
        "Go back, reload the page and send the form again.",
    ),
    NotFoundError: (
        404,
        "Not found",
        "There is nothing here, or it belongs to a county your account does not cover.",
        "Check the link, or go to the start page.",
    ),
    NotAllowedError: (
        403,
        "Your role does not allow this",
        lambda exc: (
            f"{service_words(exc.service).capitalize()} refused it for your "
            "account's role."
        ),
        "Go back, or ask your administrator for the role you need.",
    ),
    ConflictError: (
        409,
        "That was already done, or cannot be done now",
        lambda exc: (
            f"{service_words(exc.service).capitalize()} said: "
            f"{exc.reason or 'it is not possible in the state things are in'}."
        ),
        "Go back and reload the page to see how things stand now.",
    ),
    ServiceError: (
        503,
        "Part of the system is not answering",
        lambda exc: (
            f"{service_words(exc.service).capitalize()} did not answer, so "
            "this page cannot be shown. Nothing you did was lost."
        ),
        "Try again in a minute. If a deadline is close, make the calls from your "
        "paper call list and record them here later.",
    ),
}
"""What a person reads for each failure: status, title, what happened, what to do."""


def _add_errors(app: FastAPI, console: Console) -> None:
    @app.exception_handler(SignInRequiredError)
    async def sign_in(request: Request, _exc: SignInRequiredError) -> Response:
        return _back_to_signin(request)

    @app.exception_handler(SignInExpiredError)
    async def expired(request: Request, _exc: SignInExpiredError) -> Response:
        console.sessions.end(request)
        return _back_to_signin(request)

    @app.exception_handler(RoleRefusedError)
    async def role_refused(request: Request, exc: RoleRefusedError) -> Response:
        return console.problem(
            request,
            status_code=403,
            title="This page is not part of your role",
            what=f"Your account may not see {exc.what}.",
            next_step="Go to the start page to see what you can do, or ask your "
            "administrator for the role you need.",
            user=exc.user,
        )

    async def problem(request: Request, exc: Exception) -> Response:
        kind = next(k for k in type(exc).__mro__ if k in PROBLEMS)
        status, title, what, next_step = PROBLEMS[kind]
        return console.problem(
            request,
            status_code=status,
            title=title,
            what=what(exc) if callable(what) else what,
            next_step=next_step,
            user=await console.maybe_user(request),
        )

    for kind in PROBLEMS:
        app.add_exception_handler(kind, problem)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return await problem(request, NotFoundError("console", 404))
        return console.problem(
            request,
            status_code=exc.status_code,
            title="That did not work",
            what=str(exc.detail),
            next_step="Go to the start page and try again.",
            user=await console.maybe_user(request),
        )


def _add_headers_and_metrics(
    app: FastAPI, console: Console, registry: CollectorRegistry
) -> None:
    latency = Histogram(
        "mfc_http_request_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        registry=registry,
    )

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # the failure page, with the same headers as any page
            logger.exception("page failed: %s", request.url.path)
            response = console.problem(
                request,
                status_code=500,
                title="Something went wrong on our side",
                what="The console could not make this page. It has been logged.",
                next_step="Try again. If it happens again, tell your help desk the "
                "time it happened.",
            )
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            # Pages carry children's data: never kept in a shared cache.
            response.headers["Cache-Control"] = "no-store"
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        latency.labels(request.method, template, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


def _add_ops(app: FastAPI, console: Console, registry: CollectorRegistry) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive", "service": "console"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, object]:
        """Ready when the four services answer. (A signed-in person can work while
        the identity provider is down; sign-in then says so on its own page.)"""
        problems: dict[str, str] = {}
        targets = {
            name: f"{console.urls[name]}/healthz"
            for name in ("intake", "notifier", "followup", "audit")
        }
        for name, url in targets.items():
            try:
                answer = await console.client.get(url, timeout=2)
                if answer.status_code != 200:
                    problems[name] = f"answered {answer.status_code}"
            except httpx.HTTPError as exc:
                problems[name] = type(exc).__name__
        if problems:
            response.status_code = 503
            return {"status": "not ready", "problems": problems}
        return {"status": "ready"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
