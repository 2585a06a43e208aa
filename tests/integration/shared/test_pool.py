"""The pool hands connections back without a reset round trip, and that leaves
nothing of one borrower's session to the next."""

import asyncio

import asyncpg

from shared.db import Wakeup, create_pool


async def _last_query(database_url: str, pid: int) -> str:
    observer = await asyncpg.connect(database_url)
    try:
        query: str = await observer.fetchval(
            "SELECT query FROM pg_stat_activity WHERE pid = $1", pid
        )
    finally:
        await observer.close()
    return query


async def test_a_released_connection_is_not_sent_a_reset(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique, min_size=2)
    try:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.execute("SELECT 'the borrower''s last statement'")
        assert "borrower" in await _last_query(infra.database_url, pid)
    finally:
        await pool.close()


async def test_a_transaction_left_open_is_rolled_back_at_release(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique, max_size=1)
    try:
        await pool.execute("CREATE TABLE t (id int)")
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO t VALUES (1)")
        await pool.release(conn)
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await pool.close()


async def test_a_stopped_wakeup_leaves_no_connection_listening(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique, min_size=2, max_size=2)
    try:
        wakeup = Wakeup(pool, f"{unique}_ch")
        await wakeup.start()
        await pool.execute(f"NOTIFY {unique}_ch")
        await asyncio.wait_for(wakeup.wait(poll=30), 10)  # woken by the NOTIFY
        await wakeup.stop()
        both = [await pool.acquire(), await pool.acquire()]
        for conn in both:
            assert await conn.fetch("SELECT pg_listening_channels()") == []
        for conn in both:
            await pool.release(conn)
    finally:
        await pool.close()
