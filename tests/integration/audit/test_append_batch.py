"""The audit's append and read-back on real PostgreSQL: a batch is a few array
statements, each event stored as the JSON its leaf hashes, and reading the whole log
back asks for the next chunk ahead without tying up the connection."""

from contextlib import aclosing
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
import rfc8785

from audit.adapters import postgres
from audit.domain import merkle
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


async def test_text_copy_keeps_every_character_as_sent(infra, unique):
    """Entries go to the table as COPY text: tabs, line breaks and backslashes in
    any field, and in the event, come back as they were, hashed as they were."""
    pool = await create_pool(infra.database_url, schema=unique)
    try:
        await apply_migrations(pool, service_migrations("audit"))
        message = RawMessage("mfc.obligations.v1", None, None, None, b"")
        episode = uuid4()
        awkward = "a\tb\nc\rd\\e \\N \\x00 «é» \u2028 😀"
        sent = [
            CloudEvent.new(
                type="mfc.obligation.opened",
                source=source,
                subject=subject,
                time=datetime.now(UTC),
                data={"note": awkward, "county_code": county, "path": "C:\\x\\"},
            )
            for source, subject, county in (
                (f"service/{awkward}", awkward, "A\tB"),
                # A UUID in another form; nothing to escape; nothing missing.
                ("service/notifier", "{" + str(episode).upper() + "}", "NC-063"),
                ("service/notifier", None, None),  # nothing to escape, NULLs
            )
        ]
        async with pool.acquire() as conn, conn.transaction():
            appended = await postgres.append_batch(conn, [(e, message) for e in sent])
        assert appended.seqs == [1, 2, 3]
        rows = await pool.fetch("SELECT * FROM log_entries ORDER BY seq")
        for r, e in zip(rows, sent, strict=True):
            document = e.model_dump(mode="json", exclude_none=True)
            assert r["event"] == document
            assert (r["source"], r["subject"]) == (e.source, e.subject)
            assert r["event_time"] == e.time
            assert (r["kafka_partition"], r["kafka_offset"]) == (None, None)
            assert r["leaf_hash"] == entry_leaf_hash(
                seq=r["seq"], topic=r["topic"], event=document
            )
        assert [r["episode_id"] for r in rows] == [None, episode, None]
        assert [r["county_code"] for r in rows] == ["A\tB", "NC-063", None]
        assert (
            await pool.fetchval(
                "SELECT county_code FROM episode_counties WHERE episode_id = $1",
                episode,
            )
            == "NC-063"
        )
    finally:
        await pool.close()


def _unwritable_integer() -> CloudEvent:
    return event(str(uuid4()), "A", 2**60)  # RFC 8785 refuses it: before the COPY


def _unstorable_text() -> CloudEvent:
    # PostgreSQL's text holds no NUL: the server refuses the row, mid-COPY, after
    # the slices before it were sent and stored.
    sent = event(str(uuid4()), "A", 0)
    return sent.model_copy(update={"source": "service/\x00"})


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (_unwritable_integer, rfc8785.IntegerDomainError),
        (_unstorable_text, asyncpg.PostgresError),
    ],
)
async def test_a_batch_that_fails_midway_leaves_no_entry_and_no_node(
    infra, unique, bad, error
):
    """An event that cannot be written fails its whole batch, whether it fails
    before the COPY or on the server after the entries before it were stored: no
    entry, no tree node, no gap; the next batch takes up where the log was."""
    pool = await create_pool(infra.database_url, schema=unique)
    try:
        await apply_migrations(pool, service_migrations("audit"))
        message = RawMessage("mfc.obligations.v1", 0, 0, None, b"")
        async with pool.acquire() as conn, conn.transaction():
            await postgres.append_batch(conn, [(event(str(uuid4()), "A", 0), message)])
        good = [event(str(uuid4()), "A", n) for n in range(1, 300)]
        with pytest.raises(error):
            async with pool.acquire() as conn, conn.transaction():
                await postgres.append_batch(
                    conn, [(e, message) for e in [*good, bad()]]
                )
        assert await pool.fetchval("SELECT count(*) FROM log_entries") == 1
        assert await pool.fetchval("SELECT count(*) FROM merkle_nodes") == 0
        async with pool.acquire() as conn, conn.transaction():
            appended = await postgres.append_batch(conn, [(e, message) for e in good])
        assert appended.seqs == list(range(2, 301))
        async with pool.acquire() as conn:
            leaves = [
                r["leaf_hash"]
                for r in await conn.fetch(
                    "SELECT leaf_hash FROM log_entries ORDER BY seq"
                )
            ]
            assert await postgres.root_hash(conn, 300) == merkle.reference_root(leaves)
    finally:
        await pool.close()
