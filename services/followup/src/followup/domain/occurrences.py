"""A series' occurrences as pure decisions: when each is due, the prompt it issues,
who is alerted, going overdue and being completed."""

from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from followup.domain.model import (
    Episode,
    Prompt,
    PromptNotOpenError,
    PromptStatus,
    Series,
)
from followup.domain.prompts import occurrence_at
from shared.policy import PromptRule, PromptStart


class AlertReason(StrEnum):
    PROMPT = "prompt"
    """An occurrence was issued: its assignee is told."""
    OVERDUE = "overdue"
    """An occurrence went past due: it escalates."""


def first_occurrence(series: Series) -> datetime | None:
    return occurrence_at(series.rule, series.started_at, 0)


def next_occurrence(series: Series, n: int) -> datetime | None:
    """When the occurrence after ``n`` is issued; None once the series stops."""
    return occurrence_at(series.rule, series.started_at, n + 1)


def issue(
    series: Series, episode: Episode, n: int, *, at: datetime, prompt_id: UUID
) -> Prompt:
    """Occurrence ``n`` of ``series``, issued at ``at`` and due ``rule.due`` later."""
    rule = series.rule
    # A prompt to provide missing report items names them, as they stand now.
    incomplete = series.starts_on is PromptStart.INCOMPLETE
    return Prompt(
        id=prompt_id,
        series_id=series.id,
        episode_id=series.episode_id,
        rule_id=rule.id,
        title=rule.title,
        assignee=rule.assignee,
        occurrence=n,
        issued_at=at,
        due_at=at + rule.due,
        missing_items=episode.completeness if incomplete else None,
    )


def escalates_to(rule: PromptRule) -> str:
    """The policy target an overdue occurrence escalates to (the supervisor unless
    the rule names another)."""
    return rule.escalate_to


def alerted(rule: PromptRule, reason: AlertReason) -> list[str]:
    """The policy targets an alert goes to: the assignee, or whom overdue escalates to."""
    return [rule.assignee if reason is AlertReason.PROMPT else escalates_to(rule)]


def went_overdue(prompt: Prompt, now: datetime) -> Prompt:
    return replace(prompt, overdue_at=now)


def complete(prompt: Prompt, *, by: str, note: str | None, now: datetime) -> Prompt:
    """The prompt done by ``by`` (a person's subject, or ``event:<id>``).

    Raises:
        PromptNotOpenError: it was completed or ended already.
    """
    if prompt.status is not PromptStatus.OPEN:
        raise PromptNotOpenError(f"the prompt is {prompt.status}")
    return replace(
        prompt,
        status=PromptStatus.COMPLETED,
        completed_at=now,
        completed_by=by,
        note=note,
    )


def on_time(prompt: Prompt) -> bool:
    return prompt.completed_at is not None and prompt.completed_at <= prompt.due_at


def seconds_to_complete(prompt: Prompt) -> float:
    if prompt.completed_at is None:
        return 0.0
    return max((prompt.completed_at - prompt.issued_at).total_seconds(), 0.0)
