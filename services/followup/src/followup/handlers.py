"""The followup service layer: prompt series from episode events, occurrences issued
by durable timers, overdue escalation, completion, and the events that record it.

Timers and deliveries are the shared mechanisms the notifier uses too
(``shared.timers``, ``shared.delivery``).
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram

from followup.domain.prompts import ENDS, STARTS, occurrence_at, rules_starting
from shared import timers, topics
from shared.alerting import AlertingContext
from shared.consumer import RawMessage
from shared.db import Conn
from shared.delivery import enqueue_alert
from shared.events import (
    CloudEvent,
    EpisodeClosed,
    EpisodeReported,
    EpisodeUpdated,
    EventType,
)
from shared.outbox import enqueue
from shared.policy import PromptRule, PromptStart

logger = logging.getLogger(__name__)


class PromptEvent:
    ISSUED = "mfc.prompt.issued"
    COMPLETED = "mfc.prompt.completed"
    OVERDUE = "mfc.prompt.overdue"
    ENDED = "mfc.prompt.ended"


class FollowupMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.issued = Counter(
            "mfc_prompts_issued_total", "Prompts issued", ["kind"], registry=registry
        )
        self.overdue = Counter(
            "mfc_prompts_overdue_total",
            "Prompts not done in time",
            ["kind"],
            registry=registry,
        )
        self.completion = Histogram(
            "mfc_prompt_completion_seconds",
            "Time from issue to completion",
            ["kind"],
            buckets=(60, 600, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400),
            registry=registry,
        )


async def _emit(
    conn: Conn,
    ctx: AlertingContext,
    type_: str,
    episode_id: UUID,
    data: dict[str, Any],
    now: datetime,
) -> None:
    await enqueue(
        conn,
        topic=topics.PROMPTS,
        event=CloudEvent.new(
            type=type_, source=ctx.source, subject=str(episode_id), data=data, time=now
        ),
    )


def _prompt_data(prompt: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    data = {
        "prompt_id": str(prompt["id"]),
        "episode_id": str(prompt["episode_id"]),
        "kind": prompt["rule_id"],
        "title": prompt["title"],
        "occurrence": prompt["occurrence"],
        "assignee": prompt["assignee"],
        "issued_at": prompt["issued_at"].isoformat(),
        "due_at": prompt["due_at"].isoformat(),
    }
    if prompt.get("missing_items") is not None:
        data["missing_items"] = prompt["missing_items"]
    return data


# --------------------------------------------------------------------------- #
# Episode events
# --------------------------------------------------------------------------- #


async def apply_episode_event(
    conn: Conn,
    event: CloudEvent,
    _message: RawMessage,
    *,
    ctx: AlertingContext,
    metrics: FollowupMetrics,
) -> None:
    now = ctx.clock.now()
    if event.type == EventType.EPISODE_REPORTED:
        report = event.data_as(EpisodeReported)
        await conn.execute(
            "INSERT INTO episodes (episode_id, county_code, child_initials, caseworker, supervisor, completeness) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (episode_id) DO NOTHING",
            report.episode_id,
            report.county_code,
            f"{report.child.first_name[:1].upper()}.{report.child.last_name[:1].upper()}.",
            report.caseworker.model_dump(mode="json"),
            report.supervisor.model_dump(mode="json"),
            report.completeness,
        )
        await _start(
            conn,
            report.episode_id,
            PromptStart.REPORTED,
            event.id,
            ctx,
            now,
            trigger_unique=False,
        )
        if report.completeness:
            await _start(
                conn,
                report.episode_id,
                PromptStart.INCOMPLETE,
                event.id,
                ctx,
                now,
                trigger_unique=False,
            )
        return
    episode_id = UUID(str(event.data.get("episode_id")))
    episode = await conn.fetchrow(
        "SELECT * FROM episodes WHERE episode_id = $1 FOR UPDATE", episode_id
    )
    if episode is None:
        logger.warning("%s for an episode followup never saw reported", event.type)
        return
    if event.type == EventType.EPISODE_UPDATED:
        update = event.data_as(EpisodeUpdated)
        await conn.execute(
            "UPDATE episodes SET completeness = $2 WHERE episode_id = $1",
            episode_id,
            update.completeness,
        )
        if not update.completeness:
            await _end(
                conn,
                episode_id,
                (PromptStart.INCOMPLETE,),
                "the report items were provided",
                ctx,
                now,
            )
        elif episode["status"] == "missing" and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM series WHERE episode_id = $1 "
            "AND starts_on = $2 AND status = 'active')",
            episode_id,
            PromptStart.INCOMPLETE.value,
        ):
            # An item is missing again (e.g. a photo withdrawn): prompt anew,
            # keyed by this update so the ended series does not block it.
            await _start(
                conn,
                episode_id,
                PromptStart.INCOMPLETE,
                event.id,
                ctx,
                now,
                trigger_unique=True,
            )
        if episode["status"] == "missing":
            await _start(
                conn,
                episode_id,
                PromptStart.NEW_INFORMATION,
                event.id,
                ctx,
                now,
                trigger_unique=True,
            )
    elif event.type == EventType.EPISODE_LOCATED:
        await conn.execute(
            "UPDATE episodes SET status = 'located' WHERE episode_id = $1", episode_id
        )
        await _end(
            conn, episode_id, ENDS[event.type], "the child was located", ctx, now
        )
        for start in STARTS[event.type]:
            await _start(
                conn, episode_id, start, event.id, ctx, now, trigger_unique=False
            )
    elif event.type == EventType.SCREENING_COMPLETED:
        await _complete_by_event(conn, episode_id, event, ctx, metrics, now)
    elif event.type == EventType.EPISODE_CLOSED:
        closed = event.data_as(EpisodeClosed)
        await conn.execute(
            "UPDATE episodes SET status = 'closed' WHERE episode_id = $1", episode_id
        )
        await _end(
            conn,
            episode_id,
            ENDS[event.type],
            f"episode closed: {closed.reason}",
            ctx,
            now,
        )


async def _start(
    conn: Conn,
    episode_id: UUID,
    start: PromptStart,
    event_id: str,
    ctx: AlertingContext,
    now: datetime,
    *,
    trigger_unique: bool,
) -> None:
    county = await conn.fetchval(
        "SELECT county_code FROM episodes WHERE episode_id = $1", episode_id
    )
    for rule in rules_starting(ctx.policy.prompts_for(county), start):
        series_id = uuid4()
        started = await conn.fetchval(
            "INSERT INTO series (id, episode_id, rule_id, starts_on, rule, policy_digest, trigger_id, started_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING true",
            series_id,
            episode_id,
            rule.id,
            start.value,
            rule.model_dump(mode="json"),
            ctx.policy.digest,
            event_id if trigger_unique else start.value,
            now,
        )
        first = occurrence_at(rule, now, 0)
        if started and first is not None:
            await timers.schedule(
                conn,
                subject_id=series_id,
                step_key="issue:0",
                kind="issue",
                fire_at=first,
            )


async def _end(
    conn: Conn,
    episode_id: UUID,
    kinds: tuple[PromptStart, ...],
    reason: str,
    ctx: AlertingContext,
    now: datetime,
) -> None:
    ended = await conn.fetch(
        "UPDATE series SET status = 'ended', ended_at = $3, ended_reason = $4 "
        "WHERE episode_id = $1 AND status = 'active' AND starts_on = ANY($2::text[]) RETURNING id",
        episode_id,
        [k.value for k in kinds],
        now,
        reason,
    )
    for row in ended:
        await timers.cancel_pending(conn, row["id"], now)
        prompts = await conn.fetch(
            "UPDATE prompts SET status = 'ended', ended_reason = $2 "
            "WHERE series_id = $1 AND status = 'open' RETURNING *",
            row["id"],
            reason,
        )
        for prompt in prompts:
            await timers.cancel_pending(conn, prompt["id"], now)
            await _emit(
                conn,
                ctx,
                PromptEvent.ENDED,
                episode_id,
                {**_prompt_data(prompt), "reason": reason},
                now,
            )


async def _complete_by_event(
    conn: Conn,
    episode_id: UUID,
    event: CloudEvent,
    ctx: AlertingContext,
    metrics: FollowupMetrics,
    now: datetime,
) -> None:
    prompts = await conn.fetch(
        "SELECT p.* FROM prompts p JOIN series s ON s.id = p.series_id "
        "WHERE p.episode_id = $1 AND p.status = 'open' AND s.rule->>'completed_by_event' = $2 FOR UPDATE OF p",
        episode_id,
        event.type,
    )
    for prompt in prompts:
        await _mark_completed(
            conn, prompt, f"event:{event.id}", None, ctx, metrics, now
        )
    # A screening before its prompt was issued settles that prompt too.
    await conn.execute(
        "UPDATE series SET status = 'ended', ended_at = $3, ended_reason = 'done before it was due' "
        "WHERE episode_id = $1 AND status = 'active' AND rule->>'completed_by_event' = $2 "
        "AND NOT EXISTS (SELECT 1 FROM prompts p WHERE p.series_id = series.id)",
        episode_id,
        event.type,
        now,
    )


# --------------------------------------------------------------------------- #
# Timer steps
# --------------------------------------------------------------------------- #


async def fire_step(
    conn: Conn,
    timer: timers.Timer,
    now: datetime,
    *,
    ctx: AlertingContext,
    metrics: FollowupMetrics,
) -> None:
    if timer.kind == "issue":
        await _issue(conn, timer, now, ctx, metrics)
    elif timer.kind == "overdue":
        await _overdue(conn, timer, now, ctx, metrics)


async def _issue(
    conn: Conn,
    timer: timers.Timer,
    now: datetime,
    ctx: AlertingContext,
    metrics: FollowupMetrics,
) -> None:
    series = await conn.fetchrow(
        "SELECT s.*, e.child_initials, e.caseworker, e.supervisor, e.completeness "
        "FROM series s JOIN episodes e USING (episode_id) WHERE s.id = $1 FOR UPDATE OF s",
        timer.subject_id,
    )
    if series is None or series["status"] != "active":
        return
    rule = PromptRule.model_validate(series["rule"])
    n = int(timer.step_key.split(":")[1])
    prompt = {
        "id": uuid4(),
        "series_id": series["id"],
        "episode_id": series["episode_id"],
        "rule_id": rule.id,
        "title": rule.title,
        "assignee": rule.assignee,
        "occurrence": n,
        "issued_at": timer.fire_at,
        "due_at": timer.fire_at + rule.due,
    }
    # A prompt to provide missing report items names them, as they stand now.
    if series["starts_on"] == PromptStart.INCOMPLETE.value:
        prompt["missing_items"] = list(series["completeness"])
    inserted = await conn.fetchval(
        "INSERT INTO prompts (id, series_id, episode_id, rule_id, title, assignee, "
        "occurrence, issued_at, due_at, missing_items) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT DO NOTHING RETURNING true",
        prompt["id"],
        prompt["series_id"],
        prompt["episode_id"],
        prompt["rule_id"],
        prompt["title"],
        prompt["assignee"],
        prompt["occurrence"],
        prompt["issued_at"],
        prompt["due_at"],
        prompt.get("missing_items"),
    )
    if not inserted:
        return
    await timers.schedule(
        conn,
        subject_id=prompt["id"],
        step_key="overdue",
        kind="overdue",
        fire_at=prompt["due_at"],
    )
    following = occurrence_at(rule, series["started_at"], n + 1)
    if following is not None:
        await timers.schedule(
            conn,
            subject_id=series["id"],
            step_key=f"issue:{n + 1}",
            kind="issue",
            fire_at=following,
        )
    metrics.issued.labels(rule.id).inc()
    await _emit(
        conn, ctx, PromptEvent.ISSUED, series["episode_id"], _prompt_data(prompt), now
    )
    staff = {"caseworker": series["caseworker"], "supervisor": series["supervisor"]}
    people = ctx.policy.resolve([rule.assignee], staff, now)
    await _notify(conn, ctx, series, prompt, people, "prompt", timer.fire_at, now)


async def _overdue(
    conn: Conn,
    timer: timers.Timer,
    now: datetime,
    ctx: AlertingContext,
    metrics: FollowupMetrics,
) -> None:
    prompt = await conn.fetchrow(
        "SELECT p.*, e.child_initials, e.caseworker, e.supervisor, s.rule FROM prompts p "
        "JOIN episodes e USING (episode_id) JOIN series s ON s.id = p.series_id WHERE p.id = $1 FOR UPDATE OF p",
        timer.subject_id,
    )
    if prompt is None or prompt["status"] != "open":
        return
    await conn.execute(
        "UPDATE prompts SET overdue_at = $2 WHERE id = $1", prompt["id"], now
    )
    rule = PromptRule.model_validate(prompt["rule"])
    metrics.overdue.labels(rule.id).inc()
    await _emit(
        conn,
        ctx,
        PromptEvent.OVERDUE,
        prompt["episode_id"],
        {**_prompt_data(prompt), "escalated_to": rule.escalate_to},
        now,
    )
    staff = {"caseworker": prompt["caseworker"], "supervisor": prompt["supervisor"]}
    people = ctx.policy.resolve([rule.escalate_to], staff, now)
    await _notify(
        conn, ctx, prompt, dict(prompt), people, "overdue", timer.fire_at, now
    )


async def _notify(
    conn: Conn,
    ctx: AlertingContext,
    episode: asyncpg.Record,
    prompt: dict[str, Any],
    people: list[dict[str, Any]],
    reason: str,
    scheduled_at: datetime,
    now: datetime,
) -> None:
    alert_id = uuid4()
    url = ctx.episode_url_template.format(episode_id=prompt["episode_id"])
    subject = f"[{reason.upper()}] {prompt['title']}: child {episode['child_initials']}, due {prompt['due_at']:%Y-%m-%d %H:%M} UTC"
    missing = prompt.get("missing_items")
    text = (
        f"{prompt['title']}\nChild: {episode['child_initials']}  Episode: {prompt['episode_id']}\n"
        + (f"Still missing: {', '.join(missing)}\n" if missing else "")
        + f"Due {prompt['due_at']:%Y-%m-%d %H:%M} UTC\nEpisode: {url}\n"
        "Mark it done on the episode page.\n"
    )
    payload = {
        "alert_id": str(alert_id),
        "episode_id": str(prompt["episode_id"]),
        "child": episode["child_initials"],
        "prompt": {
            "id": str(prompt["id"]),
            "kind": prompt["rule_id"],
            "title": prompt["title"],
            "occurrence": prompt["occurrence"],
            "due_at": prompt["due_at"].isoformat(),
            "missing_items": missing,
        },
        "reason": reason,
        "recipients": [{"id": p["id"], "name": p["name"]} for p in people],
        "episode_url": url,
        "subject": subject,
        "text": text,
    }
    await enqueue_alert(
        conn,
        alert_id=alert_id,
        episode_id=prompt["episode_id"],
        recipients=people,
        webhook_url=ctx.webhook_url,
        email_enabled=ctx.email_enabled,
        payload=payload,
        scheduled_at=scheduled_at,
        now=now,
    )


# --------------------------------------------------------------------------- #
# Completion
# --------------------------------------------------------------------------- #


class PromptNotFoundError(Exception):
    pass


class PromptNotOpenError(Exception):
    pass


async def complete_prompt(
    conn: Conn,
    prompt_id: UUID,
    *,
    completed_by: str,
    note: str | None,
    ctx: AlertingContext,
    metrics: FollowupMetrics,
    in_scope: Callable[[str], bool] = lambda _county: True,
) -> dict[str, Any]:
    """Complete one occurrence; a recurring series issues its next on schedule. A
    prompt of a county not ``in_scope`` of the caller is not found."""
    now = ctx.clock.now()
    prompt = await conn.fetchrow(
        "SELECT p.*, e.county_code FROM prompts p "
        "JOIN episodes e ON e.episode_id = p.episode_id "
        "WHERE p.id = $1 FOR UPDATE OF p",
        prompt_id,
    )
    if prompt is None or not in_scope(prompt["county_code"]):
        raise PromptNotFoundError(f"no prompt {prompt_id}")
    if prompt["status"] != "open":
        raise PromptNotOpenError(f"the prompt is {prompt['status']}")
    await _mark_completed(conn, prompt, completed_by, note, ctx, metrics, now)
    row = await conn.fetchrow("SELECT * FROM prompts WHERE id = $1", prompt_id)
    assert row is not None
    return dict(row)


async def _mark_completed(
    conn: Conn,
    prompt: asyncpg.Record,
    completed_by: str,
    note: str | None,
    ctx: AlertingContext,
    metrics: FollowupMetrics,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE prompts SET status = 'completed', completed_at = $2, completed_by = $3, note = $4 WHERE id = $1",
        prompt["id"],
        now,
        completed_by,
        note,
    )
    await timers.cancel_pending(conn, prompt["id"], now)
    metrics.completion.labels(prompt["rule_id"]).observe(
        max((now - prompt["issued_at"]).total_seconds(), 0.0)
    )
    await _emit(
        conn,
        ctx,
        PromptEvent.COMPLETED,
        prompt["episode_id"],
        {
            **_prompt_data(prompt),
            "completed_by": completed_by,
            "completed_at": now.isoformat(),
            "on_time": now <= prompt["due_at"],
        },
        now,
    )
