"""Timer steps: a series' step issues its next occurrence and moves on to the one
after; a prompt's step at its due time escalates it if it is still open."""

from collections.abc import Sequence
from datetime import datetime
from uuid import uuid4

from followup.domain import messages
from followup.domain.model import PromptStatus, SeriesStatus
from followup.domain.occurrences import (
    AlertReason,
    escalates_to,
    issue,
    next_occurrence,
    went_overdue,
)
from followup.handlers.common import (
    ISSUE,
    OVERDUE,
    Deps,
    issue_key,
    occurrence_of,
)
from followup.ports import Followup, PortFactory
from shared.db import Conn
from shared.published import PromptEvent
from shared.timers import FireBatch, Move, Step, Timer


def fire_batch(port_of: PortFactory, deps: Deps) -> FireBatch:
    """The scheduler's firing of followup's steps, in order, through one port for
    the batch: with a deferring port (``shared.effects``) the batch's steps, events
    and deliveries are written once, at its end."""

    async def fire(
        conn: Conn, batch: Sequence[Timer], now: datetime
    ) -> dict[int, Move | None]:
        port = port_of(conn)
        outcomes = {
            timer.id: await fire_step(port, timer, now, deps) for timer in batch
        }
        await port.flush()
        return outcomes

    return fire


async def fire_step(
    port: Followup, timer: Timer, now: datetime, deps: Deps
) -> Move | None:
    if timer.kind == ISSUE:
        return await issue_occurrence(port, timer, now, deps)
    if timer.kind == OVERDUE:
        await escalate_overdue(port, timer, now, deps)
    return None


async def issue_occurrence(
    port: Followup, timer: Timer, now: datetime, deps: Deps
) -> Move | None:
    """Issue the occurrence, schedule its overdue step and tell its assignee; the
    series' one pending step moves on to the following occurrence, if any."""
    loaded = await port.lock_series(timer.subject_id)
    if loaded is None or loaded[0].status is not SeriesStatus.ACTIVE:
        return None
    series, episode = loaded
    n = occurrence_of(timer.step_key)
    prompt = issue(series, episode, n, at=timer.fire_at, prompt_id=uuid4())
    following = next_occurrence(series, n)
    move = Move(issue_key(n + 1), ISSUE, following, {}) if following else None
    if not await port.add_prompt(prompt):
        return move  # issued already: nothing to say twice
    await port.schedule([Step(prompt.id, OVERDUE, OVERDUE, prompt.due_at, {})])
    deps.metrics.issued.labels(series.rule.id).inc()
    await port.emit(
        [deps.prompt_event(PromptEvent.ISSUED, messages.issued(prompt), now)]
    )
    covers = await port.covers_at(now)
    alert = deps.alert(
        prompt, episode, series.rule, AlertReason.PROMPT, timer, now, covers
    )
    await port.alert([alert], now)
    return move


async def escalate_overdue(
    port: Followup, timer: Timer, now: datetime, deps: Deps
) -> None:
    """A prompt still open at its due time is marked overdue and escalates."""
    case = await port.lock_prompt(timer.subject_id)
    if case is None or case.prompt.status is not PromptStatus.OPEN:
        return
    prompt = went_overdue(case.prompt, now)
    await port.save_prompt(prompt)
    deps.metrics.overdue.labels(case.rule.id).inc()
    data = messages.overdue(prompt, escalated_to=escalates_to(case.rule))
    await port.emit([deps.prompt_event(PromptEvent.OVERDUE, data, now)])
    covers = await port.covers_at(now)
    alert = deps.alert(
        prompt, case.episode, case.rule, AlertReason.OVERDUE, timer, now, covers
    )
    await port.alert([alert], now)
