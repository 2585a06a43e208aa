"""Obligations from episode events: load the episode, decide with
``notifier.domain.obligations`` which duties open (and when they are due), which a
recorded notice satisfies and which closing the episode makes moot; save, schedule
each new duty's first step, emit. Each runs in the consumed event's transaction."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from uuid import UUID

from notifier.domain import messages, steps
from notifier.domain import obligations as decide
from notifier.domain.model import EpisodeRecord, EpisodeStatus
from notifier.domain.obligations import NoticeOutcome
from notifier.handlers.common import Deps, lock_episode, timer_step
from notifier.ports import Notifier
from shared.consumer import in_runs
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
from shared.policy import Trigger
from shared.published import ObligationEvent, Outgoing


async def apply_episode_events(
    port: Notifier, events: Sequence[CloudEvent], deps: Deps
) -> None:
    """A consumed batch's events, in order. Reports next to each other are recorded
    together, a statement per table for all of them: at load most of a batch is
    reports, of different episodes (a report is its episode's first event)."""
    await in_runs(
        events,
        EventType.EPISODE_REPORTED,
        partial(record_reports, port, deps=deps),
        partial(apply_episode_event, port, deps=deps),
    )


async def apply_episode_event(port: Notifier, event: CloudEvent, deps: Deps) -> None:
    """One canonical episode event; types the notifier does not follow are ignored."""
    handler = _BY_TYPE.get(event.type)
    if handler is not None:
        await handler(port, event, deps)


async def record_report(port: Notifier, event: CloudEvent, deps: Deps) -> None:
    await record_reports(port, [event], deps)


async def record_reports(
    port: Notifier, events: Sequence[CloudEvent], deps: Deps
) -> None:
    episodes = [decide.reported_episode(e.data_as(EpisodeReported)) for e in events]
    await port.add_episodes(episodes)  # a report seen before is kept as it was
    await open_obligations(port, episodes, Trigger.REPORTED, deps)


async def record_located(port: Notifier, event: CloudEvent, deps: Deps) -> None:
    located = event.data_as(EpisodeLocated)
    change = partial(decide.on_located, located=located)
    await _record_later(port, located.episode_id, Trigger.LOCATED, change, deps)


async def record_screening(port: Notifier, event: CloudEvent, deps: Deps) -> None:
    screening = event.data_as(ScreeningCompleted)
    change = partial(decide.on_screening, screening=screening)
    await _record_later(port, screening.episode_id, Trigger.SCREENING, change, deps)


async def _record_later(
    port: Notifier,
    episode_id: UUID,
    trigger: Trigger,
    change: Callable[[EpisodeRecord], EpisodeRecord],
    deps: Deps,
) -> None:
    """An event after the report: change the episode, open what it triggers."""
    known = await lock_episode(port, episode_id, warn=trigger)
    if known is None:
        return
    episode = change(known)
    await port.save_episode(episode)
    await open_obligations(port, [episode], trigger, deps)


async def apply_update(port: Notifier, event: CloudEvent, deps: Deps) -> None:
    """New facts may make more rules apply (Florida: an endangerment found later asks
    for an immediate report; California: a child found to be an Indian child needs
    the tribe told); their clocks start when the agency learned them."""
    update = event.data_as(EpisodeUpdated)
    if not decide.changes_facts(update):
        return
    learned_at = event.time or deps.now()
    known = await lock_episode(port, update.episode_id, warn="an update")
    if known is None:
        return
    episode = replace(known, facts=decide.learn(known.facts, update))
    await port.save_episode(episode)
    if episode.status is EpisodeStatus.MISSING:  # not for a child who is back
        await open_obligations(
            port, [episode], Trigger.REPORTED, deps, learned_at=learned_at
        )


async def open_obligations(
    port: Notifier,
    episodes: Sequence[EpisodeRecord],
    trigger: Trigger,
    deps: Deps,
    *,
    learned_at: datetime | None = None,
) -> None:
    """Open what the rules ask for, each with its first step scheduled; a rule
    already opened for an episode is not opened twice."""
    now = deps.now()
    policy = deps.ctx.policy
    drafts = [
        draft
        for episode in episodes
        for draft in decide.to_open(
            policy, episode, trigger, now=now, learned_at=learned_at
        )
    ]
    added = await port.add_obligations(drafts)
    opened = [new for new in drafts if new.id in added]
    await port.schedule(
        [timer_step(new.id, steps.first_step(new.timing())) for new in opened]
    )
    for new in opened:
        deps.metrics.opened.labels(new.rule.id, new.jurisdiction).inc()
    await port.emit(
        [
            deps.event(
                ObligationEvent.OPENED, messages.opened(new), new.episode_id, now
            )
            for new in opened
        ]
    )


async def record_notice(port: Notifier, event: CloudEvent, deps: Deps) -> None:
    """A notice satisfies the open duties it answers; one lacking what the
    jurisdiction requires leaves its duty open, waiting, with the reason."""
    notice = event.data_as(NotificationRecorded)
    episode = await port.lock_episode(notice.episode_id)
    if episode is None:
        return
    now = deps.now()
    open_ = await port.lock_open_obligations(episode.id)
    outcomes = decide.on_notice(open_, notice, episode.times, notice.missing_items)
    events = [await _apply_notice(port, o, event, deps, now) for o in outcomes]
    await port.cancel([o.obligation.id for o in outcomes if o.satisfied], now)
    await port.emit(events)


async def _apply_notice(
    port: Notifier,
    outcome: NoticeOutcome,
    event: CloudEvent,
    deps: Deps,
    now: datetime,
) -> Outgoing:
    obligation, notice = outcome.obligation, event.data_as(NotificationRecorded)
    if outcome.waiting_reason is not None:
        await port.set_waiting(obligation.id, outcome.waiting_reason)
        waiting = messages.waiting(outcome, event.id)
        return deps.event(ObligationEvent.WAITING, waiting, notice.episode_id, now)
    await port.satisfy(
        obligation.id,
        at=notice.notified_at,
        by=event.id,
        reference_number=notice.reference_number,
        now=now,
    )
    deps.metrics.satisfied.labels(obligation.kind, str(outcome.on_time).lower()).inc()
    satisfied = messages.satisfied(outcome, notice, event.id)
    return deps.event(ObligationEvent.SATISFIED, satisfied, notice.episode_id, now)


async def apply_closed(port: Notifier, event: CloudEvent, deps: Deps) -> None:
    """Closing the episode makes its open duties moot and retires their steps."""
    closed = event.data_as(EpisodeClosed)
    known = await port.lock_episode(closed.episode_id)
    if known is None:
        return
    now = deps.now()
    open_ = await port.lock_open_obligations(known.id)
    closing = decide.on_closed(known, open_, closed.reason)
    await port.save_episode(closing.episode)
    moot_ids = [o.id for o in closing.moot]
    await port.make_moot(moot_ids, reason=closing.reason, now=now)
    await port.cancel(moot_ids, now)
    data = [messages.moot(o, closing.reason) for o in closing.moot]
    await port.emit([deps.event(ObligationEvent.MOOT, d, known.id, now) for d in data])


EpisodeHandler = Callable[[Notifier, CloudEvent, Deps], Awaitable[None]]

_BY_TYPE: dict[str, EpisodeHandler] = {
    EventType.EPISODE_REPORTED: record_report,
    EventType.EPISODE_LOCATED: record_located,
    EventType.SCREENING_COMPLETED: record_screening,
    EventType.NOTIFICATION_RECORDED: record_notice,
    EventType.EPISODE_UPDATED: apply_update,
    EventType.EPISODE_CLOSED: apply_closed,
}
