"""The notifier's service layer: obligations from episode events, timer steps that
alert and escalate, acknowledgements, and the events that tell everyone.

Every function runs inside one transaction (a consumed event's, a fired timer's or an
HTTP request's) and writes its outgoing events to the outbox in it.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from prometheus_client import CollectorRegistry, Counter

from notifier.adapters import postgres
from notifier.domain.obligations import (
    check_notification,
    initial_steps,
    initials,
    is_snoozed,
    level_at,
    obligations_to_open,
)
from shared import timers, topics
from shared.alerting import AlertingContext
from shared.consumer import RawMessage
from shared.db import Conn
from shared.delivery import enqueue_alert
from shared.events import (
    CloudEvent,
    EpisodeClosed,
    EpisodeLocated,
    EpisodeReported,
    EpisodeUpdated,
    EventType,
    NotificationRecorded,
    ScreeningCompleted,
)
from shared.outbox import enqueue
from shared.policy import (
    Chain,
    ClockStart,
    EpisodeFacts,
    SatisfiedBy,
    Trigger,
    endangerment_flags,
    is_endangered,
    known,
    report_clock_times,
)

logger = logging.getLogger(__name__)


class ObligationEvent:
    OPENED = "mfc.obligation.opened"
    REMINDED = "mfc.obligation.reminded"
    ESCALATED = "mfc.obligation.escalated"
    SATISFIED = "mfc.obligation.satisfied"
    BREACHED = "mfc.obligation.breached"
    MOOT = "mfc.obligation.moot"
    WAITING = "mfc.obligation.waiting"


class AlertEvent:
    SENT = "mfc.alert.sent"
    ACKNOWLEDGED = "mfc.alert.acknowledged"
    FAILED = "mfc.alert.failed"


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.opened = Counter(
            "mfc_obligations_opened_total",
            "Obligations opened",
            ["kind", "jurisdiction"],
            registry=registry,
        )
        self.breaches = Counter(
            "mfc_obligation_breaches_total",
            "Obligations whose deadline passed unsatisfied",
            ["kind", "jurisdiction"],
            registry=registry,
        )
        self.satisfied = Counter(
            "mfc_obligations_satisfied_total",
            "Obligations satisfied",
            ["kind", "on_time"],
            registry=registry,
        )
        self.alerts = Counter(
            "mfc_alerts_raised_total", "Alerts raised", ["reason"], registry=registry
        )


async def emit(
    conn: Conn,
    ctx: AlertingContext,
    *,
    topic: str,
    type_: str,
    episode_id: UUID,
    data: dict[str, Any],
    now: datetime,
) -> None:
    await enqueue(
        conn,
        topic=topic,
        event=CloudEvent.new(
            type=type_, source=ctx.source, subject=str(episode_id), data=data, time=now
        ),
    )


# --------------------------------------------------------------------------- #
# Episode events
# --------------------------------------------------------------------------- #


async def apply_episode_event(
    conn: Conn,
    event: CloudEvent,
    _message: RawMessage,
    *,
    ctx: AlertingContext,
    metrics: NotifierMetrics,
) -> None:
    now = ctx.clock.now()
    if event.type == EventType.EPISODE_REPORTED:
        await _on_reported(conn, event.data_as(EpisodeReported), ctx, metrics, now)
    elif event.type == EventType.EPISODE_LOCATED:
        located = event.data_as(EpisodeLocated)
        await _on_later(
            conn,
            located.episode_id,
            Trigger.LOCATED,
            {ClockStart.LOCATED_AT: located.located_at},
            None,
            "located",
            ctx,
            metrics,
            now,
        )
    elif event.type == EventType.SCREENING_COMPLETED:
        screening = event.data_as(ScreeningCompleted)
        await _on_later(
            conn,
            screening.episode_id,
            Trigger.SCREENING,
            {ClockStart.SCREENING_COMPLETED_AT: screening.completed_at},
            screening.trafficking_indicated,
            None,
            ctx,
            metrics,
            now,
        )
    elif event.type == EventType.NOTIFICATION_RECORDED:
        await _on_notification(
            conn, event, event.data_as(NotificationRecorded), ctx, metrics, now
        )
    elif event.type == EventType.EPISODE_UPDATED:
        await _on_updated(
            conn, event.data_as(EpisodeUpdated), event.time or now, ctx, metrics, now
        )
    elif event.type == EventType.EPISODE_CLOSED:
        await _on_closed(conn, event.data_as(EpisodeClosed), ctx, now)


async def _on_reported(
    conn: Conn,
    report: EpisodeReported,
    ctx: AlertingContext,
    metrics: NotifierMetrics,
    now: datetime,
) -> None:
    facts = EpisodeFacts.of(report)
    times = report_clock_times(report)
    await postgres.save_episode(
        conn,
        episode_id=report.episode_id,
        county_code=report.county_code,
        child_initials=initials(report.child.first_name, report.child.last_name),
        caseworker=report.caseworker.model_dump(mode="json"),
        supervisor=report.supervisor.model_dump(mode="json"),
        facts={
            **facts.model_dump(mode="json"),
            "endangerment_flags": endangerment_flags(report.endangerments),
        },
        times={k.value: v.isoformat() if v else None for k, v in times.items()},
    )
    await _open(
        conn,
        report.episode_id,
        report.county_code,
        Trigger.REPORTED,
        facts,
        times,
        ctx,
        metrics,
        now,
    )


async def _on_updated(
    conn: Conn,
    update: EpisodeUpdated,
    learned_at: datetime,
    ctx: AlertingContext,
    metrics: NotifierMetrics,
    now: datetime,
) -> None:
    """New facts may make more rules apply (Florida: an endangerment found later asks
    for an immediate report; California: a child found to be an Indian child needs
    the tribe told); their clocks start when the agency learned them."""
    indian_child = update.child.indian_child if update.child else None
    if update.endangerments is None and indian_child is None:
        return
    episode = await postgres.lock_episode(conn, update.episode_id)
    if episode is None:
        logger.warning("an update for an episode the notifier never saw reported")
        return
    facts_data = dict(episode["facts"])
    if update.endangerments is not None:
        flags = {
            **facts_data.get("endangerment_flags", {}),
            **endangerment_flags(update.endangerments),
        }
        facts_data["endangerment_flags"] = flags
        # Rows from before flags were kept: an endangerment once known stays known.
        facts_data["endangered"] = is_endangered(flags) or (
            "endangerment_flags" not in episode["facts"] and facts_data["endangered"]
        )
    if indian_child is not None:
        facts_data["indian_child"] = known(indian_child)
    await postgres.update_episode(
        conn,
        update.episode_id,
        times=episode["times"],
        facts=facts_data,
        status=episode["status"],
    )
    if episode["status"] != "missing":
        return  # reporting duties for a child who is back are not opened
    times = {
        ClockStart(k): datetime.fromisoformat(v) if v else None
        for k, v in episode["times"].items()
    }
    await _open(
        conn,
        update.episode_id,
        episode["county_code"],
        Trigger.REPORTED,
        EpisodeFacts.model_validate(facts_data),
        times,
        ctx,
        metrics,
        now,
        learned_at=learned_at,
    )


async def _on_later(
    conn: Conn,
    episode_id: UUID,
    trigger: Trigger,
    new_times: dict[ClockStart, datetime],
    trafficking_indicated: bool | None,
    status: str | None,
    ctx: AlertingContext,
    metrics: NotifierMetrics,
    now: datetime,
) -> None:
    episode = await postgres.lock_episode(conn, episode_id)
    if episode is None:
        # Intake publishes `reported` first on the same partition, so this means the
        # report was never seen by us: nothing to attach deadlines to.
        logger.warning("%s for an episode the notifier never saw reported", trigger)
        return
    stored_times = {
        ClockStart(k): datetime.fromisoformat(v) if v else None
        for k, v in episode["times"].items()
    }
    stored_times.update(new_times)
    facts_data = dict(episode["facts"])
    if trafficking_indicated is not None:
        facts_data["trafficking_indicated"] = trafficking_indicated
    await postgres.update_episode(
        conn,
        episode_id,
        times={k.value: v.isoformat() if v else None for k, v in stored_times.items()},
        facts=facts_data,
        status=status or episode["status"],
    )
    await _open(
        conn,
        episode_id,
        episode["county_code"],
        trigger,
        EpisodeFacts.model_validate(facts_data),
        stored_times,
        ctx,
        metrics,
        now,
    )


async def _open(
    conn: Conn,
    episode_id: UUID,
    county_code: str,
    trigger: Trigger,
    facts: EpisodeFacts,
    times: dict[ClockStart, datetime | None],
    ctx: AlertingContext,
    metrics: NotifierMetrics,
    now: datetime,
    *,
    learned_at: datetime | None = None,
) -> None:
    """Open what the rules ask for; a rule already opened for the episode is not
    opened twice (one obligation per episode and kind)."""
    policy = ctx.policy
    jurisdiction = policy.jurisdiction_of(county_code)
    for draft in obligations_to_open(
        policy.obligations_for(county_code),
        trigger,
        facts,
        times,
        learned_at=learned_at,
    ):
        rule = draft.rule
        chain = policy.chain(rule.chain)
        obligation_id = uuid4()
        inserted = await postgres.insert_obligation(
            conn,
            id=obligation_id,
            episode_id=episode_id,
            county_code=county_code,
            jurisdiction=jurisdiction,
            kind=rule.id,
            title=rule.title,
            opened_at=now,
            clock_start=draft.clock_start,
            due_at=draft.due_at,
            policy_digest=policy.digest,
            rule=rule.model_dump(mode="json"),
            chain=chain.model_dump(mode="json"),
            snooze=policy.document.defaults.snooze,
            breach_repeat=policy.document.defaults.breach_repeat,
        )
        if not inserted:
            continue
        reminders = (
            rule.reminders
            if rule.reminders is not None
            else policy.document.defaults.reminders
        )
        steps = initial_steps(
            opened_at=now, due_at=draft.due_at, reminders=reminders, chain=chain
        )
        await timers.schedule_many(
            conn,
            [
                timers.Step(obligation_id, s.key, s.kind, s.fire_at, {"level": s.level})
                for s in steps
            ],
        )
        metrics.opened.labels(rule.id, jurisdiction).inc()
        await emit(
            conn,
            ctx,
            topic=topics.OBLIGATIONS,
            type_=ObligationEvent.OPENED,
            episode_id=episode_id,
            now=now,
            data={
                "obligation_id": str(obligation_id),
                "episode_id": str(episode_id),
                "county_code": county_code,
                "jurisdiction": jurisdiction,
                "kind": rule.id,
                "title": rule.title,
                "clock": rule.clock.value,
                "clock_start": draft.clock_start.isoformat(),
                "due_at": draft.due_at.isoformat(),
                "policy_digest": policy.digest,
                "opened_by": "update" if learned_at is not None else trigger.value,
                "source": rule.source,
                "report_items": rule.report_items,
            },
        )


async def _on_notification(
    conn: Conn,
    event: CloudEvent,
    notification: NotificationRecorded,
    ctx: AlertingContext,
    metrics: NotifierMetrics,
    now: datetime,
) -> None:
    episode = await postgres.lock_episode(conn, notification.episode_id)
    if episode is None:
        return
    times = episode["times"]
    for obligation in await postgres.open_obligations(conn, notification.episode_id):
        satisfied_by = SatisfiedBy.model_validate(obligation["rule"]["satisfied_by"])
        not_before_raw = times.get(satisfied_by.not_before.value)
        not_before = datetime.fromisoformat(not_before_raw) if not_before_raw else None
        outcome = check_notification(satisfied_by, notification, not_before=not_before)
        if outcome is None:
            continue
        base = {
            "obligation_id": str(obligation["id"]),
            "episode_id": str(notification.episode_id),
            "county_code": obligation["county_code"],
            "kind": obligation["kind"],
            "notification_event_id": event.id,
        }
        if not outcome.satisfied:
            await postgres.set_obligation(
                conn, obligation["id"], waiting_reason=outcome.waiting_reason
            )
            await emit(
                conn,
                ctx,
                topic=topics.OBLIGATIONS,
                type_=ObligationEvent.WAITING,
                episode_id=notification.episode_id,
                now=now,
                data={**base, "reason": outcome.waiting_reason},
            )
            continue
        on_time = notification.notified_at <= obligation["due_at"]
        await postgres.set_obligation(
            conn,
            obligation["id"],
            status="satisfied",
            satisfied_at=notification.notified_at,
            satisfied_by=event.id,
            reference_number=notification.reference_number,
            waiting_reason=None,
            closed_at=now,
        )
        await timers.cancel_pending(conn, obligation["id"], now)
        metrics.satisfied.labels(obligation["kind"], str(on_time).lower()).inc()
        await emit(
            conn,
            ctx,
            topic=topics.OBLIGATIONS,
            type_=ObligationEvent.SATISFIED,
            episode_id=notification.episode_id,
            now=now,
            data={
                **base,
                "clock_start": obligation["clock_start"].isoformat(),
                "due_at": obligation["due_at"].isoformat(),
                "satisfied_at": notification.notified_at.isoformat(),
                "on_time": on_time,
                "reference_number": notification.reference_number,
            },
        )


async def _on_closed(
    conn: Conn, closed: EpisodeClosed, ctx: AlertingContext, now: datetime
) -> None:
    episode = await postgres.lock_episode(conn, closed.episode_id)
    if episode is None:
        return
    await postgres.update_episode(
        conn,
        closed.episode_id,
        times=episode["times"],
        facts=episode["facts"],
        status="closed",
    )
    for obligation in await postgres.open_obligations(conn, closed.episode_id):
        reason = f"episode closed: {closed.reason}"
        await postgres.set_obligation(
            conn, obligation["id"], status="moot", closed_reason=reason, closed_at=now
        )
        await timers.cancel_pending(conn, obligation["id"], now)
        await emit(
            conn,
            ctx,
            topic=topics.OBLIGATIONS,
            type_=ObligationEvent.MOOT,
            episode_id=closed.episode_id,
            now=now,
            data={
                "obligation_id": str(obligation["id"]),
                "episode_id": str(closed.episode_id),
                "county_code": obligation["county_code"],
                "kind": obligation["kind"],
                "reason": reason,
                "was_breached": obligation["breached_at"] is not None,
                "due_at": obligation["due_at"].isoformat(),
            },
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
    metrics: NotifierMetrics,
) -> None:
    obligation = await postgres.lock_obligation(conn, timer.subject_id)
    if obligation is None or obligation["status"] != "open":
        return
    chain = Chain.model_validate(obligation["chain"])
    top = len(chain.levels) - 1
    first_breach = timer.step_key == "breach:0"
    if timer.kind == "escalate":
        level = int(timer.step_key.split(":")[1])
        reason = "opened" if level == 0 else "escalated"
    elif timer.kind == "remind":
        level = level_at(chain, obligation["opened_at"], now)
        reason = "reminded"
    else:
        level = top
        reason = "breached"
    snoozed_until = obligation["snoozed_until"]
    if not first_breach and is_snoozed(
        level, obligation["snoozed_level"], snoozed_until, now
    ):
        # Acknowledged: this level is quiet until the snooze ends, then alerting
        # resumes (acknowledged-and-forgotten is how on-call tools fail).
        await timers.postpone(conn, timer.id, snoozed_until)
        return
    if reason == "breached":
        repeat = int(timer.step_key.split(":")[1])
        await timers.schedule(
            conn,
            subject_id=obligation["id"],
            step_key=f"breach:{repeat + 1}",
            kind="breach",
            fire_at=now
            + (
                obligation["breach_repeat"]
                or ctx.policy.document.defaults.breach_repeat
            ),
        )
        if first_breach:
            await postgres.set_obligation(conn, obligation["id"], breached_at=now)
            metrics.breaches.labels(
                obligation["kind"], obligation["jurisdiction"]
            ).inc()
    alert_id = await _raise_alert(
        conn, obligation, chain, level, reason, timer, now, ctx, metrics
    )
    if reason != "opened" and (reason != "breached" or first_breach):
        event_type = {
            "escalated": ObligationEvent.ESCALATED,
            "reminded": ObligationEvent.REMINDED,
            "breached": ObligationEvent.BREACHED,
        }[reason]
        await emit(
            conn,
            ctx,
            topic=topics.OBLIGATIONS,
            type_=event_type,
            episode_id=obligation["episode_id"],
            now=now,
            data={
                "obligation_id": str(obligation["id"]),
                "episode_id": str(obligation["episode_id"]),
                "county_code": obligation["county_code"],
                "kind": obligation["kind"],
                "level": level,
                "level_name": chain.levels[level].name,
                "due_at": obligation["due_at"].isoformat(),
                "alert_id": str(alert_id) if alert_id else None,
            },
        )


async def _raise_alert(
    conn: Conn,
    obligation: asyncpg.Record,
    chain: Chain,
    level: int,
    reason: str,
    timer: timers.Timer,
    now: datetime,
    ctx: AlertingContext,
    metrics: NotifierMetrics,
) -> UUID | None:
    staff = {
        "caseworker": obligation["caseworker"],
        "supervisor": obligation["supervisor"],
    }
    recipients = ctx.policy.resolve(chain.levels[level].notify, staff, now)
    alert_id = uuid4()
    inserted = await postgres.insert_alert(
        conn,
        id=alert_id,
        dedupe_key=f"{obligation['id']}:{timer.step_key}",
        obligation_id=obligation["id"],
        episode_id=obligation["episode_id"],
        step_key=timer.step_key,
        level=level,
        level_name=chain.levels[level].name,
        reason=reason,
        scheduled_at=timer.fire_at,
        created_at=now,
        recipients=recipients,
    )
    if not inserted:
        return None
    metrics.alerts.labels(reason).inc()
    url = ctx.episode_url_template.format(episode_id=obligation["episode_id"])
    alert_url = ctx.alert_url_template.format(alert_id=alert_id)
    due = obligation["due_at"]
    state = "OVERDUE since" if reason == "breached" else "due"
    waiting = (
        f"\nStill open: {obligation['waiting_reason']}"
        if obligation["waiting_reason"]
        else ""
    )
    subject = f"[{reason.upper()}] {obligation['title']}: child {obligation['child_initials']}, {state} {due:%Y-%m-%d %H:%M} UTC"
    text = (
        f"{obligation['title']}\n"
        f"Child: {obligation['child_initials']}  Episode: {obligation['episode_id']}\n"
        f"{state.capitalize()} {due:%Y-%m-%d %H:%M} UTC ({reason}, level {level}: {chain.levels[level].name})"
        f"{waiting}\n"
        f"Episode: {url}\n"
        f"Open and acknowledge: {alert_url}\n"
        f"Only recording the notice itself closes this duty.\n"
    )
    webhook_payload = {
        "alert_id": str(alert_id),
        "episode_id": str(obligation["episode_id"]),
        "child": obligation["child_initials"],
        "county_code": obligation["county_code"],
        "obligation": {
            "id": str(obligation["id"]),
            "kind": obligation["kind"],
            "title": obligation["title"],
            "due_at": due.isoformat(),
            "waiting_reason": obligation["waiting_reason"],
        },
        "reason": reason,
        "step": timer.step_key,
        "level": level,
        "level_name": chain.levels[level].name,
        "recipients": [{"id": r["id"], "name": r["name"]} for r in recipients],
        "episode_url": url,
        "alert_url": alert_url,
        "subject": subject,
        "text": text,
    }
    await enqueue_alert(
        conn,
        alert_id=alert_id,
        episode_id=obligation["episode_id"],
        recipients=recipients,
        webhook_url=ctx.webhook_url,
        email_enabled=ctx.email_enabled,
        payload=webhook_payload,
        scheduled_at=timer.fire_at,
        now=now,
    )
    return alert_id


# --------------------------------------------------------------------------- #
# Deliveries and acknowledgements
# --------------------------------------------------------------------------- #


class AlertNotFoundError(Exception):
    pass


@dataclass(frozen=True)
class AckOutcome:
    alert_id: UUID
    acked_by: str
    acked_at: datetime
    snoozed_until: datetime | None
    acks: list[dict[str, Any]]


async def acknowledge(
    conn: Conn,
    alert_id: UUID,
    *,
    acked_by: str,
    note: str | None,
    ctx: AlertingContext,
    in_scope: Callable[[str], bool] = lambda _county: True,
) -> AckOutcome:
    """Record an ack (every responder's is kept) and quiet the obligation's alerts for
    the snooze period. An ack never satisfies the obligation. An alert of a county
    not ``in_scope`` of the caller is not found."""
    now = ctx.clock.now()
    alert = await postgres.get_alert(conn, alert_id)
    if alert is None:
        raise AlertNotFoundError(f"no alert {alert_id}")
    obligation = await postgres.lock_obligation(conn, alert["obligation_id"])
    assert obligation is not None
    if not in_scope(obligation["county_code"]):
        raise AlertNotFoundError(f"no alert {alert_id}")
    await postgres.insert_ack(
        conn, alert_id=alert_id, acked_by=acked_by, acked_at=now, note=note
    )
    snoozed_until = None
    if obligation["status"] == "open":
        snoozed_until = now + (
            obligation["snooze"] or ctx.policy.document.defaults.snooze
        )
        level = alert["level"]
        if is_snoozed(
            level, obligation["snoozed_level"], obligation["snoozed_until"], now
        ):
            level = max(level, obligation["snoozed_level"])
        await postgres.set_obligation(
            conn, obligation["id"], snoozed_until=snoozed_until, snoozed_level=level
        )
    await emit(
        conn,
        ctx,
        topic=topics.ALERTS,
        type_=AlertEvent.ACKNOWLEDGED,
        episode_id=alert["episode_id"],
        now=now,
        data={
            "alert_id": str(alert_id),
            "episode_id": str(alert["episode_id"]),
            "obligation_id": str(obligation["id"]),
            "acked_by": acked_by,
            "acked_at": now.isoformat(),
            "snoozed_until": snoozed_until.isoformat() if snoozed_until else None,
            "level": alert["level"],
        },
    )
    acks = [dict(r) for r in await postgres.acks_of(conn, alert_id)]
    return AckOutcome(alert_id, acked_by, now, snoozed_until, acks)
