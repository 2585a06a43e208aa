"""The console's composition root: settings in, ASGI app out."""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

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
    NotAllowedError,
    NotFoundError,
    ServiceError,
    ServiceUrls,
    SignInExpiredError,
)
from console.config import ConsoleSettings
from console.entrypoints import account, audit, oncall
from console.signin import (
    CsrfRefusedError,
    Sessions,
    SignInRequiredError,
    here,
    oidc_client,
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
    client = httpx.AsyncClient(
        timeout=settings.api_timeout.total_seconds(), transport=transport
    )
    console = Console(
        settings=settings,
        sessions=Sessions(settings, token_verifier(settings)),
        templates=make_templates(),
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
    app.include_router(audit.create_router(console))
    _add_errors(app, console)
    _add_headers_and_metrics(app, registry)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret.get_secret_value(),
        session_cookie="mfc_console",
        max_age=int(settings.session_max_age.total_seconds()),
        same_site="lax",
        https_only=settings.session_https_only,
    )
    _add_ops(app, console, registry)
    return app


def _add_errors(app: FastAPI, console: Console) -> None:
    @app.exception_handler(SignInRequiredError)
    async def sign_in(request: Request, exc: SignInRequiredError) -> Response:
        if request.method != "GET":
            # A form posted after the session ended: sign in, then back to its page.
            referer = request.headers.get("referer", "/")
            path = referer.split("//", 1)[-1].partition("/")[2]
            return to_signin("/" + path)
        return to_signin(exc.next_url)

    @app.exception_handler(SignInExpiredError)
    async def expired(request: Request, _exc: SignInExpiredError) -> Response:
        console.sessions.end(request)
        return to_signin(here(request) if request.method == "GET" else "/")

    @app.exception_handler(CsrfRefusedError)
    async def csrf(request: Request, _exc: CsrfRefusedError) -> Response:
        return console.problem(
            request,
            status_code=403,
            title="This form could not be sent",
            what="The form was older than your sign-in, or did not come from this "
            "console. Nothing was saved.",
            next_step="Go back, reload the page and send the form again.",
        )

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

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, _exc: NotFoundError) -> Response:
        return _not_found(request, console)

    @app.exception_handler(NotAllowedError)
    async def not_allowed(request: Request, exc: NotAllowedError) -> Response:
        return console.problem(
            request,
            status_code=403,
            title="Your role does not allow this",
            what=f"{service_words(exc.service).capitalize()} refused it for your "
            "account's role.",
            next_step="Go back, or ask your administrator for the role you need.",
        )

    @app.exception_handler(ServiceError)
    async def unavailable(request: Request, exc: ServiceError) -> Response:
        return console.problem(
            request,
            status_code=503,
            title="Part of the system is not answering",
            what=f"{service_words(exc.service).capitalize()} did not answer, so this "
            "page cannot be shown. Nothing you did was lost.",
            next_step="Try again in a minute. If a deadline is close, make the calls "
            "from your paper call list and record them here later.",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _not_found(request, console)
        return console.problem(
            request,
            status_code=exc.status_code,
            title="That did not work",
            what=str(exc.detail),
            next_step="Go to the start page and try again.",
        )

    @app.exception_handler(Exception)
    async def failure(request: Request, _exc: Exception) -> Response:
        logger.exception("page failed: %s", request.url.path)
        return console.problem(
            request,
            status_code=500,
            title="Something went wrong on our side",
            what="The console could not make this page. It has been logged.",
            next_step="Try again. If it happens again, tell your help desk the time "
            "it happened.",
        )


def _not_found(request: Request, console: Console) -> Response:
    return console.problem(
        request,
        status_code=404,
        title="Not found",
        what="There is nothing here, or it belongs to a county your account does "
        "not cover.",
        next_step="Check the link, or go to the start page.",
    )


def _add_headers_and_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
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
        response = await call_next(request)
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
