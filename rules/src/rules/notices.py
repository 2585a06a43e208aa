"""Whether a recorded notice answers an obligation's rule: to the recipient it names,
by a method it accepts, not before its clock allows, with what the jurisdiction
requires. Pure."""

from dataclasses import dataclass
from datetime import datetime

from shared.events import NotificationRecordedData
from shared.policy import SatisfiedBy


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
