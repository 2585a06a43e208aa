"""The notifier's tables on asyncpg; every function runs in the caller's transaction."""

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from notifier.domain.model import Obligation
from shared.alerts import Alert
from shared.db import Conn
from shared.policy import Chain


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


_OBLIGATION_VIEW = """
    SELECT o.*, e.child_initials, e.caseworker, e.supervisor,
           o.rule ->> 'source' AS source,
           latest.id AS last_alert_id, coalesce(latest.acked, false) AS acked,
           reached.level_reached
    FROM obligations o
    JOIN episodes e USING (episode_id)
    LEFT JOIN LATERAL (
        SELECT a.id, EXISTS (SELECT 1 FROM acks k WHERE k.alert_id = a.id) AS acked
        FROM alerts a WHERE a.obligation_id = o.id
        ORDER BY a.created_at DESC, a.scheduled_at DESC, a.step_key DESC LIMIT 1
    ) latest ON true
    LEFT JOIN LATERAL (
        SELECT max(a.level) AS level_reached FROM alerts a WHERE a.obligation_id = o.id
    ) reached ON true
"""
"""Obligations with what an inbox shows of each: the child's initials, the rule's
source, the newest alert (and whether it was acked) and the highest level alerted.
One query, whatever the number of rows (the alerts by obligation index)."""


async def find_obligations(
    conn: Conn,
    *,
    episode_id: UUID | None,
    status: str | None,
    due_before: datetime | None,
    limit: int,
    counties: list[str] | None = None,
) -> list[asyncpg.Record]:
    """Most urgent first (``due_at`` ascending); ``counties``: those to look in
    (None: every county)."""
    breached = status == "breached"
    return await conn.fetch(
        _OBLIGATION_VIEW
        + """
        WHERE ($1::uuid IS NULL OR o.episode_id = $1)
          AND ($6::text[] IS NULL OR o.county_code = ANY($6))
          AND ($2::text IS NULL OR o.status = $2)
          AND (NOT $3::boolean OR o.breached_at IS NOT NULL)
          AND ($4::timestamptz IS NULL OR o.due_at < $4)
        ORDER BY o.due_at ASC, o.id ASC LIMIT $5
        """,
        episode_id,
        "open" if breached else status,
        breached,
        due_before,
        limit,
        counties,
    )


async def obligation_view(conn: Conn, obligation_id: UUID) -> asyncpg.Record | None:
    """One obligation as :func:`find_obligations` answers it."""
    return await conn.fetchrow(_OBLIGATION_VIEW + " WHERE o.id = $1", obligation_id)


async def find_alerts(
    conn: Conn,
    *,
    episode_id: UUID | None,
    open_only: bool,
    limit: int,
    counties: list[str] | None = None,
) -> list[asyncpg.Record]:
    """Alerts of an episode in the order they were raised, or of every episode
    newest first; either way the newest ``limit``, each with its acknowledgements
    (``acks``). ``open_only``: only those whose obligation is still open.
    ``counties``: those to look in (None: every county)."""
    rows = await conn.fetch(
        """
        SELECT a.*, coalesce(k.acks, '[]'::jsonb) AS acks FROM alerts a
        JOIN obligations o ON o.id = a.obligation_id
        LEFT JOIN LATERAL (
            SELECT jsonb_agg(jsonb_build_object('acked_by', acked_by,
                                                'acked_at', acked_at,
                                                'note', note)
                             ORDER BY acked_at) AS acks
            FROM acks WHERE alert_id = a.id
        ) k ON true
        WHERE ($1::uuid IS NULL OR a.episode_id = $1)
          AND ($2::text[] IS NULL OR o.county_code = ANY($2))
          AND (NOT $3::boolean OR o.status = 'open')
        ORDER BY a.created_at DESC, a.step_key DESC LIMIT $4
        """,
        episode_id,
        counties,
        open_only,
        limit,
    )
    return rows[::-1] if episode_id is not None else rows


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


# --------------------------------------------------------------------------- #
# Firing steps: a batch of obligations in a constant number of statements
# --------------------------------------------------------------------------- #

_LOCK_FOR_FIRING = """
SELECT o.id, o.episode_id, o.county_code, o.jurisdiction, o.kind, o.title, o.status,
       o.opened_at, o.due_at, o.waiting_reason, o.policy_digest, o.chain, o.reminders,
       o.breach_repeat, o.snooze, o.snoozed_until, o.snoozed_level,
       e.child_initials, e.caseworker, e.supervisor
FROM obligations o JOIN episodes e USING (episode_id)
WHERE o.id = ANY($1::uuid[])
FOR UPDATE OF o SKIP LOCKED
"""


@functools.lru_cache(maxsize=256)
def _chain(_policy_digest: str, _kind: str, raw: str) -> Chain:
    """A frozen chain, parsed once per policy version and rule."""
    return Chain.model_validate_json(raw)


def obligation_of(r: asyncpg.Record) -> Obligation:
    """An obligations row joined with its episode's initials and staff."""
    return Obligation(
        id=r["id"],
        episode_id=r["episode_id"],
        county_code=r["county_code"],
        jurisdiction=r["jurisdiction"],
        kind=r["kind"],
        title=r["title"],
        status=r["status"],
        opened_at=r["opened_at"],
        due_at=r["due_at"],
        waiting_reason=r["waiting_reason"],
        child_initials=r["child_initials"],
        staff={"caseworker": r["caseworker"], "supervisor": r["supervisor"]},
        chain=_chain(r["policy_digest"], r["kind"], json.dumps(r["chain"])),
        reminders=tuple(r["reminders"]) if r["reminders"] is not None else None,
        breach_repeat=r["breach_repeat"],
        snooze=r["snooze"],
        snoozed_until=r["snoozed_until"],
        snoozed_level=r["snoozed_level"],
    )


async def lock_for_firing(
    conn: Conn, obligation_ids: Sequence[UUID]
) -> dict[UUID, Obligation | None]:
    """The obligations, locked; None for one that is no longer open. One that another
    transaction holds (a notice being recorded) is left out: fired next round."""
    found: dict[UUID, Obligation | None] = {}
    for r in await conn.fetch(_LOCK_FOR_FIRING, list(obligation_ids)):
        found[r["id"]] = obligation_of(r) if r["status"] == "open" else None
    return found


@dataclass(frozen=True)
class AlertRow:
    id: UUID
    obligation_id: UUID
    episode_id: UUID
    step_key: str
    level: int
    level_name: str
    reason: str
    scheduled_at: datetime
    recipients: list[dict[str, Any]]

    @classmethod
    def of(cls, alert: Alert, obligation_id: UUID, step_key: str) -> "AlertRow":
        return cls(
            id=alert.id,
            obligation_id=obligation_id,
            episode_id=alert.episode_id,
            step_key=step_key,
            level=alert.details["level"],
            level_name=alert.details["level_name"],
            reason=alert.reason,
            scheduled_at=alert.scheduled_at,
            recipients=[
                {"id": r.id, "name": r.name, "email": r.email} for r in alert.recipients
            ],
        )


_INSERT_ALERTS = """
INSERT INTO alerts (id, dedupe_key, obligation_id, episode_id, step_key, level,
                    level_name, reason, scheduled_at, created_at, recipients)
SELECT i, o::text || ':' || k, o, e, k, l, n, r, s, $10, p::jsonb
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::text[],
            $7::text[], $8::timestamptz[], $9::text[]) AS u(i, o, e, k, l, n, r, s, p)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""


async def insert_alerts(
    conn: Conn, alerts: Sequence[AlertRow], now: datetime
) -> set[UUID]:
    """Insert the alerts not raised before (one per obligation and step); the ids
    of those inserted."""
    if not alerts:
        return set()
    rows = await conn.fetch(
        _INSERT_ALERTS,
        [a.id for a in alerts],
        [a.obligation_id for a in alerts],
        [a.episode_id for a in alerts],
        [a.step_key for a in alerts],
        [a.level for a in alerts],
        [a.level_name for a in alerts],
        [a.reason for a in alerts],
        [a.scheduled_at for a in alerts],
        [json.dumps(a.recipients) for a in alerts],
        now,
    )
    return {r["id"] for r in rows}


async def mark_breached(
    conn: Conn, obligation_ids: Sequence[UUID], now: datetime
) -> None:
    if obligation_ids:
        await conn.execute(
            "UPDATE obligations SET breached_at = $2 WHERE id = ANY($1::uuid[])",
            list(obligation_ids),
            now,
        )
