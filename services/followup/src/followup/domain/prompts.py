"""Prompt cadences as pure rules: which series an episode event starts or ends, and
when each occurrence of a series is due. No I/O, no clock."""

from datetime import datetime

from shared.events import EventType
from shared.policy import PromptRule, PromptStart

STARTS: dict[str, tuple[PromptStart, ...]] = {
    EventType.EPISODE_REPORTED: (PromptStart.REPORTED,),
    EventType.EPISODE_UPDATED: (PromptStart.NEW_INFORMATION,),
    EventType.EPISODE_LOCATED: (PromptStart.LOCATED,),
}
"""Series kinds each episode event starts (``incomplete`` is decided by the data)."""

ENDS: dict[str, tuple[PromptStart, ...]] = {
    EventType.EPISODE_LOCATED: (PromptStart.REPORTED, PromptStart.INCOMPLETE),
    EventType.EPISODE_CLOSED: tuple(PromptStart),
}
"""Series kinds each episode event ends: the search stops when the child is found;
closing ends everything (recorded as ended, never deleted)."""


def rules_starting(rules: list[PromptRule], start: PromptStart) -> list[PromptRule]:
    return [rule for rule in rules if rule.starts_on is start]


def occurrence_at(rule: PromptRule, started_at: datetime, n: int) -> datetime | None:
    """When occurrence ``n`` (0-based) of a series is issued; None if there is none.

    One-off rules have only occurrence 0. Recurring ones stop after ``stop_after``
    (Florida: weekly for 30 days).
    """
    if rule.every is None:
        return started_at + rule.first_after if n == 0 else None
    at = started_at + rule.first_after + n * rule.every
    if rule.stop_after is not None and at > started_at + rule.stop_after:
        return None
    return at


def occurrences_between(
    rule: PromptRule, started_at: datetime, start: datetime, end: datetime
) -> int:
    """How many occurrences fall in [start, end): for cadence checks and tests."""
    count, n = 0, 0
    while (at := occurrence_at(rule, started_at, n)) is not None and at < end:
        if at >= start:
            count += 1
        n += 1
    return count
