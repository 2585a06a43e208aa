"""Timer steps: a series' step issues its next occurrence and moves on to the one
after; a prompt's step at its due time escalates it if it is still open."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

from followup.domain import messages
from followup.domain.model import Episode, Prompt, PromptStatus, Series, SeriesStatus
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
    """The scheduler's firing of followup's steps through one port for the batch:
    with a deferring port (``shared.effects``) the batch's steps, events and
    deliveries are written once, at its end."""

    async def fire(
        conn: Conn, batch: Sequence[Timer], now: datetime
    ) -> dict[int, Move | None]:
        port = port_of(conn)
        outcomes = await fire_steps(port, batch, now, deps)
        await port.flush()
        return outcomes

    return fire


async def fire_step(
    port: Followup, timer: Timer, now: datetime, deps: Deps
) -> Move | None:
    return (await fire_steps(port, [timer], now, deps))[timer.id]


async def fire_steps(
    port: Followup, batch: Sequence[Timer], now: datetime, deps: Deps
) -> dict[int, Move | None]:
    """Fire the batch's steps, in order. The occurrences it issues are decided
    together: their series locked and their prompts added a statement each."""
    issuing = await _issue_all(port, [t for t in batch if t.kind == ISSUE])
    outcomes: dict[int, Move | None] = {}
    for timer in batch:
        if timer.kind == ISSUE:
            issued = issuing[timer.id]
            outcomes[timer.id] = issued.move
            if issued.new is not None:
                await _tell(port, timer, issued.new, now, deps)
            continue
        if timer.kind == OVERDUE:
            await escalate_overdue(port, timer, now, deps)
        outcomes[timer.id] = None
    return outcomes


@dataclass(frozen=True)
class _Issued:
    move: Move | None
    """The series' one pending step moves on to the following occurrence, if any."""
    new: tuple[Series, Episode, Prompt] | None = None
    """The prompt issued now (None: its series ended, or it was issued before)."""


async def _issue_all(port: Followup, timers: Sequence[Timer]) -> dict[int, _Issued]:
    loaded = await port.lock_series([t.subject_id for t in timers])
    issuing: dict[int, tuple[Series, Episode, Prompt]] = {}
    moves: dict[int, Move | None] = {}
    for timer in timers:
        found = loaded.get(timer.subject_id)
        if found is None or found[0].status is not SeriesStatus.ACTIVE:
            moves[timer.id] = None
            continue
        series, episode = found
        n = occurrence_of(timer.step_key)
        prompt = issue(series, episode, n, at=timer.fire_at, prompt_id=uuid4())
        following = next_occurrence(series, n)
        moves[timer.id] = (
            Move(issue_key(n + 1), ISSUE, following, {}) if following else None
        )
        issuing[timer.id] = (series, episode, prompt)
    added = await port.add_prompts([prompt for _, _, prompt in issuing.values()])
    return {
        timer_id: _Issued(
            move,
            new if (new := issuing.get(timer_id)) and new[2].id in added else None,
        )
        for timer_id, move in moves.items()
    }


async def _tell(
    port: Followup,
    timer: Timer,
    issued: tuple[Series, Episode, Prompt],
    now: datetime,
    deps: Deps,
) -> None:
    """A prompt just issued: its overdue step, its event and its assignee's alert."""
    series, episode, prompt = issued
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
