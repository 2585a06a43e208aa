"""What a service's handlers cause besides their own rows, on one connection in the
caller's transaction: timers scheduled or retired, events to the outbox, alerts
queued for delivery. The notifier's and followup's Postgres adapters build on it."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from shared import timers
from shared.alerts import Alert, Route, enqueue_alerts
from shared.db import Conn
from shared.outbox import enqueue_many
from shared.published import Outgoing


class PostgresEffects:
    def __init__(self, conn: Conn, *, route: Route) -> None:
        self._conn = conn
        self._route = route

    async def schedule(self, steps: Sequence[timers.Step]) -> None:
        await timers.schedule_many(self._conn, steps)

    async def cancel(self, subject_ids: Sequence[UUID], now: datetime) -> None:
        if subject_ids:
            await timers.cancel_pending_many(self._conn, subject_ids, now)

    async def emit(self, events: Sequence[Outgoing]) -> None:
        await enqueue_many(self._conn, events)

    async def alert(self, alerts: Sequence[Alert], now: datetime) -> None:
        await enqueue_alerts(self._conn, alerts, self._route, now)
