"""The transactional outbox and its relay, on real PostgreSQL and a real broker."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from shared.db import apply_migrations, create_pool, load_migrations
from shared.events import CloudEvent
from shared.kafka import KafkaPublisher, ensure_topics
from shared.outbox import OutboxRelay, enqueue
from tests.kafka_helpers import read_until


def event(n: int) -> CloudEvent:
    return CloudEvent.new(
        type="mfc.test.happened",
        source="test",
        subject="episode-1",
        data={"n": n},
        time=datetime.now(UTC),
    )


async def setup(infra, schema: str, topic: str):
    await ensure_topics(infra.bootstrap_servers, [topic], partitions=3)
    pool = await create_pool(infra.database_url, schema=schema)
    await apply_migrations(pool, load_migrations("shared", "shared.migrations"))
    publisher = KafkaPublisher(infra.bootstrap_servers, client_id="test-outbox")
    await publisher.start()
    return pool, publisher


_made: list[OutboxRelay] = []


def relay(pool, publisher, **kwargs) -> OutboxRelay:
    """A relay, stopped by ``teardown``: one that leads holds a pooled connection
    (and its lock) until it stops, and the pool would wait for it to close."""
    kwargs.setdefault("registry", CollectorRegistry())
    made = OutboxRelay(pool, publisher, **kwargs)
    _made.append(made)
    return made


async def teardown(pool, publisher) -> None:
    while _made:
        await _made.pop().stop()
    await publisher.stop()
    await pool.close()


async def enqueue_and_read(infra, pool, topic: str, *, number: int, until: int):
    """Enqueue ``event(number)`` in a transaction of its own, then read the topic
    until it holds ``until`` records."""
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(conn, topic=topic, event=event(number))
    return await read_until(infra.bootstrap_servers, topic, lambda rs: len(rs) >= until)


async def enqueue_numbers(pool, topic: str, numbers: range) -> None:
    """``event(n)`` for each number, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        for n in numbers:
            await enqueue(conn, topic=topic, event=event(n))


def numbers(records) -> list[int]:
    return [json.loads(r.value)["data"]["n"] for r in records]


async def test_committed_rows_are_published_in_order_and_rolled_back_rows_never(
    infra, unique
):
    pool, publisher = await setup(infra, unique, unique)
    try:
        await enqueue_numbers(pool, unique, range(5))
        try:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, topic=unique, event=event(99))
                raise RuntimeError("the state change failed")
        except RuntimeError:
            pass
        the_relay = relay(pool, publisher)
        assert await the_relay.publish_pending() == 5
        assert await the_relay.publish_pending() == 0
        records = await read_until(
            infra.bootstrap_servers, unique, lambda rs: len(rs) >= 5
        )
        assert numbers(records) == [0, 1, 2, 3, 4]
        assert {r.key for r in records} == {b"episode-1"}
        # Published rows leave the outbox: it holds only what is still to publish.
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await teardown(pool, publisher)


class BrokerAway:
    async def publish_batch(self, messages) -> None:
        raise ConnectionError(f"the broker did not answer ({len(messages)} waiting)")


async def test_a_failed_publish_keeps_every_row_and_the_backlog_is_counted(
    infra, unique
):
    pool, publisher = await setup(infra, unique, unique)
    try:
        await enqueue_numbers(pool, unique, range(5))
        with pytest.raises(ConnectionError):
            await relay(pool, BrokerAway()).publish_pending()
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 5

        registry = CollectorRegistry()
        the_relay = relay(pool, publisher, registry=registry, batch_size=2)
        assert await the_relay.publish_pending() == 2
        assert registry.get_sample_value("mfc_outbox_pending") == 3
        assert await the_relay.publish_pending() == 2
        assert await the_relay.publish_pending() == 1
        assert registry.get_sample_value("mfc_outbox_pending") == 0
        records = await read_until(
            infra.bootstrap_servers, unique, lambda rs: len(rs) >= 5
        )
        assert numbers(records) == [0, 1, 2, 3, 4]
    finally:
        await teardown(pool, publisher)


async def test_rows_written_while_no_relay_ran_are_published_when_one_starts(
    infra, unique
):
    pool, publisher = await setup(infra, unique, unique)
    try:
        async with pool.acquire() as conn, conn.transaction():
            for n in range(3):
                await enqueue(conn, topic=unique, event=event(n))
        running = relay(pool, publisher)
        await running.start()
        try:
            # Written after start: LISTEN/NOTIFY wakes the relay.
            records = await enqueue_and_read(infra, pool, unique, number=3, until=4)
        finally:
            await running.stop()
        assert numbers(records) == [0, 1, 2, 3]
    finally:
        await teardown(pool, publisher)


async def test_the_relay_listens_again_after_its_database_connection_dies(
    infra, unique
):
    """A database restart kills the connection that LISTENs. The relay polls only
    every five minutes here, so the row written afterwards reaches Kafka in time only
    if the relay noticed the loss and listened again."""
    pool, publisher = await setup(infra, unique, unique)
    try:
        running = relay(pool, publisher, poll_interval=timedelta(minutes=5))
        await running.start()
        try:
            killed = await pool.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1 AND query LIKE 'LISTEN%'",
                f"mfc-{unique}",
            )
            assert killed == 1
            await enqueue_and_read(infra, pool, unique, number=1, until=1)
            # And it keeps listening: a second row also comes without a poll.
            records = await enqueue_and_read(infra, pool, unique, number=2, until=2)
        finally:
            await running.stop()
        assert numbers(records) == [1, 2]
    finally:
        await teardown(pool, publisher)


async def test_two_relays_on_one_schema_publish_each_row_once_in_order(infra, unique):
    pool, publisher = await setup(infra, unique, unique)
    try:
        relays = [relay(pool, publisher, batch_size=7) for _ in range(2)]
        for r in relays:
            await r.start()
        try:
            for n in range(60):
                async with pool.acquire() as conn, conn.transaction():
                    await enqueue(conn, topic=unique, event=event(n))
            records = await read_until(
                infra.bootstrap_servers, unique, lambda rs: len(rs) >= 60
            )
            await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now
            records = await read_until(
                infra.bootstrap_servers, unique, lambda rs: len(rs) >= 60
            )
        finally:
            for r in relays:
                await r.stop()
        assert numbers(records) == list(range(60))
    finally:
        await teardown(pool, publisher)


async def test_the_same_event_enqueued_twice_is_stored_once(infra, unique):
    pool, publisher = await setup(infra, unique, unique)
    try:
        same = event(1)
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, topic=unique, event=same)
            await enqueue(conn, topic=unique, event=same)
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
    finally:
        await teardown(pool, publisher)


async def test_one_relay_leads_until_it_stops_and_another_then_takes_over(
    infra, unique
):
    """The leader keeps its lock between rounds; while it leads, another relay on
    the schema publishes nothing, and once it stops the other one publishes."""
    pool, publisher = await setup(infra, unique, unique)
    try:
        first, second = relay(pool, publisher), relay(pool, publisher)
        await enqueue_numbers(pool, unique, range(2))
        assert await first.publish_pending() == 2
        await enqueue_numbers(pool, unique, range(2, 4))
        assert await second.publish_pending() == 0  # first still leads
        assert await first.publish_pending() == 2
        await enqueue_numbers(pool, unique, range(4, 6))
        await first.stop()  # gives the lock up
        assert await second.publish_pending() == 2
        await second.stop()
        records = await read_until(
            infra.bootstrap_servers, unique, lambda rs: len(rs) >= 6
        )
        assert numbers(records) == list(range(6))
        # Neither left a lock behind on a pooled connection.
        assert await advisory_locks(pool) == 0
    finally:
        await teardown(pool, publisher)


async def test_a_leader_whose_connection_dies_loses_the_lead_and_nothing_is_lost(
    infra, unique
):
    """A database restart kills the leader's connection, and its lock with it. The
    next round fails and gives up the dead connection; then either relay leads and
    every row still reaches the topic, in order."""
    pool, publisher = await setup(infra, unique, unique)
    try:
        first, second = relay(pool, publisher), relay(pool, publisher)
        await enqueue_numbers(pool, unique, range(2))
        assert await first.publish_pending() == 2
        killed = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert killed == 1
        await enqueue_numbers(pool, unique, range(2, 4))
        assert await second.publish_pending() == 2  # the lock was free again
        with pytest.raises(
            (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError)
        ):
            await first.publish_pending()  # its connection is gone
        await enqueue_numbers(pool, unique, range(4, 6))
        await second.stop()
        assert await first.publish_pending() == 2  # leads again on a new connection
        await first.stop()
        records = await read_until(
            infra.bootstrap_servers, unique, lambda rs: len(rs) >= 6
        )
        assert numbers(records) == list(range(6))
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await teardown(pool, publisher)


async def advisory_locks(pool) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )
