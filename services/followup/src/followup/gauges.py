"""Gauges of the prompts open now, refreshed from the database at an interval, so
every replica reports the same numbers (counters only see what one replica did)."""

from datetime import timedelta

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from shared.periodic import Periodic


class PromptGauges:
    def __init__(
        self, pool: asyncpg.Pool, *, registry: CollectorRegistry, interval: timedelta
    ) -> None:
        self._pool = pool
        self._periodic = Periodic(
            "prompt-gauges", self.refresh, interval=interval.total_seconds()
        )
        self.open = Gauge(
            "mfc_prompts_open",
            "Prompts issued and not yet completed or ended",
            ["kind"],
            registry=registry,
        )
        self.overdue = Gauge(
            "mfc_prompts_overdue_open",
            "Open prompts past their due time",
            ["kind"],
            registry=registry,
        )

    async def refresh(self) -> None:
        rows = await self._pool.fetch(
            "SELECT rule_id, count(*) AS open, "
            "count(*) FILTER (WHERE overdue_at IS NOT NULL) AS overdue "
            "FROM prompts WHERE status = 'open' GROUP BY rule_id"
        )
        # Kinds with nothing open any more go to zero rather than keep old values.
        self.open.clear()
        self.overdue.clear()
        for r in rows:
            self.open.labels(r["rule_id"]).set(r["open"])
            self.overdue.labels(r["rule_id"]).set(r["overdue"])

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
