"""Followup's tables on asyncpg, as the ``Followup`` port: every method runs in the
caller's transaction, and every SQL statement of the service is here."""

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from followup.domain.model import (
    Ended,
    Episode,
    EpisodeStatus,
    Prompt,
    PromptCase,
    PromptStatus,
    Series,
    SeriesStatus,
)
from shared.alerts import Route
from shared.db import Conn, columns
from shared.effects import PostgresEffects
from shared.events import Staff
from shared.policy import PromptRule, PromptStart


class PostgresFollowup(PostgresEffects):
    def __init__(self, conn: Conn, *, route: Route, defer: bool = False) -> None:
        super().__init__(conn, route=route, defer=defer)
        self._covers: dict[datetime, dict[str, str]] = {}

    # ----------------------------------------------------------------- episodes

    async def add_episodes(self, episodes: Sequence[Episode]) -> None:
        if not episodes:
            return
        await self._conn.execute(
            "INSERT INTO episodes (episode_id, county_code, child_initials, "
            "caseworker, supervisor, completeness, status) "
            "SELECT i, c, n, w::jsonb, s::jsonb, m::jsonb, st "
            "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], "
            "$6::text[], $7::text[]) WITH ORDINALITY AS u(i, c, n, w, s, m, st, o) "
            "ORDER BY o ON CONFLICT (episode_id) DO NOTHING",
            *columns([_episode_row(e) for e in episodes]),
        )

    async def lock_episode(self, episode_id: UUID) -> Episode | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM episodes WHERE episode_id = $1 FOR UPDATE", episode_id
        )
        return _episode(row) if row is not None else None

    async def save_episode(self, episode: Episode) -> None:
        await self._conn.execute(
            "UPDATE episodes SET completeness = $2, status = $3 WHERE episode_id = $1",
            episode.episode_id,
            list(episode.completeness),
            episode.status.value,
        )

    # ------------------------------------------------------------------- series

    async def add_series(self, new: Sequence[Series]) -> set[UUID]:
        if not new:
            return set()
        rows = await self._conn.fetch(
            "INSERT INTO series (id, episode_id, rule_id, starts_on, rule, "
            "policy_digest, trigger_id, started_at) "
            "SELECT i, e, r, s, j::jsonb, p, t, a FROM unnest($1::uuid[], $2::uuid[], "
            "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
            "$8::timestamptz[]) WITH ORDINALITY AS u(i, e, r, s, j, p, t, a, n) "
            "ORDER BY n ON CONFLICT DO NOTHING RETURNING id",
            [s.id for s in new],
            [s.episode_id for s in new],
            [s.rule.id for s in new],
            [s.starts_on.value for s in new],
            [s.rule.model_dump_json() for s in new],
            [s.policy_digest for s in new],
            [s.trigger_id for s in new],
            [s.started_at for s in new],
        )
        return {row["id"] for row in rows}

    async def lock_series(
        self, series_ids: Sequence[UUID]
    ) -> dict[UUID, tuple[Series, Episode]]:
        if not series_ids:
            return {}
        rows = await self._conn.fetch(
            "SELECT s.*, e.county_code, e.child_initials, e.caseworker, "
            "e.supervisor, e.completeness, e.status AS episode_status "
            "FROM series s JOIN episodes e USING (episode_id) "
            "WHERE s.id = ANY($1::uuid[]) ORDER BY s.id FOR UPDATE OF s",
            list(series_ids),
        )
        return {
            row["id"]: (_series(row), _episode(row, status=row["episode_status"]))
            for row in rows
        }

    async def has_active_series(self, episode_id: UUID, kind: PromptStart) -> bool:
        return bool(
            await self._conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM series WHERE episode_id = $1 "
                "AND starts_on = $2 AND status = 'active')",
                episode_id,
                kind.value,
            )
        )

    async def end_series(
        self,
        episode_id: UUID,
        kinds: Collection[PromptStart],
        *,
        reason: str,
        now: datetime,
    ) -> Ended:
        ended = await self._conn.fetch(
            "UPDATE series SET status = 'ended', ended_at = $3, ended_reason = $4 "
            "WHERE episode_id = $1 AND status = 'active' "
            "AND starts_on = ANY($2::text[]) RETURNING id",
            episode_id,
            [k.value for k in kinds],
            now,
            reason,
        )
        series_ids = tuple(r["id"] for r in ended)
        if not series_ids:
            return Ended((), ())
        prompts = await self._conn.fetch(
            "UPDATE prompts SET status = 'ended', ended_reason = $2 "
            "WHERE series_id = ANY($1::uuid[]) AND status = 'open' RETURNING *",
            list(series_ids),
            reason,
        )
        ordered = sorted(map(_prompt, prompts), key=lambda p: (p.issued_at, p.rule_id))
        return Ended(series_ids, tuple(ordered))

    async def end_unissued_series(
        self, episode_id: UUID, completed_by_event: str, *, reason: str, now: datetime
    ) -> None:
        await self._conn.execute(
            "UPDATE series SET status = 'ended', ended_at = $3, ended_reason = $4 "
            "WHERE episode_id = $1 AND status = 'active' "
            "AND rule->>'completed_by_event' = $2 "
            "AND NOT EXISTS (SELECT 1 FROM prompts p WHERE p.series_id = series.id)",
            episode_id,
            completed_by_event,
            now,
            reason,
        )

    # ------------------------------------------------------------------ prompts

    async def add_prompts(self, prompts: Sequence[Prompt]) -> set[UUID]:
        if not prompts:
            return set()
        rows = await self._conn.fetch(
            "INSERT INTO prompts (id, series_id, episode_id, rule_id, title, assignee, "
            "occurrence, issued_at, due_at, missing_items) "
            "SELECT i, s, e, r, t, a, o, iss, d, m::jsonb FROM unnest($1::uuid[], "
            "$2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::int[], "
            "$8::timestamptz[], $9::timestamptz[], $10::text[]) "
            "WITH ORDINALITY AS u(i, s, e, r, t, a, o, iss, d, m, n) ORDER BY n "
            "ON CONFLICT DO NOTHING RETURNING id",
            *columns([_prompt_row(p) for p in prompts]),
        )
        return {row["id"] for row in rows}

    async def lock_prompt(self, prompt_id: UUID) -> PromptCase | None:
        row = await self._conn.fetchrow(
            "SELECT p.*, s.rule, e.county_code, e.child_initials, e.caseworker, "
            "e.supervisor, e.completeness, e.status AS episode_status "
            "FROM prompts p JOIN series s ON s.id = p.series_id "
            "JOIN episodes e ON e.episode_id = p.episode_id "
            "WHERE p.id = $1 FOR UPDATE OF p",
            prompt_id,
        )
        if row is None:
            return None
        return PromptCase(
            _prompt(row),
            PromptRule.model_validate(row["rule"]),
            _episode(row, status=row["episode_status"]),
        )

    async def save_prompt(self, prompt: Prompt) -> None:
        await self._conn.execute(
            "UPDATE prompts SET status = $2, overdue_at = $3, completed_at = $4, "
            "completed_by = $5, note = $6, ended_reason = $7 WHERE id = $1",
            prompt.id,
            prompt.status.value,
            prompt.overdue_at,
            prompt.completed_at,
            prompt.completed_by,
            prompt.note,
            prompt.ended_reason,
        )

    async def lock_open_prompts_completed_by(
        self, episode_id: UUID, event_type: str
    ) -> list[Prompt]:
        rows = await self._conn.fetch(
            "SELECT p.* FROM prompts p JOIN series s ON s.id = p.series_id "
            "WHERE p.episode_id = $1 AND p.status = 'open' "
            "AND s.rule->>'completed_by_event' = $2 FOR UPDATE OF p",
            episode_id,
            event_type,
        )
        return [_prompt(r) for r in rows]

    async def find_prompts(
        self,
        *,
        episode_id: UUID | None,
        status: PromptStatus | None,
        overdue: bool,
        limit: int,
        counties: list[str] | None,
    ) -> list[Prompt]:
        rows = await self._conn.fetch(
            """
            SELECT * FROM prompts
            WHERE ($1::uuid IS NULL OR episode_id = $1)
              AND ($2::text IS NULL OR status = $2)
              AND (NOT $3::boolean OR overdue_at IS NOT NULL)
              AND ($5::text[] IS NULL OR episode_id IN (
                    SELECT episode_id FROM episodes WHERE county_code = ANY($5)))
            ORDER BY issued_at, rule_id LIMIT $4
            """,
            episode_id,
            status.value if status is not None else None,
            overdue,
            limit,
            counties,
        )
        return [_prompt(r) for r in rows]

    # ------------------------------------------------------------------ effects

    # ------------------------------------------------------------------- covers

    async def add_cover(
        self,
        cover_id: UUID,
        schedule: str,
        contact: str,
        start: datetime,
        end: datetime,
    ) -> None:
        self._covers.clear()
        await self._conn.execute(
            "INSERT INTO oncall_covers (id, schedule, contact, starts_at, ends_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            cover_id,
            schedule,
            contact,
            start,
            end,
        )

    async def remove_cover(self, cover_id: UUID, at: datetime) -> None:
        self._covers.clear()
        await self._conn.execute(
            "UPDATE oncall_covers SET removed_at = $2 WHERE id = $1", cover_id, at
        )

    async def covers_at(self, at: datetime) -> dict[str, str]:
        """Read once per instant and port (a fired batch has one instant, and a
        port lives for one transaction); this port's own cover changes re-read."""
        if at not in self._covers:
            rows = await self._conn.fetch(
                "SELECT schedule, contact FROM oncall_covers WHERE removed_at IS NULL "
                "AND starts_at <= $1 AND ends_at > $1",
                at,
            )
            self._covers[at] = {r["schedule"]: r["contact"] for r in rows}
        return dict(self._covers[at])


async def open_prompts_by_kind(conn: Conn) -> dict[str, tuple[int, int]]:
    """For the gauges: per kind, the prompts open now and those of them overdue."""
    rows = await conn.fetch(
        "SELECT rule_id, count(*) AS open, "
        "count(*) FILTER (WHERE overdue_at IS NOT NULL) AS overdue "
        "FROM prompts WHERE status = 'open' GROUP BY rule_id"
    )
    return {r["rule_id"]: (r["open"], r["overdue"]) for r in rows}


def _prompt_row(prompt: Prompt) -> tuple[Any, ...]:
    items = prompt.missing_items
    return (
        prompt.id,
        prompt.series_id,
        prompt.episode_id,
        prompt.rule_id,
        prompt.title,
        prompt.assignee,
        prompt.occurrence,
        prompt.issued_at,
        prompt.due_at,
        json.dumps(list(items)) if items is not None else None,
    )


def _episode_row(episode: Episode) -> tuple[Any, ...]:
    return (
        episode.episode_id,
        episode.county_code,
        episode.child_initials,
        episode.caseworker.model_dump_json(),
        episode.supervisor.model_dump_json(),
        json.dumps(list(episode.completeness)),
        episode.status.value,
    )


def _episode(row: asyncpg.Record, *, status: str | None = None) -> Episode:
    return Episode(
        episode_id=row["episode_id"],
        county_code=row["county_code"],
        child_initials=row["child_initials"],
        caseworker=Staff.model_validate(row["caseworker"]),
        supervisor=Staff.model_validate(row["supervisor"]),
        completeness=tuple(row["completeness"]),
        status=EpisodeStatus(status or row["status"]),
    )


def _series(row: asyncpg.Record) -> Series:
    return Series(
        id=row["id"],
        episode_id=row["episode_id"],
        rule=PromptRule.model_validate(row["rule"]),
        starts_on=PromptStart(row["starts_on"]),
        policy_digest=row["policy_digest"],
        trigger_id=row["trigger_id"],
        started_at=row["started_at"],
        status=SeriesStatus(row["status"]),
        ended_at=row["ended_at"],
        ended_reason=row["ended_reason"],
    )


def _prompt(row: asyncpg.Record) -> Prompt:
    items = row["missing_items"]
    return Prompt(
        id=row["id"],
        series_id=row["series_id"],
        episode_id=row["episode_id"],
        rule_id=row["rule_id"],
        title=row["title"],
        assignee=row["assignee"],
        occurrence=row["occurrence"],
        issued_at=row["issued_at"],
        due_at=row["due_at"],
        missing_items=tuple(items) if items is not None else None,
        status=PromptStatus(row["status"]),
        overdue_at=row["overdue_at"],
        completed_at=row["completed_at"],
        completed_by=row["completed_by"],
        note=row["note"],
        ended_reason=row["ended_reason"],
    )
