"""The notifier's on-call schedules over HTTP: who is on call, overrides added and
removed while the system runs (role ``admin``), and each schedule's calendar feed."""

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from notifier import handlers
from notifier.config import NotifierSettings
from notifier.domain import calendar
from notifier.domain.schedules import (
    OverrideDraft,
    OverrideRefusedError,
    RuntimeOverride,
    timeline,
)
from notifier.ports import PortFactory
from rules import on_call
from shared.auth import Principal, Role
from shared.policy import Schedule
from shared.runtime import ServiceRuntime

AHEAD = timedelta(days=14)
"""How far ahead a schedule's page shows its shifts."""
FEED_BEHIND, FEED_AHEAD = timedelta(days=7), timedelta(days=84)
"""The calendar feed's window: last week to twelve weeks on."""
ICS = "text/calendar; charset=utf-8"


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    """The policy contact who covers (e.g. ``oncall-b``)."""
    start: AwareDatetime
    end: AwareDatetime
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ]
    """Why (kept in the audit trail): "sick day", "swap with B"."""


class Person(BaseModel):
    id: str
    name: str


class OverrideView(BaseModel):
    id: UUID
    schedule: str
    contact: Person
    start: datetime
    end: datetime
    reason: str
    created_by: str
    created_at: datetime


class ShiftView(BaseModel):
    start: datetime
    end: datetime
    contact: Person
    override_id: UUID | None
    """The runtime override that put them on call, if one did."""
    from_file: bool
    """An override in the policy file put them on call."""


class ScheduleView(BaseModel):
    name: str
    members: list[Person]
    contacts: list[Person]
    """Everyone the policy names, any of whom an override may put on call."""
    shift_hours: float
    on_call_now: Person
    overrides: list[OverrideView]
    """Runtime overrides in force or to come, earliest first."""
    shifts: list[ShiftView]
    """Who is on call from now to two weeks on."""
    calendar_url: str | None
    """The calendar feed's address for calendar apps (path on this service, with
    its key); null when ``NOTIFIER_CALENDAR_SECRET`` is not set."""


def create_router(
    runtime: ServiceRuntime, port_of: PortFactory, deps: handlers.Deps
) -> APIRouter:
    settings = runtime.settings
    assert isinstance(settings, NotifierSettings)
    ctx = deps.ctx
    router = APIRouter(prefix="/v1", tags=["schedules"])
    staff = Depends(runtime.auth.require(Role.CASEWORKER, Role.ONCALL))
    admin = Depends(runtime.auth.require())

    def every_county(principal: Principal) -> None:
        if principal.counties is not None:
            raise HTTPException(
                status_code=403,
                detail="a schedule serves every county: changing one needs an admin "
                "whose scope is every county",
            )

    def schedule_of(name: str) -> Schedule:
        found = ctx.policy.document.schedules.get(name)
        if found is None:
            known = ", ".join(sorted(ctx.policy.document.schedules)) or "none"
            raise HTTPException(
                status_code=404, detail=f"no schedule {name!r}; the schedules: {known}"
            )
        return found

    def person(contact_id: str) -> Person:
        contact = ctx.policy.document.contacts.get(contact_id)
        return Person(id=contact_id, name=contact.name if contact else contact_id)

    def override_view(o: RuntimeOverride) -> OverrideView:
        return OverrideView(
            id=o.id,
            schedule=o.schedule,
            contact=person(o.contact),
            start=o.start,
            end=o.end,
            reason=o.reason,
            created_by=o.created_by,
            created_at=o.created_at,
        )

    async def in_force(name: str, now: datetime) -> list[RuntimeOverride]:
        async with runtime.pool.acquire() as conn:
            return await port_of(conn).overrides_in_force(name, now)

    def key_of(name: str) -> str | None:
        if settings.calendar_secret is None:
            return None
        secret = settings.calendar_secret.get_secret_value().encode()
        return hmac.new(
            secret, f"calendar:{name}".encode(), hashlib.sha256
        ).hexdigest()[:32]

    async def feed(name: str, *, private: bool = True) -> Response:
        schedule, now = schedule_of(name), ctx.clock.now()
        shifts = timeline(
            schedule,
            await in_force(name, now - FEED_BEHIND),
            now - FEED_BEHIND,
            now + FEED_AHEAD,
        )
        body = calendar.ics(
            name, shifts, ctx.policy.document.contacts, now, reasons=private
        )
        return Response(content=body, media_type=ICS)

    @router.get("/schedules", response_model=list[ScheduleView])
    async def list_schedules(_p: Annotated[Principal, staff]) -> list[ScheduleView]:
        """Every on-call schedule of the policy: who is on call now, the overrides
        to come and the next two weeks' shifts."""
        return [await describe(name) for name in sorted(ctx.policy.document.schedules)]

    @router.get(
        "/schedules/{name}",
        response_model=ScheduleView,
        responses={404: {"description": "No such schedule in the policy"}},
    )
    async def get_schedule(name: str, _p: Annotated[Principal, staff]) -> ScheduleView:
        """One schedule: who is on call now (as alerts resolve it: a runtime
        override, else the file's, else the rotation), the overrides to come and
        the next two weeks' shifts."""
        return await describe(name)

    async def describe(name: str) -> ScheduleView:
        schedule, now = schedule_of(name), ctx.clock.now()
        overrides = await in_force(name, now)
        shifts = timeline(schedule, overrides, now, now + AHEAD)
        key = key_of(name)
        return ScheduleView(
            name=name,
            members=[person(m) for m in schedule.members],
            contacts=[person(c) for c in sorted(ctx.policy.document.contacts)],
            shift_hours=schedule.shift.total_seconds() / 3600,
            on_call_now=person(shifts[0].contact if shifts else on_call(schedule, now)),
            overrides=[override_view(o) for o in overrides],
            shifts=[
                ShiftView(
                    start=s.start,
                    end=s.end,
                    contact=person(s.contact),
                    override_id=s.override.id if s.override else None,
                    from_file=s.from_file,
                )
                for s in shifts
            ],
            calendar_url=f"/v1/calendars/{name}.ics?key={key}" if key else None,
        )

    @router.post(
        "/schedules/{name}/overrides",
        response_model=OverrideView,
        status_code=201,
        responses={
            404: {"description": "No such schedule in the policy"},
            409: {"description": "It overlaps another override of the schedule"},
            422: {"description": "Invalid, naming the field (past, unknown contact)"},
        },
    )
    async def add_override(
        name: str, body: OverrideRequest, principal: Annotated[Principal, admin]
    ) -> OverrideView:
        """Put ``contact`` on call in this schedule from ``start`` to ``end`` (a
        sick day, a swap): in force at once on every replica, for every step that
        pages the schedule, and written to the audit trail. Needs an admin of every
        county."""
        every_county(principal)
        schedule_of(name)
        draft = OverrideDraft(body.contact, body.start, body.end, body.reason)
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                added = await handlers.add_override(
                    port_of(conn), name, draft, by=principal.subject, deps=deps
                )
        except OverrideRefusedError as exc:
            raise _refused(exc) from None
        return override_view(added)

    @router.delete(
        "/schedules/{name}/overrides/{override_id}",
        response_model=OverrideView,
        responses={404: {"description": "No such override in force or to come"}},
    )
    async def remove_override(
        name: str,
        override_id: UUID,
        principal: Annotated[Principal, admin],
        reason: Annotated[str | None, Query(max_length=500)] = None,
    ) -> OverrideView:
        """End an override (or drop one to come): the rotation decides again from
        now. Written to the audit trail with ``reason``."""
        every_county(principal)
        schedule_of(name)
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                removed = await handlers.remove_override(
                    port_of(conn),
                    name,
                    override_id,
                    by=principal.subject,
                    reason=reason,
                    deps=deps,
                )
        except handlers.OverrideNotFoundError:
            raise HTTPException(
                status_code=404,
                detail="no such override in force or to come in this schedule",
            ) from None
        return override_view(removed)

    @router.get(
        "/schedules/{name}/calendar.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}, 404: {}},
    )
    async def calendar_feed(name: str, _p: Annotated[Principal, staff]) -> Response:
        """The schedule as an iCalendar feed (RFC 5545), overrides included: last
        week to twelve weeks on, one event per shift."""
        return await feed(name)

    @router.get(
        "/calendars/{name}.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}, 404: {}},
    )
    async def subscribed_feed(
        name: str, key: Annotated[str, Query(max_length=64)] = ""
    ) -> Response:
        """The same feed for calendar apps, which cannot sign in: the address with
        its key (``calendar_url`` of the schedule) is the credential. A wrong key,
        or none configured, is answered as an unknown address."""
        expected = key_of(name)
        if (
            expected is None
            or name not in ctx.policy.document.schedules
            or not hmac.compare_digest(expected.encode(), key.encode())
        ):
            raise HTTPException(status_code=404, detail="no such calendar")
        return await feed(name, private=False)

    return router


def _refused(exc: OverrideRefusedError) -> HTTPException:
    if exc.conflict:
        return HTTPException(status_code=409, detail=str(exc))
    detail: list[dict[str, Any]] = [
        {"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}
    ]
    return HTTPException(status_code=422, detail=detail)
