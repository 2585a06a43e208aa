"""Legal deadlines as pure rules: which obligations an episode event opens, when
each step (alert, reminder, escalation, breach) is due, and whether a notification
satisfies an obligation. No I/O, no clock: times are passed in."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.events import NotificationRecordedData
from shared.policy import (
    Chain,
    ObligationDraft,
    SatisfiedBy,
    obligations_to_open,
)

__all__ = ["ObligationDraft", "obligations_to_open"]  # rule evaluation is shared


@dataclass(frozen=True)
class Step:
    key: str
    kind: str  # escalate | remind | breach
    fire_at: datetime
    level: int | None = None


def initial_steps(
    *,
    opened_at: datetime,
    due_at: datetime,
    reminders: list[timedelta],
    chain: Chain,
) -> list[Step]:
    """Every step an obligation schedules when it opens.

    Level 0 is alerted at once, each next level when the one before has had its
    timeout; reminders re-alert the level in charge; at the due time the breach alerts
    the top of the chain (and repeats, scheduled as each fires). Steps after the due
    time are left out: from then on the breach speaks.
    """
    steps = [Step("escalate:0", "escalate", opened_at, 0)]
    start = opened_at
    for level, previous in enumerate(chain.levels[:-1], start=1):
        assert previous.timeout is not None  # validated by the policy loader
        start += previous.timeout
        if start < due_at:
            steps.append(Step(f"escalate:{level}", "escalate", start, level))
    for index, after in enumerate(reminders):
        at = opened_at + after
        if opened_at < at < due_at:
            steps.append(Step(f"remind:{index}", "remind", at))
    steps.append(Step("breach:0", "breach", due_at))
    return steps


def level_at(chain: Chain, opened_at: datetime, at: datetime) -> int:
    """The level in charge at a moment (the last one whose turn has come)."""
    level, start = 0, opened_at
    for index, current in enumerate(chain.levels[:-1]):
        assert current.timeout is not None
        start += current.timeout
        if at >= start:
            level = index + 1
    return level


def responsible_level(
    chain: Chain, opened_at: datetime, *, breached: bool, at: datetime
) -> int:
    """The level that must act at a moment: the top of the chain once the deadline
    has passed (the breach pages it), otherwise the level in charge by now."""
    return len(chain.levels) - 1 if breached else level_at(chain, opened_at, at)


def is_snoozed(
    level: int,
    snoozed_level: int | None,
    snoozed_until: datetime | None,
    now: datetime,
) -> bool:
    """Whether an ack quiets a step for ``level``: an ack quiets the level it was
    sent to and those below, until the snooze ends; escalation to a higher level
    goes on (the duty is still undone). Old acks without a level quiet all."""
    if snoozed_until is None or snoozed_until <= now:
        return False
    return snoozed_level is None or level <= snoozed_level


@dataclass(frozen=True)
class Satisfaction:
    satisfied: bool
    waiting_reason: str | None = None


def check_notification(
    satisfied_by: SatisfiedBy,
    notification: NotificationRecordedData,
    *,
    not_before: datetime | None,
) -> Satisfaction | None:
    """What a notification does to an obligation: nothing (None), satisfies it, or
    counts but leaves it open with a reason (e.g. a missing reference number)."""
    if notification.recipient is not satisfied_by.recipient:
        return None
    if (
        satisfied_by.methods is not None
        and notification.method not in satisfied_by.methods
    ):
        return None
    if not_before is not None and notification.notified_at < not_before:
        return None
    if satisfied_by.requires_reference and not notification.reference_number:
        return Satisfaction(
            False,
            f"a notice to {notification.recipient} was recorded without the reference "
            "number this jurisdiction requires; record it again with reference_number",
        )
    return Satisfaction(True)


def initials(first_name: str, last_name: str) -> str:
    """What alerts name the child by: never the full name."""
    return f"{first_name.strip()[:1].upper()}.{last_name.strip()[:1].upper()}."
