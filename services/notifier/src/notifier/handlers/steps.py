"""Firing escalation steps: a batch of due steps in one transaction.

Load the obligations (locked), decide each step with the pure rules
(``notifier.domain.steps``), then save the alerts, their deliveries, the breaches
and the events of the whole batch at once: the same few statements whatever the
batch's size. Each timer row moves on to its obligation's following step in the
same transaction (the scheduler settles the outcomes returned here).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from notifier.domain import messages, steps
from notifier.domain.model import Obligation, StepAlert
from notifier.domain.wording import obligation_alert
from notifier.handlers.common import Deps, pending_of, timer_move
from notifier.ports import Notifier, PortFactory
from rules import resolve
from shared import timers
from shared.db import Conn
from shared.published import Outgoing


@dataclass(frozen=True)
class Decided:
    """One fired step: the obligation, the rules' answer and the alert to raise."""

    timer: timers.Timer
    obligation: Obligation
    firing: steps.Firing
    alert: StepAlert | None


def fire_batch(port_of: PortFactory, deps: Deps) -> timers.FireBatch:
    """The scheduler's firing of the notifier's steps, on the batch's connection."""

    async def fire(
        conn: Conn, batch: Sequence[timers.Timer], now: datetime
    ) -> dict[int, timers.Outcome]:
        return await fire_steps(port_of(conn), batch, now, deps)

    return fire


async def fire_steps(
    port: Notifier, batch: Sequence[timers.Timer], now: datetime, deps: Deps
) -> dict[int, timers.Outcome]:
    found = await port.lock_for_firing([t.subject_id for t in batch])
    covers = await port.covers_at(now) if found else {}
    decided = [
        decide(timer, obligation, now, deps, covers)
        for timer in batch
        if (obligation := found.get(timer.subject_id)) is not None
    ]
    raised = await save(port, decided, now)
    await port.emit([e for d in decided if (e := _event(d, raised, now, deps))])
    fired = [
        (d.obligation, d.firing, d.alert.alert if d.alert else None) for d in decided
    ]
    deps.metrics.count_fired(fired, raised)
    return outcomes(batch, found, decided)


def decide(
    timer: timers.Timer,
    obligation: Obligation,
    now: datetime,
    deps: Deps,
    covers: Mapping[str, str] | None = None,
) -> Decided:
    """The rules' answer for one step, and its alert (composed, not raised yet);
    ``covers``: the runtime on-call overrides in force now."""
    timing = obligation.timing(deps.defaults)
    firing = steps.fire(timing, pending_of(timer), obligation.snoozed(), now)
    if firing.level is None:
        return Decided(timer, obligation, firing, None)
    return Decided(
        timer,
        obligation,
        firing,
        _alert(timer, obligation, firing, now, deps, covers or {}),
    )


def _alert(
    timer: timers.Timer,
    obligation: Obligation,
    firing: steps.Firing,
    now: datetime,
    deps: Deps,
    covers: Mapping[str, str],
) -> StepAlert:
    """The alert of a step, to the people its level names now."""
    assert firing.level is not None
    ctx, level = deps.ctx, obligation.chain.levels[firing.level]
    people = resolve(ctx.policy, level.notify, obligation.staff, now, covers)
    alert_id = uuid4()
    alert = obligation_alert(
        obligation,
        alert_id=alert_id,
        step_key=timer.step_key,
        level=firing.level,
        reason=firing.reason,
        recipients=tuple(people),
        scheduled_at=timer.fire_at,
        episode_url=ctx.episode_url_template.format(episode_id=obligation.episode_id),
        alert_url=ctx.alert_url_template.format(alert_id=alert_id),
    )
    return StepAlert(alert, obligation.id, timer.step_key, firing.level, level.name)


async def save(port: Notifier, decided: Sequence[Decided], now: datetime) -> set[UUID]:
    """Alerts (each obligation and step once), their deliveries and the breaches;
    returns the ids of the alerts raised now."""
    alerts = [d.alert for d in decided if d.alert is not None]
    raised = await port.insert_alerts(alerts, now)
    await port.alert([a.alert for a in alerts if a.alert.id in raised], now)
    breached = [d.obligation.id for d in decided if d.firing.first_breach]
    await port.mark_breached(breached, now)
    return raised


def _event(d: Decided, raised: set[UUID], now: datetime, deps: Deps) -> Outgoing | None:
    """The step's event, naming its alert only if raised now (not raised before)."""
    alert_id = d.alert.alert.id if d.alert is not None else None
    said = messages.step(
        d.obligation, d.firing, alert_id if alert_id in raised else None
    )
    if said is None:
        return None
    event_type, data = said
    return deps.event(event_type, data, d.obligation.episode_id, now)


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
            result[timer.id] = timer_move(step)
        else:
            result[timer.id] = None
    return result
