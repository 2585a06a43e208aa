"""On-call staff and caseworkers: the alert inbox, one alert, the episode page with
its "record a notice" form, and the call sheet."""

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console import callsheet
from console.adapters.services import Api, InvalidError, NotFoundError
from console.domain import words
from console.domain.inbox import inbox
from console.domain.notice import notice_from_form
from console.domain.timeline import timeline
from console.web import Console, form_of, see_other
from shared.events import EventType

STAFF = ("oncall", "caseworker")


def create_router(console: Console) -> APIRouter:
    router = APIRouter()

    async def case_ids(api: Api, episode_ids: set[str]) -> dict[str, str]:
        limit = asyncio.Semaphore(8)  # a county in crisis must not flood intake

        async def one(episode_id: str) -> tuple[str, str]:
            try:
                async with limit:
                    return episode_id, str((await api.episode(episode_id))["case_id"])
            except NotFoundError:
                return episode_id, ""

        return dict(await asyncio.gather(*(one(e) for e in sorted(episode_ids))))

    async def inbox_rows(api: Api) -> list[Any]:
        open_ = await api.obligations(status="open")
        cases = await case_ids(api, {str(o["episode_id"]) for o in open_})
        return inbox(open_, cases, datetime.now(UTC))

    @router.get("/inbox")
    async def inbox_page(request: Request) -> Response:
        user = await console.user_with(request, "the alert inbox", *STAFF)
        rows = await inbox_rows(console.api(user))
        return console.page(request, "inbox.html", user=user, rows=rows)

    @router.get("/inbox/rows")
    async def inbox_fragment(request: Request) -> Response:
        """The inbox's table body, refreshed in place every 30 s."""
        user = await console.user_with(request, "the alert inbox", *STAFF)
        rows = await inbox_rows(console.api(user))
        return console.page(request, "_inbox_rows.html", user=user, rows=rows)

    @router.get("/alerts/{alert_id}")
    async def alert_page(request: Request, alert_id: str) -> Response:
        user = await console.user(request)
        api = console.api(user)
        alert = await api.alert(alert_id)
        return console.page(
            request,
            "alert.html",
            user=user,
            alert=alert,
            obligation=alert["obligation"],
            acked=request.query_params.get("acked") == "1",
        )

    @router.post("/alerts/{alert_id}/ack")
    async def acknowledge(request: Request, alert_id: str) -> Response:
        user = await console.user(request)
        fields = await form_of(request, console.sessions)
        await console.api(user).acknowledge(alert_id, fields.get("note") or None)
        return see_other(f"/alerts/{alert_id}?acked=1")

    async def episode_view(api: Api, episode_id: str) -> dict[str, Any]:
        episode, obligations, alerts, prompts = await asyncio.gather(
            api.episode(episode_id),
            api.obligations(episode_id=episode_id),
            api.alerts(episode_id),
            api.prompts(episode_id),
        )
        report: dict[str, Any] = next(
            (
                t["data"]
                for t in episode.get("timeline") or []
                if t["type"] == EventType.EPISODE_REPORTED
            ),
            {},
        )
        child = report.get("child") or {}
        latest: dict[str, dict[str, Any]] = {}
        for alert in sorted(alerts, key=lambda a: (str(a["created_at"]), a["level"])):
            latest[str(alert["obligation_id"])] = alert
        return {
            "happenings": timeline(episode, obligations, alerts),
            "episode": episode,
            "initials": words.initials(child.get("first_name"), child.get("last_name")),
            "obligations": sorted(obligations, key=lambda o: str(o["due_at"])),
            "latest_alert": latest,
            "prompts": prompts,
        }

    @router.get("/episodes/{episode_id}")
    async def episode_page(request: Request, episode_id: str) -> Response:
        user = await console.user(request)
        view = await episode_view(console.api(user), episode_id)
        return console.page(
            request,
            "episode.html",
            user=user,
            notice_key=secrets.token_urlsafe(16),
            form={},
            problems=[],
            recorded=request.query_params.get("recorded") == "1",
            task_done=request.query_params.get("done") == "1",
            **view,
        )

    @router.post("/episodes/{episode_id}/notices")
    async def record_notice(request: Request, episode_id: str) -> Response:
        user = await console.user(request)
        fields = await form_of(request, console.sessions)
        api = console.api(user)
        notice, problems = notice_from_form(fields)
        if not problems:
            try:
                await api.record_notice(
                    episode_id, notice, fields.get("notice_key") or ""
                )
            except InvalidError as exc:
                problems = exc.problems
            else:
                return see_other(f"/episodes/{episode_id}?recorded=1#saved")
        view = await episode_view(api, episode_id)
        return console.page(
            request,
            "episode.html",
            user=user,
            status_code=422,
            notice_key=fields.get("notice_key") or secrets.token_urlsafe(16),
            form=fields,
            problems=problems,
            recorded=False,
            task_done=False,
            **view,
        )

    @router.post("/episodes/{episode_id}/tasks/{prompt_id}/done")
    async def complete_task(
        request: Request, episode_id: str, prompt_id: str
    ) -> Response:
        user = await console.user(request)
        fields = await form_of(request, console.sessions)
        await console.api(user).complete_prompt(prompt_id, fields.get("note") or None)
        return see_other(f"/episodes/{episode_id}?done=1#tasks")

    @router.get("/episodes/{episode_id}/call-sheet")
    async def call_sheet(request: Request, episode_id: str) -> Response:
        user = await console.user(request)
        sheet = await _sheet(console.api(user), episode_id)
        return console.page(request, "call_sheet.html", user=user, sheet=sheet)

    @router.get("/episodes/{episode_id}/call-sheet.pdf")
    async def call_sheet_pdf(request: Request, episode_id: str) -> Response:
        user = await console.user(request)
        sheet = await _sheet(console.api(user), episode_id)
        pdf = await asyncio.to_thread(callsheet.render_pdf, sheet)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="call-sheet-{episode_id}.pdf"'
            },
        )

    return router


async def _sheet(api: Api, episode_id: str) -> callsheet.CallSheet:
    episode, obligations = await asyncio.gather(
        api.episode(episode_id), api.obligations(episode_id=episode_id)
    )
    return callsheet.build_call_sheet(episode, obligations, now=datetime.now(UTC))
