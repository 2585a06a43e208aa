"""Two intake replicas watch the same feeds on real PostgreSQL: a silence is
announced once whichever checks first, a restart does not announce it again, and
its end is announced once."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from intake.feeds import FeedWatch
from shared.clock import ManualClock
from shared.db import apply_migrations, create_pool, service_migrations
from shared.published import FeedEvent

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ALLOWED = timedelta(minutes=10)
INTERVAL = timedelta(seconds=30)


def replica(pool, clock: ManualClock) -> FeedWatch:
    return FeedWatch(
        lambda: pool,
        clock=clock,
        source="test/intake",
        registry=CollectorRegistry(),
        counties=frozenset({"NV-003", "NC-063"}),
        silence_after={"NV-003": ALLOWED},
        interval=INTERVAL,
    )


async def announced(pool) -> list[tuple[str, str, str]]:
    rows = await pool.fetch("SELECT topic, key, payload FROM outbox ORDER BY id")
    return [(r["topic"], r["key"], json.loads(r["payload"])["type"]) for r in rows]


async def test_replicas_announce_each_silence_and_its_end_exactly_once(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique)
    try:
        await apply_migrations(pool, service_migrations("intake"))
        clock = ManualClock(START)
        a, b = replica(pool, clock), replica(pool, clock)
        await a.start()
        await b.start()
        a.heard("NV-003", "http")
        await asyncio.gather(a.check(), b.check())
        assert await announced(pool) == []  # just heard

        clock.advance(ALLOWED + INTERVAL + timedelta(seconds=1))
        for _ in range(3):
            feeds = await asyncio.gather(a.check(), b.check())
            assert all(f.silent for [f] in feeds)  # NC-063 is not watched
        restarted = replica(pool, clock)
        await restarted.check()
        assert await announced(pool) == [("mfc.feeds.v1", "NV-003", FeedEvent.SILENT)]

        b.heard("NV-003", "kafka")
        await asyncio.gather(a.check(), b.check(), restarted.check())
        await asyncio.gather(a.check(), b.check())
        assert [t for _, _, t in await announced(pool)] == [
            FeedEvent.SILENT,
            FeedEvent.RESUMED,
        ]
        assert a.silent.labels("NV-003")._value.get() == 0
    finally:
        await pool.close()
