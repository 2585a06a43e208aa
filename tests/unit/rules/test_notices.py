"""Report items are part of satisfying a duty (issue 22, part 3): a notice recorded
while the report lacked an item the rule requires leaves the duty open, saying in
plain words what is missing; a notice without a missing item satisfies it."""

from datetime import UTC, datetime

from rules import check_notification
from shared.events import NotificationRecordedData
from shared.policy import SatisfiedBy

AT = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
NCMEC = SatisfiedBy(recipient="ncmec", requires_reference=True)
ITEMS = ("child.photo_url", "law_enforcement_report_number")


def notice(**overrides) -> NotificationRecordedData:
    values = {
        "recipient": "ncmec",
        "method": "online",
        "notified_at": AT,
        "reference_number": "NCMEC-1",
        "notified_by": "cw",
        **overrides,
    }
    return NotificationRecordedData.model_validate(values)


def test_a_notice_with_every_item_the_rule_requires_satisfies():
    checked = check_notification(
        NCMEC,
        notice(),
        not_before=None,
        report_items=ITEMS,
        missing_items=["child.hair_color", "endangerments.pregnant"],
    )
    assert checked is not None
    assert checked.satisfied


def test_a_notice_without_a_required_item_waits_naming_it_in_plain_words():
    checked = check_notification(
        NCMEC,
        notice(),
        not_before=None,
        report_items=ITEMS,
        missing_items=["child.photo_url", "law_enforcement_report_number"],
    )
    assert checked is not None
    assert not checked.satisfied
    reason = checked.waiting_reason
    assert reason is not None
    assert "without a photo, the law-enforcement report number" in reason
    assert "child.photo_url" not in reason
    assert "record the notice again" in reason


def test_items_no_rule_asks_for_do_not_hold_a_notice_back():
    checked = check_notification(
        SatisfiedBy(recipient="ncmec"),
        notice(),
        not_before=None,
        missing_items=["child.photo_url"],
    )
    assert checked is not None
    assert checked.satisfied


def test_a_notice_to_someone_else_is_not_about_this_duty_whatever_it_lacks():
    checked = check_notification(
        NCMEC,
        notice(recipient="law_enforcement"),
        not_before=None,
        report_items=ITEMS,
        missing_items=list(ITEMS),
    )
    assert checked is None


def test_an_item_that_could_not_reasonably_be_obtained_does_not_hold_the_notice():
    """The law asks for the photo "where reasonably possible": a child with no
    photo at all must not leave the duty open for ever."""
    checked = check_notification(
        NCMEC,
        notice(items_not_available=["child.photo_url"]),
        not_before=None,
        report_items=ITEMS,
        missing_items=["child.photo_url"],
    )
    assert checked is not None
    assert checked.satisfied
    still = check_notification(
        NCMEC,
        notice(items_not_available=["child.photo_url"]),
        not_before=None,
        report_items=ITEMS,
        missing_items=["child.photo_url", "law_enforcement_report_number"],
    )
    assert still is not None
    assert not still.satisfied
    assert "the law-enforcement report number" in str(still.waiting_reason)
    assert "a photo" not in str(still.waiting_reason)
