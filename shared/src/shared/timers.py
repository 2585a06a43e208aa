"""Durable timers in PostgreSQL, shared by the notifier and followup services.

A timer is a row (``timers`` table, migrations in ``shared.timer_migrations``). The
scheduler claims due rows with ``FOR UPDATE SKIP LOCKED`` and fires each inside the
transaction that records its effects (alerts, outbox events, the next step), then
marks it fired. So, with any number of replicas, each step fires exactly once; a
crash mid-fire rolls back and the step fires again after restart; and a service that
was down fires every overdue step as soon as it is back. Timers are polled: a short
poll interval bounds lateness, NOTIFY on schedule wakes the loop early.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.clock import Clock
from shared.db import Conn, Wakeup

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "mfc_timers"


@dataclass(frozen=True)
class Timer:
    id: int
    subject_id: UUID
    step_key: str
    kind: str
    fire_at: datetime
    payload: dict[str, Any]


Fire = Callable[[Conn, Timer, datetime], Awaitable[None]]
"""Does a timer's work inside the claiming transaction; ``now`` is the firing time."""


async def schedule(
    conn: Conn,
    *,
    subject_id: UUID,
    step_key: str,
    kind: str,
    fire_at: datetime,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Add a step unless the subject has it already; True if added."""
    added = await schedule_many(
        conn, [Step(subject_id, step_key, kind, fire_at, payload or {})]
    )
    return added == 1


@dataclass(frozen=True)
class Step:
    """A timer to add (``schedule_many``)."""

    subject_id: UUID
    step_key: str
    kind: str
    fire_at: datetime
    payload: dict[str, Any]


# Rows and the wake-up NOTIFY in one round trip; PostgreSQL folds identical
# notifications of one transaction into one.
_SCHEDULE_MANY = """
WITH added AS (
    INSERT INTO timers (subject_id, step_key, kind, fire_at, payload)
    SELECT s, k, t, f, p::jsonb
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
         AS u(s, k, t, f, p)
    ON CONFLICT (subject_id, step_key) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM (SELECT pg_notify($6, current_schema()) FROM added) AS n
"""


async def schedule_many(conn: Conn, steps: Sequence[Step]) -> int:
    """Add each step its subject does not have yet; the number added."""
    if not steps:
        return 0
    added: int = await conn.fetchval(
        _SCHEDULE_MANY,
        [s.subject_id for s in steps],
        [s.step_key for s in steps],
        [s.kind for s in steps],
        [s.fire_at for s in steps],
        [json.dumps(s.payload) for s in steps],
        NOTIFY_CHANNEL,
    )
    return added


async def postpone(conn: Conn, timer_id: int, until: datetime) -> None:
    await conn.execute("UPDATE timers SET fire_at = $2 WHERE id = $1", timer_id, until)


async def cancel_pending(conn: Conn, subject_id: UUID, now: datetime) -> int:
    """Retire every step not fired yet (the subject no longer needs them)."""
    result = await conn.execute(
        "UPDATE timers SET fired_at = $2, kind = kind || ':cancelled' "
        "WHERE subject_id = $1 AND fired_at IS NULL",
        subject_id,
        now,
    )
    return int(result.split()[-1])


class TimerScheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        fire: Fire,
        *,
        clock: Clock,
        registry: CollectorRegistry,
        poll_interval: timedelta = timedelta(milliseconds=500),
        batch_size: int = 100,
    ) -> None:
        self._pool = pool
        self._fire = fire
        self._clock = clock
        self._poll = poll_interval.total_seconds()
        self._batch_size = batch_size
        self._wakeup = Wakeup(pool, NOTIFY_CHANNEL)
        self._task: asyncio.Task[None] | None = None
        self._fired = Counter(
            "mfc_timers_fired_total", "Timer steps fired", ["kind"], registry=registry
        )
        self._lateness = Histogram(
            "mfc_timer_lateness_seconds",
            "Firing time minus scheduled time",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
        self._failures = Counter(
            "mfc_timer_failures_total",
            "Timer steps whose firing failed",
            registry=registry,
        )

    async def fire_due(self) -> int:
        """Fire the steps due now (one batch); return how many fired."""
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, subject_id, step_key, kind, fire_at, payload FROM timers "
                "WHERE fired_at IS NULL AND fire_at <= $1 "
                "ORDER BY fire_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                self._batch_size,
            )
            for row in rows:
                timer = Timer(
                    row["id"],
                    row["subject_id"],
                    row["step_key"],
                    row["kind"],
                    row["fire_at"],
                    row["payload"],
                )
                # A savepoint per step: one failing step is retried next round
                # without holding back the others.
                try:
                    async with conn.transaction():
                        await self._fire(conn, timer, now)
                        await conn.execute(
                            "UPDATE timers SET fired_at = $2 WHERE id = $1 AND fire_at <= $2",
                            timer.id,
                            now,
                        )
                except Exception:
                    self._failures.inc()
                    logger.exception(
                        "timer %s %s failed; retried next round",
                        timer.kind,
                        timer.step_key,
                    )
                    continue
                self._fired.labels(timer.kind).inc()
                self._lateness.observe(max((now - timer.fire_at).total_seconds(), 0.0))
        return len(rows)

    async def start(self) -> None:
        await self._wakeup.start()
        self._task = asyncio.create_task(self._run(), name="timer-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._wakeup.stop()

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                fired = await self.fire_due()
            except Exception:
                logger.exception("timer round failed")
                fired = 0
            if fired == self._batch_size:
                continue
            await self._wakeup.wait(self._poll)
