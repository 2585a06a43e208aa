"""Episode events start and end prompt series: load the episode, decide with
``followup.domain.series``, save, schedule first occurrences, emit what ended."""

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from functools import partial

from followup.domain import series as decide
from followup.domain.messages import ended
from followup.domain.model import Episode
from followup.domain.occurrences import first_occurrence
from followup.handlers.common import ISSUE, Deps, issue_key, lock_episode
from followup.handlers.completion import complete_by_event
from followup.ports import Followup
from shared.consumer import in_runs
from shared.events import CloudEvent, EpisodeClosed, EpisodeReported, EpisodeUpdated
from shared.events import EventType as T
from shared.policy import PromptStart
from shared.published import Outgoing, PromptEvent
from shared.timers import Step


async def handle_episode_events(
    port: Followup, events: Sequence[CloudEvent], deps: Deps
) -> None:
    """A consumed batch's events, in order. Reports next to each other are recorded
    together, a statement per table for all of them: at load most of a batch is
    reports, of different episodes (a report is its episode's first event)."""
    await in_runs(
        events,
        T.EPISODE_REPORTED,
        partial(record_reports, port, deps=deps),
        partial(handle_episode_event, port, deps=deps),
    )


async def handle_episode_event(port: Followup, event: CloudEvent, deps: Deps) -> None:
    """One canonical episode event; types followup does not follow are ignored."""
    handler = _BY_TYPE.get(event.type)
    if handler is not None:
        await handler(port, event, deps)


async def record_report(port: Followup, event: CloudEvent, deps: Deps) -> None:
    await record_reports(port, [event], deps)


async def record_reports(
    port: Followup, events: Sequence[CloudEvent], deps: Deps
) -> None:
    changes = [decide.on_report(e.data_as(EpisodeReported)) for e in events]
    await port.add_episodes([c.episode for c in changes])
    await _start(port, changes, deps, deps.now())


async def apply_update(port: Followup, event: CloudEvent, deps: Deps) -> None:
    items = event.data_as(EpisodeUpdated).completeness
    known = await lock_episode(port, event)
    if known is None:
        return
    running = decide.may_start_incomplete_again(known, items) and (
        await port.has_active_series(known.episode_id, PromptStart.INCOMPLETE)
    )
    change = decide.on_update(
        known, items, event_id=event.id, incomplete_running=running
    )
    await _apply(port, change, deps)


async def apply_located(port: Followup, event: CloudEvent, deps: Deps) -> None:
    known = await lock_episode(port, event)
    if known is not None:
        await _apply(port, decide.on_located(known), deps)


async def apply_closed(port: Followup, event: CloudEvent, deps: Deps) -> None:
    reason = event.data_as(EpisodeClosed).reason
    known = await lock_episode(port, event)
    if known is not None:
        await _apply(port, decide.on_closed(known, reason), deps)


async def _apply(port: Followup, change: decide.Change, deps: Deps) -> None:
    """Save the episode, end and start its series, emit what ended."""
    now = deps.now()
    await port.save_episode(change.episode)
    gone = await _end(port, change.episode, change.ends, change.reason, deps, now)
    await _start(port, [change], deps, now)
    await port.emit(gone)


async def _start(
    port: Followup, changes: Sequence[decide.Change], deps: Deps, now: datetime
) -> None:
    """Start the series of the rules in force; schedule each new one's first step."""
    policy = deps.ctx.policy
    drafts = [
        series
        for change in changes
        for series in decide.new_series(
            policy.prompts_for(change.episode.county_code),
            change.starts,
            episode_id=change.episode.episode_id,
            policy_digest=policy.digest,
            now=now,
        )
    ]
    started = await port.add_series(drafts)
    firsts = [(s, first_occurrence(s)) for s in drafts if s.id in started]
    await port.schedule(
        [Step(s.id, issue_key(0), ISSUE, at, {}) for s, at in firsts if at is not None]
    )


async def _end(
    port: Followup,
    episode: Episode,
    kinds: Collection[PromptStart],
    reason: str,
    deps: Deps,
    now: datetime,
) -> list[Outgoing]:
    """End the series of ``kinds`` and their open prompts; the events to emit."""
    if not kinds:
        return []
    gone = await port.end_series(episode.episode_id, kinds, reason=reason, now=now)
    await port.cancel([*gone.series_ids, *(p.id for p in gone.prompts)], now)
    return [
        deps.prompt_event(PromptEvent.ENDED, ended(p, reason=reason), now)
        for p in gone.prompts
    ]


EpisodeHandler = Callable[[Followup, CloudEvent, Deps], Awaitable[None]]

_BY_TYPE: dict[str, EpisodeHandler] = {
    T.EPISODE_REPORTED: record_report,
    T.EPISODE_UPDATED: apply_update,
    T.EPISODE_LOCATED: apply_located,
    T.SCREENING_COMPLETED: complete_by_event,
    T.EPISODE_CLOSED: apply_closed,
}
