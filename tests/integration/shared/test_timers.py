"""Durable timers on a real PostgreSQL: every step fires once, however many
schedulers race, and a failing step does not hold back the others."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from prometheus_client import CollectorRegistry

from shared.clock import ManualClock
from shared.db import apply_migrations, create_pool, load_migrations
from shared.timers import (
    NOTIFY_CHANNEL,
    Step,
    TimerScheduler,
    schedule,
    schedule_many,
)

START = datetime(2026, 11, 1, 12, tzinfo=UTC)


async def setup(infra, schema):
    pool = await create_pool(infra.database_url, schema=schema, max_size=20)
    await apply_migrations(
        pool,
        load_migrations("shared", "shared.migrations")
        + load_migrations("timers", "shared.timer_migrations"),
    )
    await pool.execute("CREATE TABLE effects (timer_id bigint, step text)")
    return pool


async def record(conn, timer, now):
    await conn.execute("INSERT INTO effects VALUES ($1, $2)", timer.id, timer.step_key)


async def test_racing_schedulers_fire_each_due_step_exactly_once(infra, unique):
    pool = await setup(infra, unique)
    clock = ManualClock(START)
    try:
        async with pool.acquire() as conn:
            for n in range(300):
                await schedule(
                    conn,
                    subject_id=uuid4(),
                    step_key=f"s:{n}",
                    kind="test",
                    fire_at=START + timedelta(seconds=n % 10),
                )
        schedulers = [
            TimerScheduler(
                pool, record, clock=clock, registry=CollectorRegistry(), batch_size=25
            )
            for _ in range(3)
        ]
        assert sum(await asyncio.gather(*(s.fire_due() for s in schedulers))) <= 75
        clock.advance(
            timedelta(seconds=30)
        )  # everything is overdue now: a restart after downtime
        while sum(await asyncio.gather(*(s.fire_due() for s in schedulers))):
            pass
        assert await pool.fetchval("SELECT count(*) FROM effects") == 300
        assert (
            await pool.fetchval("SELECT count(DISTINCT timer_id) FROM effects") == 300
        )
        assert (
            await pool.fetchval("SELECT count(*) FROM timers WHERE fired_at IS NULL")
            == 0
        )
    finally:
        await pool.close()


async def test_steps_not_due_yet_wait_and_a_failing_step_is_retried_alone(
    infra, unique
):
    pool = await setup(infra, unique)
    clock = ManualClock(START)
    failures = 0

    async def flaky(conn, timer, now):
        nonlocal failures
        if timer.step_key == "bad" and failures < 2:
            failures += 1
            raise RuntimeError("delivery table locked")
        await record(conn, timer, now)

    try:
        async with pool.acquire() as conn:
            for key, offset in (("bad", 0), ("good", 0), ("later", 60)):
                await schedule(
                    conn,
                    subject_id=uuid4(),
                    step_key=key,
                    kind="test",
                    fire_at=START + timedelta(seconds=offset),
                )
            assert not await schedule(
                conn,
                subject_id=(
                    await conn.fetchval(
                        "SELECT subject_id FROM timers WHERE step_key='good'"
                    )
                ),
                step_key="good",
                kind="test",
                fire_at=START,
            )
        scheduler = TimerScheduler(
            pool, flaky, clock=clock, registry=CollectorRegistry()
        )
        await scheduler.fire_due()
        assert [r["step"] for r in await pool.fetch("SELECT step FROM effects")] == [
            "good"
        ]
        await scheduler.fire_due()
        await scheduler.fire_due()
        assert sorted(
            r["step"] for r in await pool.fetch("SELECT step FROM effects")
        ) == ["bad", "good"]
        clock.advance(timedelta(seconds=61))
        await scheduler.fire_due()
        assert await pool.fetchval("SELECT count(*) FROM effects") == 3
    finally:
        await pool.close()


async def test_many_steps_are_added_at_once_with_one_wake_up_at_commit(infra, unique):
    pool = await setup(infra, unique)
    notified: list[str] = []

    def on_notify(_conn, _pid, _channel, payload):
        notified.append(payload)

    listener = await pool.acquire()
    try:
        await listener.add_listener(NOTIFY_CHANNEL, on_notify)
        subject = uuid4()
        async with pool.acquire() as conn, conn.transaction():
            assert await schedule(
                conn, subject_id=subject, step_key="due", kind="due", fire_at=START
            )
            added = await schedule_many(
                conn,
                [
                    Step(subject, "due", "due", START, {}),  # already there
                    Step(subject, "remind", "remind", START, {"level": 1}),
                    Step(uuid4(), "due", "due", START + timedelta(hours=1), {}),
                ],
            )
            assert added == 2
            await asyncio.sleep(0.2)
            assert notified == []  # nothing before commit
        for _ in range(50):
            if notified:
                break
            await asyncio.sleep(0.05)
        assert notified == [unique]  # one wake-up, naming the schema
        rows = await pool.fetch(
            "SELECT step_key, payload FROM timers WHERE subject_id = $1 "
            "ORDER BY step_key",
            subject,
        )
        assert [(r["step_key"], r["payload"]) for r in rows] == [
            ("due", {}),
            ("remind", {"level": 1}),
        ]
        assert await schedule_many(pool, []) == 0
    finally:
        await listener.remove_listener(NOTIFY_CHANNEL, on_notify)
        await pool.release(listener)
        await pool.close()
