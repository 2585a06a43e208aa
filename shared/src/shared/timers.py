"""Durable timers in PostgreSQL, shared by the notifier and followup services.

A timer is a row (``timers`` table, migrations in ``shared.timer_migrations``). A
subject (an obligation, a prompt series) keeps one pending row: its next step. The
scheduler claims due rows with ``FOR UPDATE SKIP LOCKED`` and fires a batch of them
inside one transaction that records their effects (alerts, outbox events); each fired
row is then either retired or moved to the subject's following step, in the same
transaction. So, with any number of replicas, each step fires exactly once; a crash
mid-fire rolls back and the batch fires again after restart; a service that was down
fires every overdue step as soon as it is back; and a failing step is retried alone,
without holding back the rest of its batch.

The scheduler knows the next due time after each round and sleeps until exactly then
(a NOTIFY on scheduling wakes it earlier; the poll interval is the safety net).
"""

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.clock import Clock
from shared.db import Conn
from shared.polling import PollingWorker

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


@dataclass(frozen=True)
class Move:
    """A fired row becomes its subject's following step (the row is reused)."""

    step_key: str
    kind: str
    fire_at: datetime
    payload: Mapping[str, Any]


KEEP = "keep"
"""An outcome: leave the row pending as it is (its subject was busy; next round)."""

Outcome = Move | None | str
"""What firing did to a row: ``Move`` it on, retire it (None), or ``KEEP`` it."""

Fire = Callable[[Conn, Timer, datetime], Awaitable[Move | None]]
"""Fires one timer inside the claiming transaction; ``now`` is the firing time."""

FireBatch = Callable[
    [Conn, Sequence[Timer], datetime], Awaitable[Mapping[int, Outcome]]
]
"""Fires many timers in one transaction; the outcome per timer id (absent: retire)."""


def one_by_one(fire: Fire) -> FireBatch:
    """A ``FireBatch`` from a per-timer ``Fire``."""

    async def fire_batch(
        conn: Conn, batch: Sequence[Timer], now: datetime
    ) -> dict[int, Outcome]:
        return {timer.id: await fire(conn, timer, now) for timer in batch}

    return fire_batch


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
    payload: Mapping[str, Any]


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


async def pending(conn: Conn, subject_id: UUID) -> Timer | None:
    """The subject's earliest pending step, locked for the caller's transaction."""
    row = await conn.fetchrow(
        "SELECT id, subject_id, step_key, kind, fire_at, payload FROM timers "
        "WHERE subject_id = $1 AND fired_at IS NULL ORDER BY fire_at, id LIMIT 1 "
        "FOR UPDATE",
        subject_id,
    )
    return _timer(row) if row is not None else None


async def move(conn: Conn, timer_id: int, to: Move) -> None:
    """Turn a pending row into another step (waking the schedulers at commit)."""
    await conn.execute(
        "WITH moved AS (UPDATE timers SET step_key = $2, kind = $3, fire_at = $4, "
        "payload = $5::text::jsonb WHERE id = $1 RETURNING 1) "
        "SELECT pg_notify($6, current_schema()) FROM moved",
        timer_id,
        to.step_key,
        to.kind,
        to.fire_at,
        json.dumps(to.payload),
        NOTIFY_CHANNEL,
    )


async def postpone(conn: Conn, timer_id: int, until: datetime) -> None:
    await conn.execute("UPDATE timers SET fire_at = $2 WHERE id = $1", timer_id, until)


async def cancel_pending(conn: Conn, subject_id: UUID, now: datetime) -> int:
    """Retire every step not fired yet (the subject no longer needs them)."""
    return await cancel_pending_many(conn, [subject_id], now)


async def cancel_pending_many(
    conn: Conn, subject_ids: Sequence[UUID], now: datetime
) -> int:
    result = await conn.execute(
        "UPDATE timers SET fired_at = $2, kind = kind || ':cancelled' "
        "WHERE subject_id = ANY($1::uuid[]) AND fired_at IS NULL",
        list(subject_ids),
        now,
    )
    return int(result.split()[-1])


def _timer(row: asyncpg.Record) -> Timer:
    return Timer(
        row["id"],
        row["subject_id"],
        row["step_key"],
        row["kind"],
        row["fire_at"],
        row["payload"],
    )


_CLAIM = (
    "SELECT id, subject_id, step_key, kind, fire_at, payload FROM timers "
    "WHERE fired_at IS NULL AND fire_at <= $1 "
    "ORDER BY fire_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
)
_NEXT_DUE = "SELECT min(fire_at) FROM timers WHERE fired_at IS NULL"
# Every outcome of a batch in one statement: a row either moves on or is retired.
_SETTLE = """
UPDATE timers AS t
SET step_key = coalesce(u.k, t.step_key),
    kind = coalesce(u.t, t.kind),
    fire_at = coalesce(u.f, t.fire_at),
    payload = coalesce(u.p::jsonb, t.payload),
    -- retired, unless the step itself moved its row to later (a postponement)
    fired_at = CASE WHEN u.k IS NULL AND t.fire_at <= $6 THEN $6::timestamptz END
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
     AS u(id, k, t, f, p)
WHERE t.id = u.id
"""


class TimerScheduler(PollingWorker):
    name = "timer-scheduler"

    def __init__(
        self,
        pool: asyncpg.Pool,
        fire: Fire | None = None,
        *,
        fire_batch: FireBatch | None = None,
        clock: Clock,
        registry: CollectorRegistry,
        poll_interval: timedelta = timedelta(milliseconds=500),
        batch_size: int = 200,
    ) -> None:
        super().__init__(
            pool,
            channel=NOTIFY_CHANNEL,
            clock=clock,
            batch_size=batch_size,
            poll_interval=poll_interval,
        )
        self._time = clock
        if (fire is None) == (fire_batch is None):
            raise TypeError("give exactly one of fire and fire_batch")
        self._fire_batch = fire_batch or one_by_one(fire)  # type: ignore[arg-type]
        self._next_due: datetime | None = None
        self._fired = Counter(
            "mfc_timers_fired_total", "Timer steps fired", ["kind"], registry=registry
        )
        self._lateness = Histogram(
            "mfc_timer_lateness_seconds",
            "Firing time minus scheduled time",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
        self._failures = Counter(
            "mfc_timer_failures_total",
            "Timer steps whose firing failed",
            registry=registry,
        )

    def next_due(self) -> datetime | None:
        return self._next_due

    async def run_once(self) -> int:
        return await self.fire_due()

    async def fire_due(self) -> int:
        """Fire the steps due now (one batch); return how many fired."""
        now = self._time.now()
        outcomes: dict[int, Outcome] = {}
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                claimed = await conn.fetch(_CLAIM, now, self._batch_size)
                batch = [_timer(r) for r in claimed]
                if batch:
                    outcomes = await self._fire_all(conn, batch, now)
                    await self._settle(conn, outcomes, now)
            # Read after the commit: it includes the steps this batch scheduled.
            self._next_due = await conn.fetchval(_NEXT_DUE)
        fired = [t for t in batch if outcomes[t.id] != KEEP]
        for timer in fired:
            self._fired.labels(timer.kind).inc()
            self._lateness.observe(max((now - timer.fire_at).total_seconds(), 0.0))
        return len(fired)

    async def _fire_all(
        self, conn: Conn, batch: Sequence[Timer], now: datetime
    ) -> dict[int, Outcome]:
        """The whole batch at once; if that fails, each step alone in a savepoint,
        so one failing step is retried next round without holding back the others."""
        try:
            async with conn.transaction():
                outcomes = await self._fire_batch(conn, batch, now)
            return {t.id: outcomes.get(t.id) for t in batch}
        except Exception:
            if len(batch) == 1:
                self._fail(batch[0])
                return {batch[0].id: KEEP}
            logger.warning("a batch of %d timers failed; firing each alone", len(batch))
        result: dict[int, Outcome] = {}
        for timer in batch:
            try:
                async with conn.transaction():
                    one = await self._fire_batch(conn, [timer], now)
                result[timer.id] = one.get(timer.id)
            except Exception:
                self._fail(timer)
                result[timer.id] = KEEP
        return result

    def _fail(self, timer: Timer) -> None:
        self._failures.inc()
        logger.exception(
            "timer %s %s failed; retried next round", timer.kind, timer.step_key
        )

    async def _settle(
        self, conn: Conn, outcomes: Mapping[int, Outcome], now: datetime
    ) -> None:
        settled = [(i, o) for i, o in outcomes.items() if o != KEEP]
        if not settled:
            return
        moves = [o if isinstance(o, Move) else None for _, o in settled]
        await conn.execute(
            _SETTLE,
            [i for i, _ in settled],
            [m.step_key if m else None for m in moves],
            [m.kind if m else None for m in moves],
            [m.fire_at if m else None for m in moves],
            [json.dumps(m.payload) if m else None for m in moves],
            now,
        )
