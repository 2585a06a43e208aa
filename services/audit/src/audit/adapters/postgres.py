"""The audit log on asyncpg."""

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.consumer import RawMessage
from shared.db import Conn
from shared.events import CloudEvent


def _episode_id(subject: str | None) -> UUID | None:
    try:
        return UUID(subject) if subject else None
    except ValueError:
        return None


async def append(conn: Conn, event: CloudEvent, message: RawMessage) -> bool:
    """Append one event; False if its id is in the log already.

    Appends are serialised by a transaction-level lock, so sequence numbers are
    gapless and in commit order: a reader paging by ``seq`` never skips an entry
    that commits later with a smaller number.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('mfc-audit-append'))")
    county = event.data.get("county_code")
    inserted = await conn.fetchval(
        """
        INSERT INTO log_entries (seq, event_id, topic, kafka_partition, kafka_offset, type,
                                 source, subject, episode_id, county_code, event_time, event)
        SELECT coalesce(max(seq), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
        FROM log_entries
        ON CONFLICT (event_id) DO NOTHING
        RETURNING seq
        """,
        event.id,
        message.topic,
        message.partition,
        message.offset,
        event.type,
        event.source,
        event.subject,
        _episode_id(event.subject),
        county if isinstance(county, str) else None,
        event.time,
        event.model_dump(mode="json", exclude_none=True),
    )
    return inserted is not None


async def entries(
    conn: Conn,
    *,
    after_seq: int,
    limit: int,
    episode_id: UUID | None = None,
    county: str | None = None,
    type_: str | None = None,
    time_from: datetime | None = None,
    time_to: datetime | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT seq, event_id, topic, type, source, subject, episode_id, county_code,
               event_time, appended_at, event
        FROM log_entries
        WHERE seq > $1
          AND ($3::uuid IS NULL OR episode_id = $3)
          AND ($4::text IS NULL OR county_code = $4)
          AND ($5::text IS NULL OR type = $5)
          AND ($6::timestamptz IS NULL OR event_time >= $6)
          AND ($7::timestamptz IS NULL OR event_time < $7)
        ORDER BY seq
        LIMIT $2
        """,
        after_seq,
        limit,
        episode_id,
        county,
        type_,
        time_from,
        time_to,
    )
    return [dict(r) for r in rows]
