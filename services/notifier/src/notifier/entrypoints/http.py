"""The notifier's HTTP API: acknowledge alerts, look up obligations and alerts."""

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from notifier import handlers
from notifier.adapters import postgres
from notifier.domain.steps import responsible_level
from notifier.ports import PortFactory
from rules import resolve
from shared.alerting import AlertingContext
from shared.auth import Principal, Role
from shared.policy import Chain
from shared.runtime import ServiceRuntime


class AckRequest(BaseModel):
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None
    acked_by: SkipJsonSchema[Any] = None
    """Refused: who acknowledged is the caller's sign-in (the token's subject)."""

    @field_validator("acked_by", mode="before")
    @classmethod
    def _not_from_the_body(cls, _value: Any) -> None:
        raise PydanticCustomError(
            "set_from_token", "set from your sign-in; do not send it"
        )


class AckView(BaseModel):
    alert_id: UUID
    acked_by: str
    acked_at: datetime
    snoozed_until: datetime | None
    """Alerts for this obligation resume after this, if it is still open."""
    acks: list[dict[str, Any]]
    """Every acknowledgement of this alert, in order."""


class ObligationView(BaseModel):
    id: UUID
    episode_id: UUID
    county_code: str
    jurisdiction: str
    kind: str
    title: str
    status: str
    breached: bool
    opened_at: datetime
    clock_start: datetime
    due_at: datetime
    policy_digest: str
    rule: dict[str, Any]
    waiting_reason: str | None
    snoozed_until: datetime | None
    snoozed_level: int | None
    """Levels up to this one are quiet until ``snoozed_until`` (an ack)."""
    breached_at: datetime | None
    satisfied_at: datetime | None
    reference_number: str | None
    closed_reason: str | None
    child_initials: str | None = None
    """The child's initials (never the name)."""
    level_reached: int | None = None
    """The highest escalation level alerted so far; null before the first alert."""
    last_alert_id: UUID | None = None
    """The newest alert of this obligation; null before the first alert."""
    acked: bool = False
    """Whether the newest alert has been acknowledged."""
    source: str | None = None
    """The rule's legal source, as the rule cited it when the obligation opened."""
    responsible_now: list[dict[str, str]] | None = None
    """Who must act now, while it is open: the people of the level in charge (the
    top of the chain once breached), with whoever the schedule has on call at this
    moment."""

    @classmethod
    def of(
        cls,
        row: asyncpg.Record,
        ctx: AlertingContext,
        now: datetime,
        covers: Mapping[str, str],
    ) -> "ObligationView":
        computed = ("breached", "responsible_now")
        return cls(
            **{k: row[k] for k in cls.model_fields if k not in computed},
            breached=row["breached_at"] is not None,
            responsible_now=_responsible(row, ctx, now, covers)
            if row["status"] == "open"
            else None,
        )


def _responsible(
    row: asyncpg.Record,
    ctx: AlertingContext,
    now: datetime,
    covers: Mapping[str, str],
) -> list[dict[str, str]]:
    chain = Chain.model_validate(row["chain"])
    level = responsible_level(
        chain, row["opened_at"], breached=row["breached_at"] is not None, at=now
    )
    staff = {"caseworker": row["caseworker"], "supervisor": row["supervisor"]}
    try:
        people = resolve(ctx.policy, chain.levels[level].notify, staff, now, covers)
    except KeyError:  # a contact or schedule since removed from the policy
        return []
    return [{"id": p.id, "name": p.name} for p in people]


class Recipient(BaseModel):
    id: str
    name: str


class Ack(BaseModel):
    acked_by: str
    acked_at: datetime
    note: str | None


class AlertView(BaseModel):
    """One alert with its acknowledgements and its obligation."""

    id: UUID
    obligation_id: UUID
    episode_id: UUID
    step_key: str
    """The timer step that raised it: ``escalate:N``, ``remind:N``, ``breach:N``."""
    level: int
    level_name: str
    reason: str
    """``opened``, ``escalated``, ``reminded`` or ``breached``."""
    scheduled_at: datetime
    created_at: datetime
    recipients: list[Recipient]
    """Who was alerted (id and name; addresses stay with the notifier)."""
    acks: list[Ack]
    """Every acknowledgement of this alert, in order."""
    obligation: ObligationView


def create_router(
    runtime: ServiceRuntime, port_of: PortFactory, deps: handlers.Deps
) -> APIRouter:
    ctx = deps.ctx
    router = APIRouter(prefix="/v1", tags=["notifier"])
    staff = Depends(runtime.auth.require(Role.CASEWORKER, Role.ONCALL))

    @router.post(
        "/alerts/{alert_id}/ack",
        response_model=AckView,
        responses={
            404: {"description": "No such alert (or not in the caller's counties)"},
            422: {
                "description": "Invalid, naming each bad field (acked_by is refused)"
            },
        },
    )
    async def acknowledge(
        alert_id: UUID,
        principal: Annotated[Principal, staff],
        body: AckRequest | None = None,
    ) -> AckView:
        """Acknowledge an alert as the signed-in person (the token's subject is
        ``acked_by``): quiets its obligation's alerts to the alert's level (and the
        levels below) for the snooze period; escalation to higher levels goes on.
        Only recording the notice itself satisfies the obligation."""
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                outcome = await handlers.acknowledge(
                    port_of(conn),
                    alert_id,
                    acked_by=principal.subject,
                    note=body.note if body else None,
                    deps=deps,
                    in_scope=principal.sees,
                )
        except handlers.AlertNotFoundError:
            raise HTTPException(status_code=404, detail="no such alert") from None
        return AckView(
            alert_id=outcome.alert_id,
            acked_by=outcome.acked_by,
            acked_at=outcome.acked_at,
            snoozed_until=outcome.snoozed_until,
            acks=[asdict(a) for a in outcome.acks],
        )

    @router.get("/obligations", response_model=list[ObligationView])
    async def list_obligations(
        principal: Annotated[Principal, staff],
        episode_id: UUID | None = None,
        status: Literal["open", "satisfied", "moot", "breached"] | None = None,
        due_before: AwareDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[ObligationView]:
        """Obligations by episode, status (``breached``: open and past due) and due
        time, most urgent first (``due_at`` ascending)."""
        async with runtime.pool.acquire() as conn:
            rows = await postgres.find_obligations(
                conn,
                episode_id=episode_id,
                status=status,
                due_before=due_before,
                limit=limit,
                counties=principal.county_filter(),
            )
            now = ctx.clock.now()
            covers = await port_of(conn).covers_at(now)
        return [ObligationView.of(r, ctx, now, covers) for r in rows]

    @router.get("/alerts")
    async def list_alerts(
        principal: Annotated[Principal, staff],
        episode_id: UUID | None = None,
        open: Annotated[
            bool, Query(description="Only alerts whose obligation is still open")
        ] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """The alerts raised, with who was alerted and why: an episode's in the
        order they were raised, or every episode's newest first (an inbox); either
        way the newest ``limit``."""
        async with runtime.pool.acquire() as conn:
            rows = await postgres.find_alerts(
                conn,
                episode_id=episode_id,
                open_only=open,
                limit=limit,
                counties=principal.county_filter(),
            )
        return [dict(r) for r in rows]

    @router.get(
        "/alerts/{alert_id}",
        response_model=AlertView,
        responses={
            404: {"description": "No such alert (or not in the caller's counties)"}
        },
    )
    async def get_alert(
        alert_id: UUID, principal: Annotated[Principal, staff]
    ) -> AlertView:
        """One alert: whom it went to and why, its acknowledgements and its
        obligation."""
        async with runtime.pool.acquire() as conn:
            alert = await postgres.get_alert(conn, alert_id)
            if alert is None:
                raise HTTPException(status_code=404, detail="no such alert")
            obligation = await postgres.obligation_view(conn, alert["obligation_id"])
            if obligation is None or not principal.sees(obligation["county_code"]):
                raise HTTPException(status_code=404, detail="no such alert")
            acks = await postgres.acks_of(conn, alert_id)
            now = ctx.clock.now()
            covers = await port_of(conn).covers_at(now)
        return AlertView(
            **{
                k: alert[k]
                for k in AlertView.model_fields
                if k not in ("recipients", "acks", "obligation")
            },
            recipients=[
                Recipient(id=r["id"], name=r["name"]) for r in alert["recipients"]
            ],
            acks=[Ack(**a) for a in acks],
            obligation=ObligationView.of(obligation, ctx, now, covers),
        )

    return router
