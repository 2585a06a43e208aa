"""A new report is written by one statement on real PostgreSQL: its episode, the
first timeline entry, the canonical event in the outbox (with the relay's NOTIFY) and
its Idempotency-Key, all or none; repeats, conflicts and a reused key answer as
before."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from intake import handlers
from intake.domain.model import ReportRejectedError
from shared import topics
from shared.clock import SystemClock
from shared.db import apply_migrations, create_pool, service_migrations
from shared.events import CloudEvent, EpisodeReportedData, EventType
from shared.outbox import NOTIFY_CHANNEL
from shared.policy import default_policy_path, load_policy
from tests.conftest import make_report
from tests.counting import Counting

CTX = handlers.IntakeContext(
    clock=SystemClock(),
    served_counties=frozenset({"NC-063"}),
    skew=timedelta(minutes=5),
    source="test/intake",
    policy=load_policy(default_policy_path()),
)


@pytest.fixture
async def pool(infra, unique) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(infra.database_url, schema=unique)
    try:
        await apply_migrations(pool, service_migrations("intake"))
        yield pool
    finally:
        await pool.close()


def report(**overrides: Any) -> EpisodeReportedData:
    return EpisodeReportedData.model_validate(make_report(**overrides))


async def rows(pool: asyncpg.Pool) -> dict[str, list[asyncpg.Record]]:
    return {
        table: await pool.fetch(f"SELECT * FROM {table}")
        for table in ("episodes", "timeline", "outbox", "idempotency_keys")
    }


async def submit(
    pool: asyncpg.Pool,
    data: EpisodeReportedData,
    metrics: handlers.IntakeMetrics,
    key: str | None = None,
) -> handlers.Outcome:
    """As the HTTP API calls it: a connection of its own, no transaction."""
    async with pool.acquire() as conn:
        return await handlers.report_episode(
            conn, data, ctx=CTX, metrics=metrics, idempotency_key=key
        )


async def test_a_new_report_writes_episode_timeline_outbox_and_key_and_notifies(pool):
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    heard: list[str] = []

    def hear(*notification: Any) -> None:
        heard.append(notification[3])  # the payload: the schema

    async with pool.acquire() as listener:
        await listener.add_listener(NOTIFY_CHANNEL, hear)
        data = report()
        outcome = await submit(pool, data, metrics, key="k-1")
        await asyncio.sleep(0.2)
        schema = await listener.fetchval("SELECT current_schema()")
        await listener.remove_listener(NOTIFY_CHANNEL, hear)

    assert outcome.created
    assert heard == [schema]
    written = await rows(pool)
    [episode] = written["episodes"]
    assert (episode["id"], episode["case_id"]) == (outcome.episode.id, data.case_id)
    assert outcome.episode.status == "missing"
    [entry], [row], [key] = (
        written["timeline"],
        written["outbox"],
        written["idempotency_keys"],
    )
    event = CloudEvent.from_bytes(row["payload"])
    assert (row["topic"], row["key"], row["event_id"]) == (
        topics.EPISODES,
        str(outcome.episode.id),
        event.id,
    )
    assert (event.type, event.subject) == (
        EventType.EPISODE_REPORTED,
        str(episode["id"]),
    )
    assert event.data["episode_id"] == str(episode["id"])
    assert event.data["policy_digest"] == CTX.policy.digest
    assert (entry["event_id"], entry["type"], entry["data"]) == (
        event.id,
        event.type,
        event.data,
    )
    assert entry["digest"] == episode["report_digest"] == key["request_digest"]
    assert (key["key"], key["episode_id"]) == ("k-1", episode["id"])
    assert metrics.accepted._value.get() == 1


async def test_a_failure_in_the_statement_writes_nothing(pool):
    """The outbox row fails last of all: the episode, timeline entry and key written
    before it in the statement are gone with it."""
    await pool.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$; "
        "CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    with pytest.raises(asyncpg.RaiseError, match="outbox refused"):
        await submit(pool, report(), metrics, key="k-1")
    assert all(not r for r in (await rows(pool)).values())
    assert metrics.accepted._value.get() == 0


async def test_concurrent_identical_reports_give_one_episode_and_one_event(pool):
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    data = report()
    outcomes = await asyncio.gather(*(submit(pool, data, metrics) for _ in range(20)))

    assert len({o.episode.id for o in outcomes}) == 1
    assert sum(o.created for o in outcomes) == 1
    written = await rows(pool)
    assert [len(written[t]) for t in ("episodes", "timeline", "outbox")] == [1, 1, 1]
    assert metrics.accepted._value.get() == 1
    assert metrics.duplicates.labels("reported")._value.get() == 19


async def test_a_different_report_for_an_open_case_is_a_conflict(pool):
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    first = await submit(pool, report(case_id="case-7"), metrics)
    with pytest.raises(handlers.EpisodeConflictError) as refused:
        await submit(pool, report(case_id="case-7", prior_episodes=3), metrics)

    assert refused.value.episode_id == first.episode.id
    written = await rows(pool)
    assert [len(written[t]) for t in ("episodes", "timeline", "outbox")] == [1, 1, 1]
    assert metrics.rejected.labels("open_episode")._value.get() == 1


async def test_a_key_replays_its_report_and_refuses_another(pool):
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    data = report()
    first = await submit(pool, data, metrics, key="k-1")
    again = await submit(pool, data, metrics, key="k-1")
    with pytest.raises(handlers.IdempotencyKeyReusedError):
        await submit(pool, report(), metrics, key="k-1")

    assert (again.episode.id, again.created) == (first.episode.id, False)
    assert len((await rows(pool))["episodes"]) == 1


async def test_a_report_with_a_key_costs_one_statement_and_its_replay_two(pool):
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    data = report()
    sent = []
    for _ in range(2):
        async with pool.acquire() as conn:
            counting = Counting(conn)
            await handlers.report_episode(
                counting,  # type: ignore[arg-type]
                data,
                ctx=CTX,
                metrics=metrics,
                idempotency_key="k-1",
            )
        sent.append(len(counting.statements))

    assert sent == [1, 2]  # the key's lookup is in the report's statement
    assert metrics.duplicates.labels("reported")._value.get() == 1


async def test_a_retry_is_answered_as_first_though_the_rules_now_refuse_it(pool):
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    data = report()
    first = await submit(pool, data, metrics, key="k-1")
    moved = replace(CTX, served_counties=frozenset({"KY-111"}))  # not NC-063 now

    async with pool.acquire() as conn:
        again = await handlers.report_episode(
            conn, data, ctx=moved, metrics=metrics, idempotency_key="k-1"
        )
        with pytest.raises(ReportRejectedError):
            await handlers.report_episode(
                conn, data, ctx=moved, metrics=metrics, idempotency_key="k-2"
            )

    assert (again.episode.id, again.created) == (first.episode.id, False)


async def racing(
    pool: asyncpg.Pool, first: EpisodeReportedData, second: EpisodeReportedData
) -> tuple[handlers.Outcome, Any, handlers.IntakeMetrics]:
    """``second`` sent with the key while ``first``, sent with it too, is written but
    not yet committed: the key check passes, the statement waits on the key's (or
    the case's) unique index, and goes on once ``first`` commits."""
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    async with pool.acquire() as conn, conn.transaction():
        won = await handlers.report_episode(
            conn, first, ctx=CTX, metrics=metrics, idempotency_key="k-1"
        )
        late = asyncio.ensure_future(submit(pool, second, metrics, key="k-1"))
        await asyncio.sleep(0.3)
        assert not late.done()  # waiting on the uncommitted insert
    answer = await asyncio.gather(late, return_exceptions=True)
    return won, answer[0], metrics


async def test_a_key_taken_during_the_statement_refuses_another_report_whole(pool):
    won, late, metrics = await racing(pool, report(), report())

    assert isinstance(late, handlers.IdempotencyKeyReusedError)
    written = await rows(pool)
    assert [len(written[t]) for t in written] == [1, 1, 1, 1]
    assert written["episodes"][0]["id"] == won.episode.id
    assert metrics.rejected.labels("idempotency_key_reused")._value.get() == 1
    assert metrics.accepted._value.get() == 1


async def test_a_key_taken_during_the_statement_by_the_same_report_answers_it(pool):
    data = report()
    won, late, metrics = await racing(pool, data, data)

    assert isinstance(late, handlers.Outcome)
    assert (late.episode.id, late.created) == (won.episode.id, False)
    written = await rows(pool)
    assert [len(written[t]) for t in written] == [1, 1, 1, 1]
    assert metrics.duplicates.labels("reported")._value.get() == 1


async def test_inside_a_caller_transaction_the_report_commits_with_it(pool):
    """The Kafka consumer calls it inside its own transaction: a rollback there
    takes the report with it."""
    metrics = handlers.IntakeMetrics(CollectorRegistry())
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        outcome = await handlers.report_episode(
            conn, report(), ctx=CTX, metrics=metrics
        )
        assert outcome.created
        await transaction.rollback()
    assert all(not r for r in (await rows(pool)).values())
