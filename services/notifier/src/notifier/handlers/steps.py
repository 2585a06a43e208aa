"""Firing escalation steps: a batch of due steps in one transaction.

Load the obligations (locked), decide each step with the pure rules
(``notifier.domain.steps``), then save the alerts, their deliveries, the breaches
and the events of the whole batch at once. Each timer row moves on to its
obligation's following step in the same transaction (``shared.timers``).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from notifier.adapters import postgres
from notifier.domain import steps
from notifier.domain.model import Obligation
from notifier.domain.wording import obligation_alert
from notifier.handlers.common import NotifierMetrics, step_event
from rules import resolve
from shared import timers
from shared.alerting import AlertingContext
from shared.alerts import Alert, Recipient, enqueue_alerts
from shared.db import Conn
from shared.outbox import enqueue_many


@dataclass(frozen=True)
class Decided:
    """One fired step: the obligation, the rules' answer and the alert to raise."""

    timer: timers.Timer
    obligation: Obligation
    firing: steps.Firing
    alert: Alert | None


async def fire_steps(
    conn: Conn,
    batch: Sequence[timers.Timer],
    now: datetime,
    *,
    ctx: AlertingContext,
    metrics: NotifierMetrics,
) -> dict[int, timers.Outcome]:
    found = await postgres.lock_for_firing(conn, [t.subject_id for t in batch])
    decided = [
        decide(timer, obligation, now, ctx)
        for timer in batch
        if (obligation := found.get(timer.subject_id)) is not None
    ]
    raised = await save(conn, decided, now, ctx)
    events = [
        step_event(d.obligation, d.firing, d.alert, raised, ctx, now) for d in decided
    ]
    await enqueue_many(conn, [e for e in events if e is not None])
    metrics.count_fired([(d.obligation, d.firing, d.alert) for d in decided], raised)
    return outcomes(batch, found, decided)


def decide(
    timer: timers.Timer, obligation: Obligation, now: datetime, ctx: AlertingContext
) -> Decided:
    """The rules' answer for one step, and its alert (composed, not raised yet)."""
    pending = steps.Pending.of(timer.step_key, timer.kind, timer.fire_at, timer.payload)
    timing = obligation.timing(ctx.policy.document.defaults)
    firing = steps.fire(timing, pending, obligation.snoozed(), now)
    if firing.level is None:
        return Decided(timer, obligation, firing, None)
    notify = obligation.chain.levels[firing.level].notify
    recipients = resolve(ctx.policy, notify, obligation.staff, now)
    alert_id = uuid4()
    alert = obligation_alert(
        obligation,
        alert_id=alert_id,
        step_key=timer.step_key,
        level=firing.level,
        reason=firing.reason,
        recipients=tuple(Recipient.of(r) for r in recipients),
        scheduled_at=timer.fire_at,
        episode_url=ctx.episode_url_template.format(episode_id=obligation.episode_id),
        alert_url=ctx.alert_url_template.format(alert_id=alert_id),
    )
    return Decided(timer, obligation, firing, alert)


async def save(
    conn: Conn, decided: Sequence[Decided], now: datetime, ctx: AlertingContext
) -> set[UUID]:
    """Alerts (each obligation and step once), their deliveries and the breaches;
    returns the ids of the alerts raised now."""
    alerts = [(d, d.alert) for d in decided if d.alert is not None]
    rows = [
        postgres.AlertRow.of(a, d.obligation.id, d.timer.step_key) for d, a in alerts
    ]
    raised = await postgres.insert_alerts(conn, rows, now)
    await enqueue_alerts(conn, [a for _, a in alerts if a.id in raised], ctx.route, now)
    breached = [d.obligation.id for d in decided if d.firing.first_breach]
    await postgres.mark_breached(conn, breached, now)
    return raised


def outcomes(
    batch: Sequence[timers.Timer],
    found: Mapping[UUID, Obligation | None],
    decided: Sequence[Decided],
) -> dict[int, timers.Outcome]:
    """Each timer moves on to its following step; a closed obligation's retires;
    one whose obligation was busy stays for the next round."""
    following = {d.timer.id: d.firing.following for d in decided}
    result: dict[int, timers.Outcome] = {}
    for timer in batch:
        if timer.subject_id not in found:
            result[timer.id] = timers.KEEP
        elif (step := following.get(timer.id)) is not None:
            result[timer.id] = timers.Move(
                step.key, step.kind, step.fire_at, step.payload()
            )
        else:
            result[timer.id] = None
    return result
