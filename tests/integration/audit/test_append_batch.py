"""The audit's append and read-back on real PostgreSQL: a batch is a few array
statements, each event stored as the JSON its leaf hashes, and reading the whole log
back asks for the next chunk ahead without tying up the connection."""

from contextlib import aclosing
from datetime import UTC, datetime
from uuid import uuid4

from audit.adapters import postgres
from audit.domain.entries import entry_leaf_hash
from shared.consumer import RawMessage
from shared.db import apply_migrations, create_pool, service_migrations
from shared.events import CloudEvent


def event(episode: str, county: str, n: int) -> CloudEvent:
    return CloudEvent.new(
        type="mfc.obligation.opened",
        source="service/notifier",
        subject=episode,
        time=datetime.now(UTC),
        data={"episode_id": episode, "county_code": county, "n": n, "x": 0.5},
    )


async def test_a_batch_appends_each_new_event_once_in_order(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique)
    try:
        await apply_migrations(pool, service_migrations("audit"))
        message = RawMessage("mfc.obligations.v1", 0, 7, None, b"")
        episode = str(uuid4())
        first, second, third = (event(episode, c, n) for n, c in enumerate("ABC"))
        async with pool.acquire() as conn, conn.transaction():
            await postgres.append_batch(conn, [(first, message)])
        async with pool.acquire() as conn, conn.transaction():
            appended = await postgres.append_batch(
                conn,
                [
                    (first, message),
                    (second, message),
                    (second, message),
                    (third, message),
                ],
            )
        assert appended.seqs == [2, 3]
        assert appended.tree_size == 3
        rows = await pool.fetch("SELECT * FROM log_entries ORDER BY seq")
        assert [r["event_id"] for r in rows] == [first.id, second.id, third.id]
        for r, sent in zip(rows, (first, second, third), strict=True):
            document = sent.model_dump(mode="json", exclude_none=True)
            assert r["event"] == document
            assert r["leaf_hash"] == entry_leaf_hash(
                seq=r["seq"], topic=r["topic"], event=document
            )
            assert (r["kafka_offset"], r["county_code"]) == (
                7,
                sent.data["county_code"],
            )
        county = await pool.fetchval("SELECT county_code FROM episode_counties")
        assert county == "A", "the first entry that names the episode's county"
        async with pool.acquire() as conn:
            assert await postgres.root_hash(conn, 3) != await postgres.root_hash(
                conn, 2
            )
    finally:
        await pool.close()


async def test_reading_back_is_whole_in_order_and_can_stop_early(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique, max_size=1)
    try:
        await apply_migrations(pool, service_migrations("audit"))
        message = RawMessage("mfc.obligations.v1", 0, 0, None, b"")
        async with pool.acquire() as conn, conn.transaction():
            await postgres.append_batch(
                conn, [(event(str(uuid4()), "A", n), message) for n in range(12)]
            )
        async with pool.acquire() as conn:
            chunks = [c async for c in postgres.stored_entries(conn, chunk=5)]
            assert [len(c) for c in chunks] == [5, 5, 2]
            assert [e.seq for c in chunks for e in c] == list(range(1, 13))
            async with aclosing(postgres.stored_entries(conn, chunk=5)) as entries:
                async for _ in entries:
                    break  # closing calls off the chunk asked for ahead
            assert await conn.fetchval("SELECT count(*) FROM log_entries") == 12
    finally:
        await pool.close()
