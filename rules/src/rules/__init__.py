"""Evaluation of the jurisdiction policy's rules: which rules apply to an episode,
which obligations an event opens and when they are due, whether a notice answers
one, and who is on call.

Pure functions over the schema that ``shared.policy`` loads (the contract); intake,
the notifier and the followup service import them. Nothing here does I/O or reads
the clock: every moment is passed in.
"""

from rules.calendars import WorkingCalendar, business_deadline, deadline
from rules.conditions import holds
from rules.facts import (
    EndangermentFlags,
    EpisodeFacts,
    endangerment_flags,
    is_endangered,
    known,
    learned,
    report_clock_times,
    says_new_facts,
)
from rules.notices import Satisfaction, check_notification
from rules.obligations import ObligationDraft, obligations_to_open
from rules.oncall import on_call, resolve

__all__ = [
    "EndangermentFlags",
    "EpisodeFacts",
    "ObligationDraft",
    "Satisfaction",
    "WorkingCalendar",
    "business_deadline",
    "check_notification",
    "deadline",
    "endangerment_flags",
    "holds",
    "is_endangered",
    "known",
    "learned",
    "obligations_to_open",
    "on_call",
    "report_clock_times",
    "resolve",
    "says_new_facts",
]
