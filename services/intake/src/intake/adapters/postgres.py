"""Intake's tables on asyncpg. Every function runs inside the caller's transaction,
where it has one."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from intake.domain.feeds import Heard
from intake.domain.lifecycle import EpisodeState
from intake.domain.model import Episode, EpisodeStatus
from shared.db import Conn
from shared.events import CloudEvent, EpisodeReportedData, EventType
from shared.outbox import NOTIFY_CHANNEL
from shared.published import PUBLISHED, checked

_COLUMNS = (
    "id, county_code, case_id, status, completeness, agency_learned_at, created_at, "
    "updated_at, located_at, screened_at, closed_at"
)


def _episode(row: asyncpg.Record) -> Episode:
    return Episode(
        id=row["id"],
        county_code=row["county_code"],
        case_id=row["case_id"],
        status=EpisodeStatus(row["status"]),
        completeness=list(row["completeness"]),
        agency_learned_at=row["agency_learned_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        located_at=row["located_at"],
        screened_at=row["screened_at"],
        closed_at=row["closed_at"],
    )


class IdempotencyKeyTakenError(Exception):
    """The Idempotency-Key was stored meanwhile by another request: nothing of this
    one was written."""


@dataclass(frozen=True)
class StoredKey:
    """The Idempotency-Key came before: what its first request was and opened."""

    request_digest: str
    episode_id: UUID


async def open_episode(
    conn: Conn,
    episode_id: UUID,
    report: EpisodeReportedData,
    reported: CloudEvent,
    *,
    topic: str,
    digest: str,
    completeness: list[str],
    idempotency_key: str | None,
    now: datetime,
) -> Episode | StoredKey | None:
    """Open an episode for a report, in one statement: the episode, its timeline's
    first entry, the canonical event ``reported`` in the outbox (as
    ``shared.outbox.enqueue`` writes it, NOTIFY included) and the Idempotency-Key;
    or nothing at all if the key was stored before (what it was stored with) or the
    case already has an open episode (None).

    One statement is one transaction where the caller has none: a new report costs
    one round trip, its key's lookup included, and is written whole or not at all.

    Raises:
        IdempotencyKeyTakenError: another request stored the key meanwhile.
        ContractError: ``reported`` does not match its published model.
    """
    if topic in PUBLISHED:
        checked(topic, reported.type, reported.data)
    try:
        row = await conn.fetchrow(
            f"""
            WITH stored AS (
                SELECT request_digest, episode_id FROM idempotency_keys
                WHERE key = $16::text
            ), episode AS (
                INSERT INTO episodes (id, county_code, case_id, status, report,
                                      report_digest, completeness, agency_learned_at,
                                      created_at, updated_at)
                SELECT $1::uuid, $2::text, $3::text, 'missing', $4::jsonb, $5::text,
                       $6::jsonb, $7::timestamptz, $8::timestamptz, $8::timestamptz
                WHERE NOT EXISTS (SELECT FROM stored)
                ON CONFLICT (county_code, case_id) WHERE status <> 'closed' DO NOTHING
                RETURNING {_COLUMNS}
            ), entry AS (
                INSERT INTO timeline (episode_id, event_id, type, occurred_at, data,
                                      digest)
                SELECT id, $9::text, $10::text, $8, $11::jsonb, $5 FROM episode
            ), added AS (
                INSERT INTO outbox (topic, key, event_id, payload)
                SELECT $12::text, $13::text, $9::text, $14::bytea FROM episode
                ON CONFLICT (event_id) DO NOTHING RETURNING 1
            ), notified AS (
                SELECT pg_notify($15, current_schema()) FROM added
            ), remembered AS (
                INSERT INTO idempotency_keys (key, request_digest, episode_id, created_at)
                SELECT $16::text, $5, id, $8 FROM episode WHERE $16::text IS NOT NULL
            )
            SELECT episode.*, (SELECT count(*) FROM notified) AS notified,
                   stored.request_digest AS stored_digest,
                   stored.episode_id AS stored_episode_id
            FROM (SELECT) AS one
            LEFT JOIN episode ON true LEFT JOIN stored ON true
            """,
            episode_id,
            report.county_code,
            report.case_id,
            report.model_dump(mode="json"),
            digest,
            completeness,
            report.agency_learned_at,
            now,
            reported.id,
            reported.type,
            reported.data,
            topic,
            reported.subject or reported.id,
            reported.to_bytes(),
            NOTIFY_CHANNEL,
            idempotency_key,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "idempotency_keys_pkey":
            raise IdempotencyKeyTakenError(idempotency_key) from exc
        raise
    assert row is not None  # one row, whatever was written
    if row["stored_digest"] is not None:
        return StoredKey(row["stored_digest"], row["stored_episode_id"])
    return _episode(row) if row["id"] is not None else None


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


async def lock_episode_state(
    conn: Conn, episode_id: UUID
) -> tuple[Episode, EpisodeState] | None:
    """Load an episode for change, locking its row: one episode's events are applied
    one at a time, so their canonical events enter the outbox in order."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, report FROM episodes WHERE id = $1 FOR UPDATE", episode_id
    )
    if row is None:
        return None
    episode = _episode(row)
    state = EpisodeState(
        status=episode.status,
        report=EpisodeReportedData.model_validate(row["report"]),
        located_at=episode.located_at,
        screened_at=episode.screened_at,
        closed_at=episode.closed_at,
    )
    return episode, state


async def save_episode_state(
    conn: Conn, episode_id: UUID, state: EpisodeState, *, now: datetime
) -> None:
    await conn.execute(
        """
        UPDATE episodes SET status = $2, report = $3, completeness = $4, located_at = $5,
               screened_at = $6, closed_at = $7, updated_at = $8
        WHERE id = $1
        """,
        episode_id,
        state.status.value,
        state.report.model_dump(mode="json"),
        state.completeness,
        state.located_at,
        state.screened_at,
        state.closed_at,
        now,
    )


async def append_timeline(
    conn: Conn,
    *,
    episode_id: UUID,
    event_id: str,
    type_: str,
    occurred_at: datetime,
    data: dict[str, Any],
    digest: str,
) -> None:
    await conn.execute(
        "INSERT INTO timeline (episode_id, event_id, type, occurred_at, data, digest) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        episode_id,
        event_id,
        type_,
        occurred_at,
        data,
        digest,
    )


async def has_fact(conn: Conn, *, episode_id: UUID, type_: str, digest: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM timeline WHERE episode_id = $1 AND type = $2 AND digest = $3",
            episode_id,
            type_,
            digest,
        )
    )


async def has_law_enforcement_reference(conn: Conn, episode_id: UUID) -> bool:
    """Whether a notice to law enforcement with a reference number was recorded."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM timeline WHERE episode_id = $1 AND type = $2 "
            "AND data->>'recipient' = 'law_enforcement' "
            "AND coalesce(data->>'reference_number', '') <> '' LIMIT 1",
            episode_id,
            EventType.NOTIFICATION_RECORDED,
        )
    )


async def timeline(conn: Conn, episode_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT event_id, type, occurred_at, data FROM timeline WHERE episode_id = $1 "
        "ORDER BY seq",
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


async def list_episodes(
    conn: Conn,
    *,
    counties: list[str] | None,
    status: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Episode]:
    """``counties``: those to list (None: every county)."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM episodes
        WHERE ($1::text[] IS NULL OR county_code = ANY($1))
          AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
        ORDER BY created_at, id
        LIMIT $5
        """,
        counties,
        status,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [_episode(r) for r in rows]


async def remember_idempotency_key(
    conn: Conn, *, key: str, request_digest: str, episode_id: UUID, now: datetime
) -> StoredKey:
    """Store the key, or return what it was first stored with."""
    inserted = await conn.fetchval(
        "INSERT INTO idempotency_keys (key, request_digest, episode_id, created_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING RETURNING true",
        key,
        request_digest,
        episode_id,
        now,
    )
    if inserted:
        return StoredKey(request_digest, episode_id)
    # A separate statement: it sees the row a concurrent request just committed.
    stored = await idempotency_key(conn, key)
    assert stored is not None
    return stored


async def idempotency_key(conn: Conn, key: str) -> StoredKey | None:
    row = await conn.fetchrow(
        "SELECT request_digest, episode_id FROM idempotency_keys WHERE key = $1", key
    )
    return StoredKey(row["request_digest"], row["episode_id"]) if row else None


async def save_heard(conn: Conn, heard: list[Heard]) -> None:
    """Record when each county was last heard from; a later time wins, an earlier
    one (another replica's, or a late flush) never moves it back."""
    if not heard:
        return
    await conn.execute(
        "INSERT INTO feeds (county_code, last_event_at, via) "
        "SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[]) "
        "ON CONFLICT (county_code) DO UPDATE "
        "SET last_event_at = EXCLUDED.last_event_at, via = EXCLUDED.via "
        "WHERE feeds.last_event_at < EXCLUDED.last_event_at",
        [h.county_code for h in heard],
        [h.at for h in heard],
        [h.via for h in heard],
    )


async def start_watching(conn: Conn, counties: list[str], at: datetime) -> None:
    """A watched county never heard from counts as quiet since watching began."""
    await conn.execute(
        "INSERT INTO feeds (county_code, last_event_at, via) "
        "SELECT c, $2, 'watch' FROM unnest($1::text[]) AS c "
        "ON CONFLICT (county_code) DO NOTHING",
        counties,
        at,
    )


async def lock_feeds(conn: Conn) -> tuple[list[Heard], dict[str, datetime]]:
    """Every feed as last heard, and the silences announced, locked until commit
    (in county order, so replicas queue rather than deadlock)."""
    rows = await conn.fetch(
        "SELECT county_code, last_event_at, via, silent_since FROM feeds "
        "ORDER BY county_code FOR UPDATE"
    )
    return (
        [Heard(r["county_code"], r["last_event_at"], r["via"]) for r in rows],
        {r["county_code"]: r["silent_since"] for r in rows if r["silent_since"]},
    )


async def set_announced(
    conn: Conn, silent_since: Mapping[str, datetime | None]
) -> None:
    await conn.execute(
        "UPDATE feeds SET silent_since = u.s "
        "FROM unnest($1::text[], $2::timestamptz[]) AS u(c, s) "
        "WHERE feeds.county_code = u.c",
        list(silent_since),
        list(silent_since.values()),
    )
