"""Business-day deadlines, counted by hand against Georgia's 2026 calendar (the
``holidays`` package: MLK Day 19 Jan, Thanksgiving 26 Nov and the state holiday the
day after; US daylight saving ends Sunday 1 Nov 2026)."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from rules import WorkingCalendar, business_deadline, deadline
from shared.policy import BusinessDays, Calendar

GEORGIA = Calendar(holidays="US-GA", time_zone="America/New_York")


def due(start: str, days: int, calendar: Calendar = GEORGIA) -> datetime:
    return business_deadline(
        datetime.fromisoformat(start), BusinessDays(days), WorkingCalendar.of(calendar)
    )


def test_friday_evening_before_a_monday_holiday_skips_the_weekend_and_the_holiday():
    # Fri 16 Jan 18:30 EST; Sat, Sun, Mon (MLK Day) do not count; Tue 20 is day 1,
    # Wed 21 day 2; due at the end of the working day, 17:00 EST.
    assert due("2026-01-16T18:30:00-05:00", 2) == datetime(2026, 1, 21, 22, tzinfo=UTC)


def test_a_clock_started_on_a_holiday_counts_from_the_next_working_day():
    # Thanksgiving (Thu 26 Nov) and Georgia's state holiday on Fri 27 Nov; Mon 30 Nov
    # is day 1 and Tue 1 Dec day 2.
    assert due("2026-11-26T10:00:00-05:00", 2) == datetime(2026, 12, 1, 22, tzinfo=UTC)


def test_across_the_autumn_clock_change_the_deadline_stays_at_five_local():
    # Fri 30 Oct 16:00 EDT (UTC-4); Mon 2 Nov is day 1, after the change to EST
    # (UTC-5): 17:00 EST is 22:00 UTC, not 21:00.
    deadline_ = due("2026-10-30T16:00:00-04:00", 1)
    assert deadline_ == datetime(2026, 11, 2, 22, tzinfo=UTC)
    assert deadline_.astimezone(GEORGIA.zone).time() == time(17, 0)
    assert deadline_.tzinfo is UTC  # stored and worded in UTC like every other time


def test_the_local_date_decides_which_day_the_clock_starts_on():
    # 04:30 UTC on Fri 16 Jan is still Thu 15 Jan in Atlanta: Fri 16 is day 1.
    assert due("2026-01-16T04:30:00+00:00", 1) == datetime(2026, 1, 16, 22, tzinfo=UTC)


def test_closure_days_and_the_end_of_the_working_day_come_from_the_policy():
    closed = Calendar(
        holidays="US-GA",
        time_zone="America/New_York",
        closures=(date(2026, 12, 1),),
        day_ends=time(16, 30),
    )
    assert due("2026-11-26T10:00:00-05:00", 2, closed) == datetime(
        2026, 12, 2, 21, 30, tzinfo=UTC
    )
    assert WorkingCalendar.of(closed).closed_because(date(2026, 12, 1)) == (
        "agency closure"
    )


def test_states_keep_their_own_holidays():
    # Tennessee closes on Good Friday (3 Apr 2026); Washington does not.
    tennessee = Calendar(holidays="US-TN", time_zone="America/Chicago")
    washington = Calendar(holidays="US-WA", time_zone="America/Los_Angeles")
    assert WorkingCalendar.of(tennessee).closed_because(date(2026, 4, 3))
    assert WorkingCalendar.of(washington).is_working_day(date(2026, 4, 3))


def test_a_plain_duration_is_added_as_it_is():
    start = datetime(2026, 1, 16, 23, tzinfo=UTC)
    assert deadline(start, timedelta(hours=24), None, {}) == start + timedelta(hours=24)


def test_business_days_without_a_calendar_are_a_programming_error():
    with pytest.raises(ValueError, match="needs a calendar"):
        deadline(datetime(2026, 1, 16, tzinfo=UTC), BusinessDays(2), None, {})
