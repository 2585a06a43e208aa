"""What a service's handlers cause besides their own rows, on one connection in the
caller's transaction: timers scheduled or retired, events to the outbox, alerts
queued for delivery. The notifier's and followup's Postgres adapters build on it.

A port made with ``defer=True`` (a consumed batch's, ``shared.consumer.on_port``,
or a fired batch of timers') keeps the timer steps, events and alert deliveries its
handlers add and writes them with ``flush``, in one statement each, at the end of
the batch and still inside its transaction: a batch of reports costs two statements
for them instead of two a report. Anything that reads or retires timers first
writes the steps kept so far, so no handler of the batch can miss a step an earlier
one scheduled; nothing a handler does reads the outbox or the deliveries.
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from shared import timers
from shared.alerts import Alert, Route, enqueue_alerts
from shared.db import Conn
from shared.outbox import enqueue_many
from shared.published import Outgoing


class PostgresEffects:
    def __init__(self, conn: Conn, *, route: Route, defer: bool = False) -> None:
        self._conn = conn
        self._route = route
        self._defer = defer
        self._steps: list[timers.Step] = []
        self._events: list[Outgoing] = []
        self._alerts: dict[datetime, list[Alert]] = {}

    async def schedule(self, steps: Sequence[timers.Step]) -> None:
        if self._defer:
            self._steps += steps
        else:
            await timers.schedule_many(self._conn, steps)

    async def cancel(self, subject_ids: Sequence[UUID], now: datetime) -> None:
        if subject_ids:
            await self._write_steps()
            await timers.cancel_pending_many(self._conn, subject_ids, now)

    async def emit(self, events: Sequence[Outgoing]) -> None:
        if self._defer:
            self._events += events
        else:
            await enqueue_many(self._conn, events)

    async def alert(self, alerts: Sequence[Alert], now: datetime) -> None:
        if self._defer:
            self._alerts.setdefault(now, []).extend(alerts)
        else:
            await enqueue_alerts(self._conn, alerts, self._route, now)

    async def flush(self) -> None:
        """Write the steps, events and deliveries kept so far (none on a port that
        defers nothing), events in the order they were emitted."""
        await self._write_steps()
        events, self._events = self._events, []
        await enqueue_many(self._conn, events)
        alerts, self._alerts = self._alerts, {}
        for now, queued in alerts.items():  # one time for a fired batch
            await enqueue_alerts(self._conn, queued, self._route, now)

    async def _write_steps(self) -> None:
        """Before anything that reads or changes timer rows."""
        steps, self._steps = self._steps, []
        await timers.schedule_many(self._conn, steps)
