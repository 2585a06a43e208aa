"""Obligations from episode events: which duties open (and when they are due),
which a recorded notice satisfies, and which closing the episode makes moot.

Every function runs in the consumed event's transaction and writes its outgoing
events to the outbox in it.
"""

import logging
from datetime import datetime
from uuid import UUID, uuid4

from notifier.adapters import postgres
from notifier.domain import steps
from notifier.domain.obligations import check_notification, initials
from notifier.handlers.common import NotifierMetrics, emit
from rules import (
    EpisodeFacts,
    endangerment_flags,
    is_endangered,
    known,
    obligations_to_open,
    report_clock_times,
)
from shared import timers
from shared.alerting import AlertingContext
from shared.consumer import RawMessage
from shared.db import Conn
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
from shared.policy import ClockStart, SatisfiedBy, Trigger
from shared.published import (
    ObligationEvent,
    ObligationMoot,
    ObligationOpened,
    ObligationSatisfied,
    ObligationWaiting,
)

logger = logging.getLogger(__name__)


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
        defaults = policy.document.defaults
        reminders = tuple(
            rule.reminders if rule.reminders is not None else defaults.reminders
        )
        breach_repeat = defaults.breach_repeat
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
            snooze=defaults.snooze,
            breach_repeat=breach_repeat,
            reminders=list(reminders),
        )
        if not inserted:
            continue
        first = steps.first_step(
            steps.Timing(now, draft.due_at, chain, reminders, breach_repeat)
        )
        await timers.schedule(
            conn,
            subject_id=obligation_id,
            step_key=first.key,
            kind=first.kind,
            fire_at=first.fire_at,
            payload=first.payload(),
        )
        metrics.opened.labels(rule.id, jurisdiction).inc()
        opened = ObligationOpened(
            obligation_id=obligation_id,
            episode_id=episode_id,
            county_code=county_code,
            jurisdiction=jurisdiction,
            kind=rule.id,
            title=rule.title,
            clock=rule.clock.value,
            clock_start=draft.clock_start,
            due_at=draft.due_at,
            policy_digest=policy.digest,
            opened_by="update" if learned_at is not None else trigger.value,
            source=rule.source,
            report_items=rule.report_items,
        )
        await emit(conn, ctx, ObligationEvent.OPENED, opened, now)


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
        ref = {
            "obligation_id": obligation["id"],
            "episode_id": notification.episode_id,
            "county_code": obligation["county_code"],
            "kind": obligation["kind"],
        }
        if not outcome.satisfied:
            await postgres.set_obligation(
                conn, obligation["id"], waiting_reason=outcome.waiting_reason
            )
            assert outcome.waiting_reason is not None
            waiting = ObligationWaiting(
                **ref, reason=outcome.waiting_reason, notification_event_id=event.id
            )
            await emit(conn, ctx, ObligationEvent.WAITING, waiting, now)
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
        satisfied = ObligationSatisfied(
            **ref,
            clock_start=obligation["clock_start"],
            due_at=obligation["due_at"],
            satisfied_at=notification.notified_at,
            on_time=on_time,
            reference_number=notification.reference_number,
            notification_event_id=event.id,
        )
        await emit(conn, ctx, ObligationEvent.SATISFIED, satisfied, now)


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
        moot = ObligationMoot(
            obligation_id=obligation["id"],
            episode_id=closed.episode_id,
            county_code=obligation["county_code"],
            kind=obligation["kind"],
            reason=reason,
            was_breached=obligation["breached_at"] is not None,
            due_at=obligation["due_at"],
        )
        await emit(conn, ctx, ObligationEvent.MOOT, moot, now)
