"""The notifier's tables on asyncpg: the ``Notifier`` port (every statement a handler
runs, in its caller's transaction) and the read queries of the HTTP API."""

import functools
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from notifier.domain.model import (
    Ack,
    AlertRef,
    ClockTimes,
    EpisodeRecord,
    EpisodeStatus,
    NewObligation,
    Obligation,
    OpenObligation,
    StepAlert,
    StoredFacts,
)
from notifier.domain.schedules import RuntimeOverride
from rules import EpisodeFacts
from shared import timers
from shared.alerts import Alert
from shared.db import Conn, columns
from shared.effects import PostgresEffects
from shared.policy import Chain, ClockStart, SatisfiedBy


async def get_alert(conn: Conn, alert_id: UUID) -> asyncpg.Record | None:
    """One alert row, as the HTTP API shows it."""
    return await conn.fetchrow("SELECT * FROM alerts WHERE id = $1", alert_id)


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


_INSERT_ALERTS = """
INSERT INTO alerts (id, dedupe_key, obligation_id, episode_id, step_key, level,
                    level_name, reason, scheduled_at, created_at, recipients)
SELECT i, o::text || ':' || k, o, e, k, l, n, r, s, $10, p::jsonb
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::text[],
            $7::text[], $8::timestamptz[], $9::text[]) AS u(i, o, e, k, l, n, r, s, p)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""

# Reported episodes, a batch's in one statement; one known already is kept.
_INSERT_EPISODES = """
INSERT INTO episodes (episode_id, county_code, child_initials, caseworker,
    supervisor, facts, times, status)
SELECT i, c, n, w::jsonb, s::jsonb, f::jsonb, t::jsonb, st
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[]) WITH ORDINALITY AS u(i, c, n, w, s, f, t, st, o)
ORDER BY o
ON CONFLICT (episode_id) DO NOTHING
"""


def _episode_row(episode: EpisodeRecord) -> tuple[Any, ...]:
    return (
        episode.id,
        episode.county_code,
        episode.child_initials,
        json.dumps(episode.staff["caseworker"]),
        json.dumps(episode.staff["supervisor"]),
        json.dumps(_facts_json(episode.facts)),
        json.dumps(_times_json(episode.times)),
        episode.status.value,
    )


# One statement for every obligation a report opens (arrays, not a row each); the
# interval arrays travel as text literals, as unnest cannot take an array of arrays.
_INSERT_OBLIGATIONS = """
INSERT INTO obligations (id, episode_id, county_code, jurisdiction, kind, title,
    opened_at, clock_start, due_at, policy_digest, rule, chain, snooze,
    breach_repeat, reminders)
SELECT i, e, c, j, k, t, o, s, d, p, r::jsonb, ch::jsonb, sn, b, rm::interval[]
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[],
    $11::text[], $12::text[], $13::interval[], $14::interval[], $15::text[])
    WITH ORDINALITY AS u(i, e, c, j, k, t, o, s, d, p, r, ch, sn, b, rm, n)
ORDER BY n
ON CONFLICT (episode_id, kind) DO NOTHING
RETURNING id
"""


def _obligation_row(new: NewObligation) -> tuple[Any, ...]:
    return (
        new.id,
        new.episode_id,
        new.county_code,
        new.jurisdiction,
        new.rule.id,
        new.rule.title,
        new.opened_at,
        new.clock_start,
        new.due_at,
        new.policy_digest,
        new.rule.model_dump_json(),
        new.chain.model_dump_json(),
        new.snooze,
        new.breach_repeat,
        _interval_array(new.reminders),
    )


def _interval_array(spans: Sequence[timedelta]) -> str:
    """PostgreSQL's text form of an ``interval[]``, exact to the microsecond: days,
    seconds and microseconds as a ``timedelta`` holds them, each with its own sign
    (under ``IntervalStyle=sql_standard`` a leading minus would otherwise apply to
    the fields after it)."""
    items = (
        f'"{s.days:+d} days {s.seconds:+d} seconds {s.microseconds:+d} microseconds"'
        for s in spans
    )
    return "{" + ",".join(items) + "}"


_LOCK_OBLIGATION = """
SELECT o.*, e.child_initials, e.caseworker, e.supervisor FROM obligations o
JOIN episodes e USING (episode_id) WHERE o.id = $1 FOR UPDATE OF o
"""

_LOCK_OPEN = """
SELECT id, episode_id, county_code, kind, rule, clock_start, due_at, breached_at
FROM obligations WHERE episode_id = $1 AND status = 'open'
ORDER BY due_at FOR UPDATE
"""


class PostgresNotifier(PostgresEffects):
    """The ``Notifier`` port on one connection, in its caller's transaction."""

    # ----------------------------------------------------------------- episodes

    async def add_episodes(self, episodes: Sequence[EpisodeRecord]) -> None:
        if episodes:
            await self._conn.execute(
                _INSERT_EPISODES, *columns([_episode_row(e) for e in episodes])
            )

    async def lock_episode(self, episode_id: UUID) -> EpisodeRecord | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM episodes WHERE episode_id = $1 FOR UPDATE", episode_id
        )
        return _episode(row) if row is not None else None

    async def save_episode(self, episode: EpisodeRecord) -> None:
        await self._conn.execute(
            "UPDATE episodes SET times = $2, facts = $3, status = $4 "
            "WHERE episode_id = $1",
            episode.id,
            _times_json(episode.times),
            _facts_json(episode.facts),
            episode.status.value,
        )

    # -------------------------------------------------------------- obligations

    async def add_obligations(self, drafts: Sequence[NewObligation]) -> set[UUID]:
        if not drafts:
            return set()
        rows = await self._conn.fetch(
            _INSERT_OBLIGATIONS, *columns([_obligation_row(new) for new in drafts])
        )
        return {row["id"] for row in rows}

    async def lock_open_obligations(self, episode_id: UUID) -> list[OpenObligation]:
        return [_open(r) for r in await self._conn.fetch(_LOCK_OPEN, episode_id)]

    async def set_waiting(self, obligation_id: UUID, reason: str) -> None:
        await self._conn.execute(
            "UPDATE obligations SET waiting_reason = $2 WHERE id = $1",
            obligation_id,
            reason,
        )

    async def satisfy(
        self,
        obligation_id: UUID,
        *,
        at: datetime,
        by: str,
        reference_number: str | None,
        now: datetime,
    ) -> None:
        await self._conn.execute(
            "UPDATE obligations SET status = 'satisfied', satisfied_at = $2, "
            "satisfied_by = $3, reference_number = $4, waiting_reason = NULL, "
            "closed_at = $5 WHERE id = $1",
            obligation_id,
            at,
            by,
            reference_number,
            now,
        )

    async def make_moot(
        self, obligation_ids: Sequence[UUID], *, reason: str, now: datetime
    ) -> None:
        if obligation_ids:
            await self._conn.execute(
                "UPDATE obligations SET status = 'moot', closed_reason = $2, "
                "closed_at = $3 WHERE id = ANY($1::uuid[])",
                list(obligation_ids),
                reason,
                now,
            )

    async def lock_obligation(self, obligation_id: UUID) -> Obligation | None:
        row = await self._conn.fetchrow(_LOCK_OBLIGATION, obligation_id)
        return obligation_of(row) if row is not None else None

    async def snooze(self, obligation_id: UUID, *, until: datetime, level: int) -> None:
        await self._conn.execute(
            "UPDATE obligations SET snoozed_until = $2, snoozed_level = $3 "
            "WHERE id = $1",
            obligation_id,
            until,
            level,
        )

    # ------------------------------------------------------------------- firing

    async def lock_for_firing(
        self, obligation_ids: Sequence[UUID]
    ) -> dict[UUID, Obligation | None]:
        found: dict[UUID, Obligation | None] = {}
        for r in await self._conn.fetch(_LOCK_FOR_FIRING, list(obligation_ids)):
            found[r["id"]] = obligation_of(r) if r["status"] == "open" else None
        return found

    async def insert_alerts(
        self, alerts: Sequence[StepAlert], now: datetime
    ) -> set[UUID]:
        if not alerts:
            return set()
        rows = await self._conn.fetch(
            _INSERT_ALERTS,
            [a.alert.id for a in alerts],
            [a.obligation_id for a in alerts],
            [a.episode_id for a in alerts],
            [a.step_key for a in alerts],
            [a.level for a in alerts],
            [a.level_name for a in alerts],
            [a.alert.reason for a in alerts],
            [a.alert.scheduled_at for a in alerts],
            [json.dumps(_recipients(a.alert)) for a in alerts],
            now,
        )
        return {r["id"] for r in rows}

    async def mark_breached(
        self, obligation_ids: Sequence[UUID], now: datetime
    ) -> None:
        if obligation_ids:
            await self._conn.execute(
                "UPDATE obligations SET breached_at = $2 WHERE id = ANY($1::uuid[])",
                list(obligation_ids),
                now,
            )

    # --------------------------------------------------------------------- acks

    async def get_alert(self, alert_id: UUID) -> AlertRef | None:
        row = await get_alert(self._conn, alert_id)
        if row is None:
            return None
        return AlertRef(
            row["id"], row["obligation_id"], row["episode_id"], row["level"]
        )

    async def add_ack(self, alert_id: UUID, ack: Ack) -> None:
        await self._conn.execute(
            "INSERT INTO acks (alert_id, acked_by, acked_at, note) "
            "VALUES ($1, $2, $3, $4)",
            alert_id,
            ack.acked_by,
            ack.acked_at,
            ack.note,
        )

    async def acks_of(self, alert_id: UUID) -> list[Ack]:
        rows = await acks_of(self._conn, alert_id)
        return [Ack(r["acked_by"], r["acked_at"], r["note"]) for r in rows]

    # ------------------------------------------------------------------ effects

    async def pending_step(self, subject_id: UUID) -> timers.Timer | None:
        await self._write_steps()
        return await timers.pending(self._conn, subject_id)

    async def move_step(self, timer_id: int, to: timers.Move) -> None:
        await self._write_steps()
        await timers.move(self._conn, timer_id, to)

    # ---------------------------------------------------------------- schedules

    async def lock_schedule(self, schedule: str) -> None:
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('mfc-oncall:' || $1))", schedule
        )

    async def overrides_in_force(
        self, schedule: str | None, now: datetime
    ) -> list[RuntimeOverride]:
        rows = await self._conn.fetch(
            "SELECT * FROM oncall_overrides WHERE removed_at IS NULL AND ends_at > $1 "
            "AND ($2::text IS NULL OR schedule = $2) ORDER BY starts_at",
            now,
            schedule,
        )
        return [_override(r) for r in rows]

    async def covers_at(self, at: datetime) -> dict[str, str]:
        rows = await self._conn.fetch(
            "SELECT schedule, contact FROM oncall_overrides WHERE removed_at IS NULL "
            "AND ends_at > $1 AND starts_at <= $1",
            at,
        )
        return {r["schedule"]: r["contact"] for r in rows}

    async def add_override(self, override: RuntimeOverride) -> None:
        o = override
        await self._conn.execute(
            "INSERT INTO oncall_overrides (id, schedule, contact, starts_at, ends_at, "
            "reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            o.id,
            o.schedule,
            o.contact,
            o.start,
            o.end,
            o.reason,
            o.created_by,
            o.created_at,
        )

    async def remove_override(
        self,
        schedule: str,
        override_id: UUID,
        *,
        by: str,
        reason: str | None,
        now: datetime,
    ) -> RuntimeOverride | None:
        row = await self._conn.fetchrow(
            "UPDATE oncall_overrides SET removed_at = $4, removed_by = $3, "
            "removal_reason = $5 WHERE id = $1 AND schedule = $2 "
            "AND removed_at IS NULL AND ends_at > $4 RETURNING *",
            override_id,
            schedule,
            by,
            now,
            reason,
        )
        return _override(row) if row is not None else None


def _override(row: asyncpg.Record) -> RuntimeOverride:
    return RuntimeOverride(
        id=row["id"],
        schedule=row["schedule"],
        contact=row["contact"],
        start=row["starts_at"],
        end=row["ends_at"],
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


def _facts_json(stored: StoredFacts) -> dict[str, Any]:
    facts = stored.facts.model_dump(mode="json")
    if stored.flags is None:
        return facts
    return {**facts, "endangerment_flags": stored.flags}


def _times_json(times: ClockTimes) -> dict[str, str | None]:
    return {k.value: v.isoformat() if v else None for k, v in times.items()}


def _episode(row: asyncpg.Record) -> EpisodeRecord:
    facts = row["facts"]
    return EpisodeRecord(
        id=row["episode_id"],
        county_code=row["county_code"],
        child_initials=row["child_initials"],
        staff={"caseworker": row["caseworker"], "supervisor": row["supervisor"]},
        facts=StoredFacts(
            EpisodeFacts.model_validate(facts), facts.get("endangerment_flags")
        ),
        times={
            ClockStart(k): datetime.fromisoformat(v) if v else None
            for k, v in row["times"].items()
        },
        status=EpisodeStatus(row["status"]),
    )


def _open(row: asyncpg.Record) -> OpenObligation:
    return OpenObligation(
        id=row["id"],
        episode_id=row["episode_id"],
        county_code=row["county_code"],
        kind=row["kind"],
        satisfied_by=SatisfiedBy.model_validate(row["rule"]["satisfied_by"]),
        clock_start=row["clock_start"],
        due_at=row["due_at"],
        breached=row["breached_at"] is not None,
        report_items=tuple(row["rule"].get("report_items") or ()),
    )


def _recipients(alert: Alert) -> list[dict[str, Any]]:
    return [{"id": r.id, "name": r.name, "email": r.email} for r in alert.recipients]
