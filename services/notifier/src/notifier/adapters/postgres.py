"""The notifier's tables on asyncpg; every function runs in the caller's transaction."""

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.db import Conn


async def save_episode(
    conn: Conn,
    *,
    episode_id: UUID,
    county_code: str,
    child_initials: str,
    caseworker: dict[str, Any],
    supervisor: dict[str, Any],
    facts: dict[str, Any],
    times: dict[str, Any],
) -> None:
    await conn.execute(
        """
        INSERT INTO episodes (episode_id, county_code, child_initials, caseworker,
                              supervisor, facts, times)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (episode_id) DO NOTHING
        """,
        episode_id,
        county_code,
        child_initials,
        caseworker,
        supervisor,
        facts,
        times,
    )


async def lock_episode(conn: Conn, episode_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM episodes WHERE episode_id = $1 FOR UPDATE", episode_id
    )


async def update_episode(
    conn: Conn,
    episode_id: UUID,
    *,
    times: dict[str, Any],
    facts: dict[str, Any],
    status: str,
) -> None:
    await conn.execute(
        "UPDATE episodes SET times = $2, facts = $3, status = $4 WHERE episode_id = $1",
        episode_id,
        times,
        facts,
        status,
    )


async def insert_obligation(conn: Conn, **values: Any) -> bool:
    columns = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    inserted = await conn.fetchval(
        f"INSERT INTO obligations ({columns}) VALUES ({placeholders}) "
        "ON CONFLICT (episode_id, kind) DO NOTHING RETURNING true",
        *values.values(),
    )
    return bool(inserted)


async def open_obligations(conn: Conn, episode_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM obligations WHERE episode_id = $1 AND status = 'open' "
        "ORDER BY due_at FOR UPDATE",
        episode_id,
    )


async def lock_obligation(conn: Conn, obligation_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT o.*, e.child_initials, e.caseworker, e.supervisor FROM obligations o "
        "JOIN episodes e USING (episode_id) WHERE o.id = $1 FOR UPDATE OF o",
        obligation_id,
    )


async def set_obligation(conn: Conn, obligation_id: UUID, **values: Any) -> None:
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, start=2))
    await conn.execute(
        f"UPDATE obligations SET {assignments} WHERE id = $1",
        obligation_id,
        *values.values(),
    )


async def insert_alert(conn: Conn, **values: Any) -> bool:
    columns = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    inserted = await conn.fetchval(
        f"INSERT INTO alerts ({columns}) VALUES ({placeholders}) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING true",
        *values.values(),
    )
    return bool(inserted)


async def get_alert(conn: Conn, alert_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM alerts WHERE id = $1", alert_id)


async def insert_ack(
    conn: Conn, *, alert_id: UUID, acked_by: str, acked_at: datetime, note: str | None
) -> int:
    ack_id: int = await conn.fetchval(
        "INSERT INTO acks (alert_id, acked_by, acked_at, note) VALUES ($1, $2, $3, $4) "
        "RETURNING id",
        alert_id,
        acked_by,
        acked_at,
        note,
    )
    return ack_id


async def acks_of(conn: Conn, alert_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT acked_by, acked_at, note FROM acks WHERE alert_id = $1 ORDER BY id",
        alert_id,
    )


async def find_obligations(
    conn: Conn,
    *,
    episode_id: UUID | None,
    status: str | None,
    due_before: datetime | None,
    limit: int,
    counties: list[str] | None = None,
) -> list[asyncpg.Record]:
    """``counties``: those to look in (None: every county)."""
    breached = status == "breached"
    return await conn.fetch(
        """
        SELECT * FROM obligations
        WHERE ($1::uuid IS NULL OR episode_id = $1)
          AND ($6::text[] IS NULL OR county_code = ANY($6))
          AND ($2::text IS NULL OR status = $2)
          AND (NOT $3::boolean OR breached_at IS NOT NULL)
          AND ($4::timestamptz IS NULL OR due_at < $4)
        ORDER BY due_at, id LIMIT $5
        """,
        episode_id,
        "open" if breached else status,
        breached,
        due_before,
        limit,
        counties,
    )


async def alerts_of(
    conn: Conn, episode_id: UUID, *, counties: list[str] | None = None
) -> list[asyncpg.Record]:
    """The episode's alerts, if its county is one of ``counties`` (None: any)."""
    return await conn.fetch(
        """
        SELECT a.* FROM alerts a
        WHERE a.episode_id = $1
          AND ($2::text[] IS NULL OR EXISTS (
                SELECT 1 FROM obligations o
                WHERE o.id = a.obligation_id AND o.county_code = ANY($2)))
        ORDER BY a.created_at, a.step_key
        """,
        episode_id,
        counties,
    )
