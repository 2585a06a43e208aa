"""Which obligations an episode event opens under the policy, and when each is due.
Pure: the times are passed in."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rules.calendars import deadline
from rules.conditions import holds
from rules.facts import EpisodeFacts
from shared.policy import Calendar, ClockStart, ObligationRule, Trigger


@dataclass(frozen=True)
class ObligationDraft:
    """An obligation a rule opens, before the notifier gives it an id and stores it."""

    rule: ObligationRule
    clock_start: datetime
    due_at: datetime


def obligations_to_open(
    rules: list[ObligationRule],
    trigger: Trigger,
    facts: EpisodeFacts,
    times: Mapping[ClockStart, datetime | None],
    *,
    learned_at: datetime | None = None,
    calendars: Mapping[str, Calendar] | None = None,
) -> list[ObligationDraft]:
    """The obligations ``trigger`` opens for an episode with these facts and times.

    ``learned_at`` is when the agency learned the facts that make a rule apply, if
    later than the report (an update adding an endangerment). ``calendars`` are the
    policy's, for rules due in business days.
    """
    return [
        _draft(rule, _clock_start(rule, times, learned_at=learned_at), calendars or {})
        for rule in rules
        if rule.opens_on is trigger and (rule.when is None or holds(rule.when, facts))
    ]


def _clock_start(
    rule: ObligationRule,
    times: Mapping[ClockStart, datetime | None],
    *,
    learned_at: datetime | None,
) -> datetime:
    """When a rule's deadline clock starts."""
    # A clock with no time yet (``determined_missing_at`` not given) starts at
    # ``agency_learned_at``, the federal clock, so no duty is left without a deadline.
    start = times.get(rule.clock) or times.get(ClockStart.AGENCY_LEARNED_AT)
    if start is None:
        raise ValueError(f"rule {rule.id}: no time for clock {rule.clock}")
    # The clock cannot start before the agency could know the rule applies.
    return max(start, learned_at) if learned_at is not None else start


def _draft(
    rule: ObligationRule, start: datetime, calendars: Mapping[str, Calendar]
) -> ObligationDraft:
    """An obligation's deadline: ``due`` after its clock starts (in working days of
    its calendar for a business-day rule)."""
    return ObligationDraft(
        rule, start, deadline(start, rule.due, rule.calendar, calendars)
    )
