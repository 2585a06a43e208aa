"""Acknowledgements: a responder takes an alert, and its level falls quiet for the
snooze; the end of the snooze alerts again if the duty is still undone."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from notifier.adapters import postgres
from notifier.domain import steps
from notifier.handlers.common import emit
from shared import timers
from shared.alerting import AlertingContext
from shared.db import Conn
from shared.published import AlertAcknowledged, AlertEvent


class AlertNotFoundError(Exception):
    pass


@dataclass(frozen=True)
class AckOutcome:
    alert_id: UUID
    acked_by: str
    acked_at: datetime
    snoozed_until: datetime | None
    acks: list[dict[str, Any]]


async def acknowledge(
    conn: Conn,
    alert_id: UUID,
    *,
    acked_by: str,
    note: str | None,
    ctx: AlertingContext,
    in_scope: Callable[[str], bool] = lambda _county: True,
) -> AckOutcome:
    """Record an ack (every responder's is kept) and quiet the obligation's alerts for
    the snooze period. An ack never satisfies the obligation. An alert of a county
    not ``in_scope`` of the caller is not found."""
    now = ctx.clock.now()
    alert = await postgres.get_alert(conn, alert_id)
    if alert is None:
        raise AlertNotFoundError(f"no alert {alert_id}")
    obligation = await postgres.lock_obligation(conn, alert["obligation_id"])
    assert obligation is not None
    if not in_scope(obligation["county_code"]):
        raise AlertNotFoundError(f"no alert {alert_id}")
    await postgres.insert_ack(
        conn, alert_id=alert_id, acked_by=acked_by, acked_at=now, note=note
    )
    snoozed_until = None
    if obligation["status"] == "open":
        snoozed_until = now + (
            obligation["snooze"] or ctx.policy.document.defaults.snooze
        )
        level = alert["level"]
        if steps.is_snoozed(
            level, obligation["snoozed_level"], obligation["snoozed_until"], now
        ):
            level = max(level, obligation["snoozed_level"])
        await postgres.set_obligation(
            conn, obligation["id"], snoozed_until=snoozed_until, snoozed_level=level
        )
        await _resume_after_snooze(conn, obligation, snoozed_until, ctx)
    acked = AlertAcknowledged(
        alert_id=alert_id,
        episode_id=alert["episode_id"],
        obligation_id=obligation["id"],
        acked_by=acked_by,
        acked_at=now,
        snoozed_until=snoozed_until,
        level=alert["level"],
    )
    await emit(conn, ctx, AlertEvent.ACKNOWLEDGED, acked, now)
    acks = [dict(r) for r in await postgres.acks_of(conn, alert_id)]
    return AckOutcome(alert_id, acked_by, now, snoozed_until, acks)


async def _resume_after_snooze(
    conn: Conn,
    obligation: asyncpg.Record,
    snoozed_until: datetime,
    ctx: AlertingContext,
) -> None:
    """Move the obligation's pending step so that the end of the snooze re-alerts."""
    timer = await timers.pending(conn, obligation["id"])
    if timer is None:
        return
    timing = postgres.obligation_of(obligation).timing(ctx.policy.document.defaults)
    pending = steps.Pending.of(timer.step_key, timer.kind, timer.fire_at, timer.payload)
    following = steps.after_ack(timing, pending, snoozed_until)
    if following is not None:
        await timers.move(
            conn,
            timer.id,
            timers.Move(
                following.key, following.kind, following.fire_at, following.payload()
            ),
        )
