"""Who is on call: each schedule's person now and next shifts, the covers (runtime
overrides) to come, and for admins a form to add a cover or end one. A calendar
download per schedule."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.adapters.services import ConflictError, InvalidError
from console.domain.cover import cover_from_form
from console.web import Console, form_of, see_other

STAFF = ("oncall", "caseworker")
WHAT = "the on-call schedules"
LABELS = {"contact": "Who covers", "start": "From", "end": "Until", "reason": "Why"}
"""The form's labels, by the field a problem names."""
OVERLAP = (
    "This overlaps another cover of the schedule (listed above): end that one "
    "first, or choose another time."
)


def create_router(console: Console) -> APIRouter:
    router = APIRouter()

    async def show(
        request: Request,
        *,
        status_code: int = 200,
        failed: str | None = None,
        form: dict[str, str] | None = None,
        problems: list[tuple[str, str]] | None = None,
    ) -> Response:
        user = await console.user_with(request, WHAT, *STAFF)
        schedules = await console.api(user).schedules()
        return console.page(
            request,
            "on_call.html",
            user=user,
            status_code=status_code,
            schedules=schedules,
            failed=failed,
            form=form or {},
            problems=problems or [],
            labels=LABELS,
            added=request.query_params.get("added"),
            ended=request.query_params.get("ended"),
        )

    @router.get("/on-call")
    async def on_call_page(request: Request) -> Response:
        return await show(request)

    @router.post("/on-call/{name}/covers")
    async def add_cover(request: Request, name: str) -> Response:
        user = await console.user_with(request, WHAT, "admin")
        fields = await form_of(request, console.sessions)
        api = console.api(user)
        allowed = [c["id"] for c in _schedule(await api.schedules(), name)["contacts"]]
        cover, problems = cover_from_form(
            fields, console.settings.zone, allowed, now=datetime.now(UTC)
        )
        if not problems:
            try:
                await api.add_cover(name, cover)
            except InvalidError as exc:
                problems = exc.problems
            except ConflictError:
                problems = [("start", OVERLAP)]
            else:
                return see_other(f"/on-call?added={name}#{name}")
        return await show(
            request, status_code=422, failed=name, form=fields, problems=problems
        )

    @router.post("/on-call/{name}/covers/{cover_id}/end")
    async def end_cover(request: Request, name: str, cover_id: UUID) -> Response:
        user = await console.user_with(request, WHAT, "admin")
        fields = await form_of(request, console.sessions)
        await console.api(user).end_cover(
            name, str(cover_id), fields.get("reason") or None
        )
        return see_other(f"/on-call?ended={name}#{name}")

    @router.get("/on-call/{name}.ics")
    async def calendar(request: Request, name: str) -> Response:
        user = await console.user_with(request, WHAT, *STAFF)
        body = await console.api(user).schedule_calendar(name)
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="on-call-{name}.ics"'
            },
        )

    return router


def _schedule(schedules: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for schedule in schedules:
        if schedule["name"] == name:
            return schedule
    return {"contacts": []}
