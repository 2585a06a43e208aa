"""The notice form: the moment typed in local time becomes the right UTC instant."""

import pytest

from console.domain.notice import notice_from_form

pytestmark = pytest.mark.unit

FORM = {"recipient": "ncmec", "method": "online", "reference_number": "1234567"}


def test_the_browsers_utc_moment_wins():
    notice, problems = notice_from_form(
        {
            **FORM,
            "notified_at": "2026-11-01T01:30",
            "tz_offset": "240",
            "notified_at_utc": "2026-11-01T06:30:00.000Z",  # after the DST change
        }
    )
    assert problems == []
    assert notice["notified_at"] == "2026-11-01T06:30:00+00:00"
    assert notice["reference_number"] == "1234567"
    assert "notified_by" not in notice, "intake takes it from the sign-in"


def test_without_the_script_the_pages_offset_is_used():
    # 22:10 in New York in winter (UTC-5; JavaScript's offset is +300) is 03:10 UTC.
    notice, problems = notice_from_form(
        {**FORM, "notified_at": "2026-12-01T22:10", "tz_offset": "300"}
    )
    assert problems == []
    assert notice["notified_at"] == "2026-12-02T03:10:00+00:00"


def test_no_offset_at_all_means_utc():
    notice, _ = notice_from_form({**FORM, "notified_at": "2026-12-01T03:10"})
    assert notice["notified_at"] == "2026-12-01T03:10:00+00:00"


@pytest.mark.parametrize(
    "fields",
    [
        {"notified_at": ""},
        {"notified_at": "yesterday"},
        {"notified_at": "2026-12-01T03:10", "tz_offset": "99999999999"},
        {"notified_at": "2026-12-01T03:10", "tz_offset": "x"},
    ],
)
def test_a_time_that_cannot_be_read_is_a_problem_to_fix(fields):
    _, problems = notice_from_form({**FORM, **fields})
    assert [p[0] for p in problems] == ["notified_at"]


def test_who_and_how_must_be_chosen():
    _, problems = notice_from_form({"notified_at": "2026-12-01T03:10"})
    assert [p[0] for p in problems] == ["recipient", "method"]
