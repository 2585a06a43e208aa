"""Completing prompts: by a person through the API, or by the episode event a rule
waits for (a screening completes the screening prompt)."""

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from followup.domain.messages import completed
from followup.domain.model import Prompt, PromptNotFoundError
from followup.domain.occurrences import complete, seconds_to_complete
from followup.domain.series import DONE_BEFORE_DUE
from followup.handlers.common import Deps, lock_episode
from followup.ports import Followup
from shared.events import CloudEvent
from shared.published import PromptEvent


async def complete_prompt(
    port: Followup,
    prompt_id: UUID,
    *,
    completed_by: str,
    note: str | None,
    deps: Deps,
    in_scope: Callable[[str], bool] = lambda _county: True,
) -> Prompt:
    """Complete one occurrence; a recurring series issues its next on schedule.

    Raises:
        PromptNotFoundError: no such prompt, or of a county not ``in_scope``.
        PromptNotOpenError: it was completed or ended already.
    """
    now = deps.now()
    case = await port.lock_prompt(prompt_id)
    if case is None or not in_scope(case.episode.county_code):
        raise PromptNotFoundError(f"no prompt {prompt_id}")
    done = complete(case.prompt, by=completed_by, note=note, now=now)
    await save_completed(port, [done], deps, now)
    return done


async def complete_by_event(port: Followup, event: CloudEvent, deps: Deps) -> None:
    """The episode's open prompts whose rule waits for ``event`` are done by it."""
    episode = await lock_episode(port, event)
    if episode is None:
        return
    now = deps.now()
    waiting = await port.lock_open_prompts_completed_by(episode.episode_id, event.type)
    by = f"event:{event.id}"
    done = [complete(p, by=by, note=None, now=now) for p in waiting]
    await save_completed(port, done, deps, now)
    # An event before its prompt was issued settles that prompt too.
    await port.end_unissued_series(
        episode.episode_id, event.type, reason=DONE_BEFORE_DUE, now=now
    )


async def save_completed(
    port: Followup, done: Sequence[Prompt], deps: Deps, now: datetime
) -> None:
    for prompt in done:
        await port.save_prompt(prompt)
        seconds = seconds_to_complete(prompt)
        deps.metrics.completion.labels(prompt.rule_id).observe(seconds)
    await port.cancel([p.id for p in done], now)
    events = [deps.prompt_event(PromptEvent.COMPLETED, completed(p), now) for p in done]
    await port.emit(events)
