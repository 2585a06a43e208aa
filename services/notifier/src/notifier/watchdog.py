"""The watchdog: proves the timers are alive before a deadline depends on them.

Every open obligation must have its next step scheduled (at least the breach, which
repeats until satisfied) and no step may be overdue by more than the margin. Each
round sets gauges for both, and when all is well calls the heartbeat URL: a monitor
that stops hearing it knows the notifier is stuck (a dead man's switch), as on-call
tools' own auditors do.
"""

import logging
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from prometheus_client import CollectorRegistry, Gauge

from shared.clock import Clock
from shared.db import Conn
from shared.periodic import Periodic

logger = logging.getLogger(__name__)

_UNSCHEDULED = """
SELECT count(*) FROM obligations o
WHERE o.status = 'open' AND NOT EXISTS (
    SELECT 1 FROM timers t WHERE t.subject_id = o.id AND t.fired_at IS NULL)
"""
_STUCK = """
SELECT count(*) FROM timers t JOIN obligations o ON o.id = t.subject_id
WHERE o.status = 'open' AND t.fired_at IS NULL AND t.fire_at < $1
"""
_OPEN_COUNTS = (
    "SELECT kind, jurisdiction, breached_at IS NOT NULL AS breached, "
    "count(*) AS n, min(due_at) AS next_due "
    "FROM obligations WHERE status = 'open' GROUP BY 1, 2, 3"
)


async def _planned_now(conn: Conn, sql: str) -> PreparedStatement:
    """The watchdog's counts scan whole tables, so their plan must fit the tables as
    they are now: a statement made outside the connection's cache. A cached one keeps
    the plan it got first (PostgreSQL does not re-plan a prepared statement without
    parameters until the next ANALYZE): made while the tables were nearly empty and
    run after a bulk load, it compared every row with every other for minutes."""
    return await conn.prepare(sql)


class Watchdog:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock,
        registry: CollectorRegistry,
        interval: timedelta,
        margin: timedelta,
        heartbeat_url: str | None,
        timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        self._pool = pool
        self._timeout = timeout.total_seconds()
        self._clock = clock
        self._margin = margin
        self._heartbeat_url = heartbeat_url
        self._periodic = Periodic(
            "watchdog",
            self.check,
            interval=interval.total_seconds(),
            on_error=lambda: self.healthy.set(0),
        )
        self.unscheduled = Gauge(
            "mfc_watchdog_unscheduled_obligations",
            "Open obligations with no step scheduled",
            registry=registry,
        )
        self.stuck = Gauge(
            "mfc_watchdog_stuck_steps",
            "Steps of open obligations overdue by more than the margin",
            registry=registry,
        )
        self.healthy = Gauge(
            "mfc_watchdog_healthy",
            "1 when the last round found nothing wrong",
            registry=registry,
        )
        self.open_obligations = Gauge(
            "mfc_open_obligations",
            "Open obligations",
            ["kind", "jurisdiction", "breached"],
            registry=registry,
        )
        self.next_due = Gauge(
            "mfc_obligation_next_due_seconds",
            "Seconds until the earliest open, unbreached obligation of the kind is due "
            "(negative: overdue and not yet marked breached)",
            ["kind", "jurisdiction"],
            registry=registry,
        )

    async def check(self) -> dict[str, Any]:
        now = self._clock.now()
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            # A round that cannot finish in time fails (and so reads unhealthy)
            # rather than hold its snapshot, which keeps VACUUM from the queues.
            await conn.execute(
                f"SET LOCAL statement_timeout = {int(self._timeout * 1000)}"
            )
            unscheduled = await (await _planned_now(conn, _UNSCHEDULED)).fetchval()
            stuck = await (await _planned_now(conn, _STUCK)).fetchval(
                now - self._margin
            )
            counts = await (await _planned_now(conn, _OPEN_COUNTS)).fetch()
        self.unscheduled.set(unscheduled)
        self.stuck.set(stuck)
        self.open_obligations.clear()
        self.next_due.clear()
        for row in counts:
            self.open_obligations.labels(
                row["kind"], row["jurisdiction"], str(row["breached"]).lower()
            ).set(row["n"])
            if not row["breached"]:
                self.next_due.labels(row["kind"], row["jurisdiction"]).set(
                    (row["next_due"] - now).total_seconds()
                )
        healthy = unscheduled == 0 and stuck == 0
        self.healthy.set(1 if healthy else 0)
        if not healthy:
            logger.error(
                "watchdog: %d unscheduled obligation(s), %d stuck step(s)",
                unscheduled,
                stuck,
            )
        elif self._heartbeat_url:
            try:
                timeout = aiohttp.ClientTimeout(total=5)
                async with (
                    aiohttp.ClientSession(timeout=timeout) as session,
                    session.get(self._heartbeat_url) as answer,
                ):
                    answer.raise_for_status()
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("heartbeat call failed: %s", exc)
        return {"healthy": healthy, "unscheduled": unscheduled, "stuck": stuck}

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
