"""Versioned migrations per service schema, on a real PostgreSQL."""

import asyncio

import pytest

from shared.db import (
    Migration,
    MigrationError,
    apply_migrations,
    create_pool,
    load_migrations,
)

MIGRATIONS = [
    *load_migrations("shared", "shared.migrations"),
    Migration("svc", 1, "0001_a.sql", "CREATE TABLE a (id int)"),
    Migration("svc", 2, "0002_b.sql", "CREATE TABLE b (id int)"),
]


async def test_migrations_apply_once_and_then_are_skipped(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique)
    try:
        assert await apply_migrations(pool, MIGRATIONS) == len(MIGRATIONS)
        assert await apply_migrations(pool, MIGRATIONS) == 0
        tables = {
            r["table_name"]
            for r in await pool.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                unique,
            )
        }
        assert {"outbox", "processed_events", "a", "b", "schema_migrations"} <= tables
    finally:
        await pool.close()


async def test_replicas_starting_together_apply_each_migration_once(infra, unique):
    pools = [await create_pool(infra.database_url, schema=unique) for _ in range(3)]
    try:
        applied = await asyncio.gather(
            *(apply_migrations(p, MIGRATIONS) for p in pools)
        )
        assert sorted(applied) == [0, 0, len(MIGRATIONS)]
        assert await pools[0].fetchval("SELECT count(*) FROM schema_migrations") == len(
            MIGRATIONS
        )
    finally:
        for pool in pools:
            await pool.close()


async def test_an_applied_migration_that_changed_is_refused(infra, unique):
    pool = await create_pool(infra.database_url, schema=unique)
    try:
        await apply_migrations(pool, MIGRATIONS)
        edited = [
            *MIGRATIONS[:-1],
            Migration("svc", 2, "0002_b.sql", "CREATE TABLE b (id bigint)"),
        ]
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(pool, edited)
    finally:
        await pool.close()


async def test_services_in_one_database_do_not_see_each_others_tables(infra, unique):
    mine = await create_pool(infra.database_url, schema=f"{unique}_a")
    theirs = await create_pool(infra.database_url, schema=f"{unique}_b")
    try:
        await apply_migrations(mine, MIGRATIONS)
        await apply_migrations(theirs, MIGRATIONS[:1])
        await mine.execute("INSERT INTO a VALUES (1)")
        assert await theirs.fetchval("SELECT to_regclass('a')") is None
    finally:
        await mine.close()
        await theirs.close()
