"""The notifier's HTTP API: acknowledge alerts, look up obligations and alerts."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, StringConstraints

from notifier import handlers
from notifier.adapters import postgres
from shared.alerting import AlertingContext
from shared.auth import Principal, Role
from shared.runtime import ServiceRuntime


class AckRequest(BaseModel):
    acked_by: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


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


def create_router(runtime: ServiceRuntime, ctx: AlertingContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["notifier"])
    staff = Depends(runtime.auth.require(Role.CASEWORKER, Role.ONCALL))

    @router.post("/alerts/{alert_id}/ack", response_model=AckView)
    async def acknowledge(
        alert_id: UUID, body: AckRequest, principal: Annotated[Principal, staff]
    ) -> AckView:
        """Acknowledge an alert: quiets its obligation's alerts to the alert's level
        (and the levels below) for the snooze period; escalation to higher levels
        goes on. Only recording the notice itself satisfies the obligation."""
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                outcome = await handlers.acknowledge(
                    conn,
                    alert_id,
                    acked_by=body.acked_by,
                    note=body.note,
                    ctx=ctx,
                    in_scope=principal.sees,
                )
        except handlers.AlertNotFoundError:
            raise HTTPException(status_code=404, detail="no such alert") from None
        return AckView(**outcome.__dict__)

    @router.get("/obligations", response_model=list[ObligationView])
    async def list_obligations(
        principal: Annotated[Principal, staff],
        episode_id: UUID | None = None,
        status: Literal["open", "satisfied", "moot", "breached"] | None = None,
        due_before: AwareDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[ObligationView]:
        """Obligations by episode, status (``breached``: open and past due) and due time."""
        async with runtime.pool.acquire() as conn:
            rows = await postgres.find_obligations(
                conn,
                episode_id=episode_id,
                status=status,
                due_before=due_before,
                limit=limit,
                counties=principal.county_filter(),
            )
        return [
            ObligationView(
                **{k: r[k] for k in ObligationView.model_fields if k != "breached"},
                breached=r["breached_at"] is not None,
            )
            for r in rows
        ]

    @router.get("/alerts")
    async def list_alerts(
        episode_id: UUID, principal: Annotated[Principal, staff]
    ) -> list[dict[str, Any]]:
        """The alerts raised for an episode, with who was alerted and why."""
        async with runtime.pool.acquire() as conn:
            rows = await postgres.alerts_of(
                conn, episode_id, counties=principal.county_filter()
            )
        return [dict(r) for r in rows]

    return router
