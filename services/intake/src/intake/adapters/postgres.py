"""Intake's tables on asyncpg. Every function runs inside the caller's transaction."""

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from intake.domain.model import Episode, EpisodeStatus
from shared.db import Conn


def _episode(row: asyncpg.Record) -> Episode:
    return Episode(
        id=row["id"],
        county_code=row["county_code"],
        case_id=row["case_id"],
        status=EpisodeStatus(row["status"]),
        completeness=list(row["completeness"]),
        agency_learned_at=row["agency_learned_at"],
        created_at=row["created_at"],
    )


_COLUMNS = (
    "id, county_code, case_id, status, completeness, agency_learned_at, created_at"
)


async def insert_episode_if_none_open(
    conn: Conn,
    *,
    episode_id: UUID,
    county_code: str,
    case_id: str,
    report: dict[str, Any],
    digest: str,
    completeness: list[str],
    agency_learned_at: datetime,
    now: datetime,
) -> bool:
    """Insert a new open episode; False if the case already has an open one."""
    inserted = await conn.fetchval(
        """
        INSERT INTO episodes (id, county_code, case_id, status, report, report_digest,
                              completeness, agency_learned_at, created_at, updated_at)
        VALUES ($1, $2, $3, 'missing', $4, $5, $6, $7, $8, $8)
        ON CONFLICT (county_code, case_id) WHERE status <> 'closed' DO NOTHING
        RETURNING true
        """,
        episode_id,
        county_code,
        case_id,
        report,
        digest,
        completeness,
        agency_learned_at,
        now,
    )
    return bool(inserted)


async def open_episode_for_case(
    conn: Conn, *, county_code: str, case_id: str
) -> tuple[Episode, str] | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, report_digest FROM episodes "
        "WHERE county_code = $1 AND case_id = $2 AND status <> 'closed'",
        county_code,
        case_id,
    )
    return (_episode(row), row["report_digest"]) if row else None


async def get_episode(conn: Conn, episode_id: UUID) -> Episode | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM episodes WHERE id = $1", episode_id
    )
    return _episode(row) if row else None


async def append_timeline(
    conn: Conn,
    *,
    episode_id: UUID,
    event_id: str,
    type_: str,
    occurred_at: datetime,
    data: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO timeline (episode_id, event_id, type, occurred_at, data) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        episode_id,
        event_id,
        type_,
        occurred_at,
        data,
    )


async def timeline(conn: Conn, episode_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT event_id, type, occurred_at, data FROM timeline WHERE episode_id = $1 ORDER BY seq",
        episode_id,
    )
    return [
        {
            "event_id": r["event_id"],
            "type": r["type"],
            "occurred_at": r["occurred_at"],
            "data": r["data"],
        }
        for r in rows
    ]
