"""What every page needs: the person, their API handle, templates, form parsing and
the pages that say what went wrong."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from console.adapters.services import Api, ServiceUrls
from console.config import ConsoleSettings
from console.domain import words
from console.signin import CSRF_FIELD, Sessions, User, signin_url

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
SERVICE_WORDS = {
    "intake": "the episode service",
    "notifier": "the deadline service",
    "followup": "the task service",
    "audit": "the audit trail",
}


def make_templates(zone: tzinfo) -> Jinja2Templates:
    """Templates whose times read in the agency's time ``zone``."""
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.globals.update(
        words=words,
        recipients=words.RECIPIENTS,
        methods=words.METHODS,
        zone=zone,
    )
    env.filters["when"] = partial(words.when, zone=zone)
    env.filters["event_words"] = words.event_words
    return templates


class RoleRefusedError(Exception):
    """The signed-in person's roles do not include this page's."""

    def __init__(self, user: User, what: str, roles: tuple[str, ...]) -> None:
        super().__init__(what)
        self.user = user
        self.what = what
        self.roles = roles


@dataclass
class Console:
    """The console's parts, made once (bootstrap) and shared by the pages."""

    settings: ConsoleSettings
    sessions: Sessions
    templates: Jinja2Templates
    client: httpx.AsyncClient
    urls: ServiceUrls
    idp: Any

    async def user(self, request: Request) -> User:
        return await self.sessions.user(request)

    async def maybe_user(self, request: Request) -> User | None:
        """The signed-in person, if any (an error page keeps their navigation)."""
        if not request.session.get("token"):
            return None
        try:
            return await self.sessions.user(request)
        except Exception:
            return None

    async def user_with(self, request: Request, what: str, *roles: str) -> User:
        """The signed-in person, if one of ``roles`` is theirs (admin always)."""
        user = await self.sessions.user(request)
        if not user.has(*roles):
            raise RoleRefusedError(user, what, roles)
        return user

    def api(self, user: User) -> Api:
        return Api(self.client, self.urls, user.token)

    def page(
        self,
        request: Request,
        template: str,
        *,
        user: User | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "user": user,
                "csrf_field": CSRF_FIELD,
                "csrf_token": Sessions.csrf_token(request) if user else "",
                "mail_inbox_url": self.settings.mail_inbox_url,
                "unsaved": request.query_params.get("unsaved") == "1",
                "now": datetime.now(UTC),
                "local_now": datetime.now(self.settings.zone),
                **context,
            },
            status_code=status_code,
        )
        return response

    def problem(
        self,
        request: Request,
        *,
        status_code: int,
        title: str,
        what: str,
        next_step: str,
        user: User | None = None,
    ) -> HTMLResponse:
        """A page that says what happened and what to do next; never a trace."""
        return self.page(
            request,
            "problem.html",
            user=user,
            status_code=status_code,
            title=title,
            what=what,
            next_step=next_step,
        )


async def form_of(request: Request, sessions: Sessions) -> dict[str, str]:
    """A posted form (urlencoded), after its CSRF token was checked."""
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = {k: v[-1].strip() for k, v in parse_qs(body).items()}
    sessions.check_csrf(request, fields.pop(CSRF_FIELD, None))
    return fields


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def to_signin(next_url: str) -> Response:
    return see_other(signin_url(next_url))


def service_words(service: str) -> str:
    return SERVICE_WORDS.get(service, service)


def query_of(request: Request, names: tuple[str, ...]) -> Mapping[str, str]:
    return {n: request.query_params[n] for n in names if request.query_params.get(n)}
