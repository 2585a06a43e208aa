"""Whether a recorded notice answers an obligation's rule: to the recipient it names,
by a method it accepts, not before its clock allows, with what the jurisdiction
requires. Pure."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from shared.events import NotificationRecordedData
from shared.policy import SatisfiedBy

ITEM_WORDS = {
    "child.photo_url": "a photo",
    "child.race": "race",
    "child.height_cm": "height",
    "child.weight_kg": "weight",
    "child.hair_color": "hair color",
    "child.eye_color": "eye color",
    "endangerments.pregnant": "whether she is pregnant",
    "endangerments.prescription_medications": "prescription medications",
    "endangerments.suicidal_tendencies": "suicidal tendencies",
    "endangerments.sex_trafficking_vulnerability": "sex-trafficking vulnerability",
    "endangerments.other_health_or_risk_factors": "other health or risk factors",
    "law_enforcement_report_number": "the law-enforcement report number",
}
"""Report items (as a rule's ``report_items`` and intake's ``completeness`` name
them) in the words a caseworker reads in a waiting reason."""

RECIPIENT_WORDS = {"law_enforcement": "law enforcement", "ncmec": "NCMEC"}


@dataclass(frozen=True)
class Satisfaction:
    satisfied: bool
    waiting_reason: str | None = None


def _recipient(recipient: str) -> str:
    return RECIPIENT_WORDS.get(recipient, recipient.replace("_", " "))


def check_notification(
    satisfied_by: SatisfiedBy,
    notification: NotificationRecordedData,
    *,
    not_before: datetime | None,
    report_items: Collection[str] = (),
    missing_items: Collection[str] = (),
) -> Satisfaction | None:
    """What a notification does to an obligation: nothing (None), satisfies it, or
    counts but leaves it open with a reason (a report item the rule requires was
    missing when it was given, or the reference number the jurisdiction requires).

    A later update that supplies the item does not satisfy the duty by itself: the
    recipient has not had it. The caseworker sends it and records the notice again,
    and that notice (complete now) satisfies the duty, on time or late."""
    if notification.recipient is not satisfied_by.recipient:
        return None
    if (
        satisfied_by.methods is not None
        and notification.method not in satisfied_by.methods
    ):
        return None
    if not_before is not None and notification.notified_at < not_before:
        return None
    # An item the agency says it could not reasonably obtain does not hold the
    # notice back (42 U.S.C. 671(a)(35)(B): "where reasonably possible").
    excused = set(notification.items_not_available)
    lacking = [
        ITEM_WORDS.get(i, i)
        for i in report_items
        if i in missing_items and i not in excused
    ]
    if lacking:
        return Satisfaction(
            False,
            f"a notice to {_recipient(notification.recipient)} was recorded without "
            f"{', '.join(lacking)}, which this report must include; once known, "
            "send it and record the notice again (or record that it could not "
            "reasonably be obtained)",
        )
    if satisfied_by.requires_reference and not notification.reference_number:
        return Satisfaction(
            False,
            f"a notice to {notification.recipient} was recorded without the reference "
            "number this jurisdiction requires; record it again with reference_number",
        )
    return Satisfaction(True)
