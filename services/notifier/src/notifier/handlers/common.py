"""What the notifier's handlers share: their metrics and the step events."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter

from notifier.domain import steps
from notifier.domain.model import Obligation
from shared.alerting import AlertingContext
from shared.alerts import Alert
from shared.db import Conn
from shared.outbox import enqueue_many
from shared.published import (
    AlertAcknowledged,
    ObligationEvent,
    ObligationRef,
    ObligationStep,
    Outgoing,
    outgoing,
)

STEP_EVENTS = {
    steps.ESCALATED: ObligationEvent.ESCALATED,
    steps.REMINDED: ObligationEvent.REMINDED,
    steps.BREACHED: ObligationEvent.BREACHED,
}


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

    def count_fired(
        self,
        fired: Sequence[tuple[Obligation, steps.Firing, Alert | None]],
        raised: set[UUID],
    ) -> None:
        for obligation, firing, alert in fired:
            if firing.first_breach:
                self.breaches.labels(obligation.kind, obligation.jurisdiction).inc()
            if alert is not None and alert.id in raised:
                self.alerts.labels(firing.reason).inc()


def step_event(
    obligation: Obligation,
    firing: steps.Firing,
    alert: Alert | None,
    raised: set[UUID],
    ctx: AlertingContext,
    now: datetime,
) -> Outgoing | None:
    """``reminded`` / ``escalated`` / ``breached`` (once, at the deadline) for a step
    that fired; an alert not raised again (the step fired before) is named as none.
    The opening alert and the breach's repeats have no event of their own."""
    if (
        firing.level is None
        or firing.reason == steps.OPENED
        or (firing.reason == steps.BREACHED and not firing.first_breach)
    ):
        return None
    level = firing.level
    data = ObligationStep(
        obligation_id=obligation.id,
        episode_id=obligation.episode_id,
        county_code=obligation.county_code,
        kind=obligation.kind,
        level=level,
        level_name=obligation.chain.levels[level].name,
        due_at=obligation.due_at,
        alert_id=alert.id if alert is not None and alert.id in raised else None,
    )
    return outgoing(
        STEP_EVENTS[firing.reason],
        data,
        source=ctx.source,
        subject=obligation.episode_id,
        time=now,
    )


async def emit(
    conn: Conn,
    ctx: AlertingContext,
    event_type: str,
    data: ObligationRef | AlertAcknowledged,
    now: datetime,
) -> None:
    """One event, built from its published model, to the outbox."""
    event = outgoing(
        event_type, data, source=ctx.source, subject=data.episode_id, time=now
    )
    await enqueue_many(conn, [event])
