"""The data of the notifier's published events (``shared.published``), from the
domain's values. Which step says something, and what, is decided here."""

from datetime import datetime
from typing import Any
from uuid import UUID

from notifier.domain import steps
from notifier.domain.acks import Snoozing
from notifier.domain.model import AlertRef, NewObligation, Obligation, OpenObligation
from notifier.domain.obligations import NoticeOutcome
from shared.events import NotificationRecordedData
from shared.published import (
    AlertAcknowledged,
    ObligationEvent,
    ObligationMoot,
    ObligationOpened,
    ObligationSatisfied,
    ObligationStep,
    ObligationWaiting,
)

STEP_EVENTS = {
    steps.ESCALATED: ObligationEvent.ESCALATED,
    steps.REMINDED: ObligationEvent.REMINDED,
    steps.BREACHED: ObligationEvent.BREACHED,
}


def opened(new: NewObligation) -> ObligationOpened:
    rule = new.rule
    return ObligationOpened(
        obligation_id=new.id,
        episode_id=new.episode_id,
        county_code=new.county_code,
        jurisdiction=new.jurisdiction,
        kind=rule.id,
        title=rule.title,
        clock=rule.clock.value,
        clock_start=new.clock_start,
        due_at=new.due_at,
        policy_digest=new.policy_digest,
        opened_by=new.opened_by,
        source=rule.source,
        report_items=rule.report_items,
    )


def waiting(outcome: NoticeOutcome, notification_event_id: str) -> ObligationWaiting:
    assert outcome.waiting_reason is not None
    return ObligationWaiting(
        **_ref(outcome.obligation),
        reason=outcome.waiting_reason,
        notification_event_id=notification_event_id,
    )


def satisfied(
    outcome: NoticeOutcome,
    notice: NotificationRecordedData,
    notification_event_id: str,
) -> ObligationSatisfied:
    return ObligationSatisfied(
        **_ref(outcome.obligation),
        clock_start=outcome.obligation.clock_start,
        due_at=outcome.obligation.due_at,
        satisfied_at=notice.notified_at,
        on_time=outcome.on_time,
        reference_number=notice.reference_number,
        notification_event_id=notification_event_id,
    )


def moot(obligation: OpenObligation, reason: str) -> ObligationMoot:
    return ObligationMoot(
        **_ref(obligation),
        reason=reason,
        was_breached=obligation.breached,
        due_at=obligation.due_at,
    )


def step(
    obligation: Obligation, firing: steps.Firing, alert_id: UUID | None
) -> tuple[ObligationEvent, ObligationStep] | None:
    """``reminded`` / ``escalated`` / ``breached`` (once, at the deadline) for a step
    that fired, naming the alert raised (none when the step was quiet or its alert
    was raised before). The opening alert and the breach's repeats say nothing."""
    if (
        firing.level is None
        or firing.reason == steps.OPENED
        or (firing.reason == steps.BREACHED and not firing.first_breach)
    ):
        return None
    data = ObligationStep(
        **_ref(obligation),
        level=firing.level,
        level_name=obligation.chain.levels[firing.level].name,
        due_at=obligation.due_at,
        alert_id=alert_id,
    )
    return STEP_EVENTS[firing.reason], data


def acknowledged(
    alert: AlertRef, *, acked_by: str, at: datetime, snoozing: Snoozing | None
) -> AlertAcknowledged:
    return AlertAcknowledged(
        alert_id=alert.id,
        episode_id=alert.episode_id,
        obligation_id=alert.obligation_id,
        acked_by=acked_by,
        acked_at=at,
        snoozed_until=snoozing.until if snoozing is not None else None,
        level=alert.level,
    )


def _ref(obligation: OpenObligation | Obligation) -> dict[str, Any]:
    """Which obligation an event is about (``ObligationRef``)."""
    return {
        "obligation_id": obligation.id,
        "episode_id": obligation.episode_id,
        "county_code": obligation.county_code,
        "kind": obligation.kind,
    }
