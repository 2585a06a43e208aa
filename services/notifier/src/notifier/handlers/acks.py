"""Acknowledgements: a responder takes an alert, and its level falls quiet for the
snooze; the end of the snooze alerts again if the duty is still undone."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from notifier.domain import acks as decide
from notifier.domain import messages
from notifier.domain.model import Ack, AlertRef, Obligation
from notifier.handlers.common import Deps, pending_of, timer_move
from notifier.ports import Notifier
from shared.published import AlertEvent


class AlertNotFoundError(Exception):
    pass


@dataclass(frozen=True)
class AckOutcome:
    alert_id: UUID
    acked_by: str
    acked_at: datetime
    snoozed_until: datetime | None
    acks: list[Ack]
    """Every acknowledgement of the alert, in order."""


async def acknowledge(
    port: Notifier,
    alert_id: UUID,
    *,
    acked_by: str,
    note: str | None,
    deps: Deps,
    in_scope: Callable[[str], bool] = lambda _county: True,
) -> AckOutcome:
    """Record an ack (every responder's is kept) and quiet the obligation's alerts for
    the snooze period; an ack never satisfies the obligation. Raises
    ``AlertNotFoundError``: no such alert, or of a county not ``in_scope``."""
    now = deps.now()
    alert, obligation = await _lock(port, alert_id, in_scope)
    await port.add_ack(alert_id, Ack(acked_by, now, note))
    snoozing = decide.snooze(obligation, alert.level, defaults=deps.defaults, now=now)
    if snoozing is not None:
        await _snooze(port, obligation, snoozing, deps)
    data = messages.acknowledged(alert, acked_by=acked_by, at=now, snoozing=snoozing)
    await port.emit([deps.event(AlertEvent.ACKNOWLEDGED, data, alert.episode_id, now)])
    acks = await port.acks_of(alert_id)
    return AckOutcome(alert_id, acked_by, now, data.snoozed_until, acks)


async def _lock(
    port: Notifier, alert_id: UUID, in_scope: Callable[[str], bool]
) -> tuple[AlertRef, Obligation]:
    alert = await port.get_alert(alert_id)
    obligation = await port.lock_obligation(alert.obligation_id) if alert else None
    if alert is None or obligation is None or not in_scope(obligation.county_code):
        raise AlertNotFoundError(f"no alert {alert_id}")
    return alert, obligation


async def _snooze(
    port: Notifier, obligation: Obligation, snoozing: decide.Snoozing, deps: Deps
) -> None:
    """Quiet the obligation, and move its pending step so that the end of the
    snooze re-alerts."""
    await port.snooze(obligation.id, until=snoozing.until, level=snoozing.level)
    timer = await port.pending_step(obligation.id)
    if timer is None:
        return
    pending = pending_of(timer)
    following = decide.resume(obligation, pending, snoozing, defaults=deps.defaults)
    if following is not None:
        await port.move_step(timer.id, timer_move(following))
