"""Followup on real PostgreSQL: a batch of reports starts its series, and a fired
batch of first occurrences issues each prompt once, with its overdue step, its
event and its delivery: a statement per table for the whole batch."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial
from uuid import uuid4

import asyncpg
import pytest

from followup import handlers
from followup.adapters.postgres import PostgresFollowup
from shared.alerts import Route
from shared.clock import ManualClock
from shared.consumer import RawMessage, on_port
from shared.db import apply_migrations, create_pool, service_migrations
from shared.events import CloudEvent
from shared.timers import Timer
from tests.counting import Counting
from tests.unit.followup.builders import START, make_deps, reported

ROUTE = Route("http://127.0.0.1:9/alerts", email_enabled=False)


@pytest.fixture
async def pool(infra, unique) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(infra.database_url, schema=unique)
    try:
        await apply_migrations(
            pool, service_migrations("followup", ("timers", "deliveries"))
        )
        yield pool
    finally:
        await pool.close()


def deps(clock: ManualClock) -> handlers.Deps:
    made = make_deps(clock)
    return replace(made, ctx=replace(made.ctx, route=ROUTE))


async def due(conn: asyncpg.Connection, until) -> list[Timer]:
    rows = await conn.fetch(
        "SELECT id, subject_id, step_key, kind, fire_at, payload FROM timers "
        "WHERE fired_at IS NULL AND fire_at <= $1 ORDER BY fire_at, id FOR UPDATE",
        until,
    )
    return [Timer(**dict(r)) for r in rows]


async def test_a_fired_batch_issues_each_prompt_once_writing_effects_once(pool):
    clock = ManualClock(START)
    port_of = partial(PostgresFollowup, route=ROUTE, defer=True)

    async def start(port: PostgresFollowup, events: Sequence[CloudEvent]) -> None:
        await handlers.handle_episode_events(port, events, deps(clock))

    batch = [reported(uuid4()) for _ in range(4)]
    async with pool.acquire() as conn, conn.transaction():
        await on_port(port_of, start)(
            conn, [(e, RawMessage("t", 0, 0, None, b"")) for e in batch]
        )

    fire = handlers.fire_batch(port_of, deps(clock))
    async with pool.acquire() as conn, conn.transaction():
        first = min(t.fire_at for t in await due(conn, START + timedelta(days=1)))
        timers = await due(conn, first)
        counting = Counting(conn)
        outcomes = await fire(counting, timers, first)  # type: ignore[arg-type]

    issued = await pool.fetch("SELECT id, series_id FROM prompts")
    assert len(issued) == len(timers) >= len(batch)
    assert {r["series_id"] for r in issued} == {t.subject_id for t in timers}
    overdue = await pool.fetchval(
        "SELECT count(*) FROM timers WHERE kind = 'overdue' AND subject_id = ANY($1)",
        [r["id"] for r in issued],
    )
    assert overdue == len(issued)
    events = await pool.fetch("SELECT payload FROM outbox ORDER BY id")
    kinds = [CloudEvent.model_validate_json(r["payload"]).type for r in events]
    assert kinds == ["mfc.prompt.issued"] * len(issued)
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == len(issued)
    assert set(outcomes) == {t.id for t in timers}
    # Once for the batch: the series, the prompts, the on-call covers, the overdue
    # steps, the events and the deliveries.
    assert len(counting.statements) == 6
