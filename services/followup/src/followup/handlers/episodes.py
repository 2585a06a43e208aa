"""Episode events start and end prompt series: load the episode, decide with
``followup.domain.series``, save, schedule first occurrences, emit what ended."""

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime

from followup.domain import series as decide
from followup.domain.messages import ended
from followup.domain.model import Episode
from followup.domain.occurrences import first_occurrence
from followup.handlers.common import ISSUE, Deps, issue_key, lock_episode
from followup.handlers.completion import complete_by_event
from followup.ports import Followup
from shared.events import CloudEvent, EpisodeClosed, EpisodeReported, EpisodeUpdated
from shared.events import EventType as T
from shared.policy import PromptStart
from shared.published import Outgoing, PromptEvent
from shared.timers import Step


async def handle_episode_event(port: Followup, event: CloudEvent, deps: Deps) -> None:
    """One canonical episode event; types followup does not follow are ignored."""
    handler = _BY_TYPE.get(event.type)
    if handler is not None:
        await handler(port, event, deps)


async def record_report(port: Followup, event: CloudEvent, deps: Deps) -> None:
    change = decide.on_report(event.data_as(EpisodeReported))
    await port.add_episode(change.episode)
    await _start(port, change.episode, change.starts, deps, deps.now())


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
    await _start(port, change.episode, change.starts, deps, now)
    await port.emit(gone)


async def _start(
    port: Followup,
    episode: Episode,
    starts: Sequence[decide.Start],
    deps: Deps,
    now: datetime,
) -> None:
    """Start the series of the rules in force; schedule each new one's first step."""
    policy = deps.ctx.policy
    drafts = decide.new_series(
        policy.prompts_for(episode.county_code),
        starts,
        episode_id=episode.episode_id,
        policy_digest=policy.digest,
        now=now,
    )
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
