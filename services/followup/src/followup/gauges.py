"""Gauges of the prompts open now, refreshed from the database at an interval, so
every replica reports the same numbers (counters only see what one replica did)."""

from datetime import timedelta

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from followup.adapters.postgres import open_prompts_by_kind
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
        async with self._pool.acquire() as conn:
            counts = await open_prompts_by_kind(conn)
        # Kinds with nothing open any more go to zero rather than keep old values.
        self.open.clear()
        self.overdue.clear()
        for kind, (open_now, overdue_now) in counts.items():
            self.open.labels(kind).set(open_now)
            self.overdue.labels(kind).set(overdue_now)

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
